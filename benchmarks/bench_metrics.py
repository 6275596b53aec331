"""rankseg.metrics at dataset scale, each against what it must keep up with on the same input: dice/iou of label
maps against a bare torch.bincount confusion matrix; expected_dice/expected_iou of a RankSEG label map against
the RankSEG call that made it. Run: python -m pytest benchmarks/bench_metrics.py (the "baseline" column is the
reference, "rankseg" the metric)."""

from __future__ import annotations

import functools

import pytest
import torch
from inputs import INPUTS

import rankseg
from rankseg import metrics

SHAPES = [(1, 21, 512, 512), (1, 150, 512, 512)]


@functools.lru_cache(maxsize=1)
def make_case(shape):
    probs = INPUTS["softmax-fields"](shape)
    pred = rankseg.rankseg(probs)
    truth = torch.roll(probs.argmax(1), shifts=7, dims=-1)  # a truth that differs from the prediction
    return probs, pred, truth


def shape_id(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("impl", ["baseline", "rankseg"])
@pytest.mark.parametrize("metric", ["dice", "iou"])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_measured(benchmark, shape, metric, impl):
    _, pred, truth = make_case(shape)
    classes = shape[1]
    benchmark.group = f"{metric} vs bincount {shape_id(shape)}"
    if impl == "baseline":
        run = lambda: torch.bincount(truth.flatten() * classes + pred.flatten(), minlength=classes * classes)
    else:
        run = functools.partial(getattr(metrics, metric), pred, truth, num_classes=classes)
    benchmark.pedantic(run, rounds=10, warmup_rounds=1)


@pytest.mark.parametrize("impl", ["baseline", "rankseg"])
@pytest.mark.parametrize("metric", ["dice", "iou"])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_expected(benchmark, shape, metric, impl):
    probs, pred, _ = make_case(shape)
    benchmark.group = f"expected_{metric} vs RankSEG {shape_id(shape)}"
    if impl == "baseline":
        run = functools.partial(rankseg.rankseg, probs, metric)
    else:
        run = functools.partial(getattr(metrics, f"expected_{metric}"), probs, pred)
    benchmark.pedantic(run, rounds=3, warmup_rounds=0)
