"""Every branch of the CPU solver runs in the default suite, proven by the core's solve trace: one class per
thread and chunk-parallel classes; threshold search over a gathered band and by full passes; Dice s > 0 on
the band and by a histogram of the whole class. Both schedules give the same masks, and they are optimal."""

from __future__ import annotations

import pytest
import torch
from optimality import assert_masks_optimal

from rankseg import _C
from rankseg._boundary import tensor_ref

PIXELS = 2**20 + 4097  # two chunks of the CPU core: with two threads and one class, the chunks are shared


def class_values(kind: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "spread":  # the band [first threshold, 1/2] holds a fraction of the pixels
        return torch.rand(1, 1, PIXELS, generator=g)
    # nearly every pixel just below 1/2: the band is larger than the core keeps, so it reads every pixel
    x = 0.3 + 0.2 * torch.rand(1, 1, PIXELS, generator=g)
    x[..., : PIXELS // 50] = 0.75
    return x


def solve_traced(probs: torch.Tensor, metric: int, smooth: float, threads: int, multiclass: bool = False):
    """The core's result and its solve trace (metric 0: Dice, 1: IoU)."""
    trace: dict = {}
    if multiclass:
        out = torch.empty(probs.shape[0], probs.shape[2], dtype=torch.int64)
        merge = (_C.Pruning.max_prob, _C.Merge.gain, _C.Unassigned.max_score)
        _C.rma_multiclass(
            tensor_ref(probs), tensor_ref(out), _C.Metric(metric), smooth, 0.0, *merge, -1, threads, trace=trace
        )
    else:
        out = torch.empty(probs.shape, dtype=torch.bool)
        _C.rma_multilabel(tensor_ref(probs), tensor_ref(out), _C.Metric(metric), smooth, 0.0, threads, trace=trace)
    return out, trace


ROUTES = [
    ("spread", 0, 0.0, "threshold_band"),
    ("spread", 1, 0.0, "threshold_band"),
    ("near_half", 0, 0.0, "threshold_full"),
    ("near_half", 1, 0.0, "threshold_full"),
    ("spread", 0, 1.0, "smoothed_band"),
    ("near_half", 0, 1.0, "histogram"),  # the ratio search's band does not fit either
    ("spread", 0, 1e9, "histogram"),  # s above the class's mass: no band rule
]


@pytest.mark.parametrize("kind,metric,smooth,route", ROUTES)
def test_each_route_in_both_schedules(kind, metric, smooth, route):
    probs = class_values(kind)
    one, per_class = solve_traced(probs, metric, smooth, threads=1)
    two, chunked = solve_traced(probs, metric, smooth, threads=2)
    assert per_class["per_class"] == 1 and per_class["chunk_parallel"] == 0
    assert chunked["chunk_parallel"] == 1 and chunked["per_class"] == 0
    for trace in (per_class, chunked):
        taken = {r for r in ("threshold_band", "threshold_full", "smoothed_band", "histogram") if trace[r]}
        assert taken == {route}, trace
        if route != "histogram":  # every other route runs Dinkelbach's steps (smoothed: for the ratio's band)
            assert trace["max_steps"] >= 1
    assert torch.equal(one, two)
    assert_masks_optimal(probs, two, ["dice", "iou"][metric], smooth, 0.0)


def test_many_classes_one_per_thread_and_multiclass_trace():
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(torch.randn(2, 5, 4000, generator=g) * 3, dim=1)
    _, trace = solve_traced(probs, 0, 0.0, threads=2)
    assert trace["per_class"] == 10 and trace["chunk_parallel"] == 0 and trace["threshold_band"] == 10
    _, trace = solve_traced(probs, 0, 0.0, threads=2, multiclass=True)
    assert trace["per_class"] == 10 and trace["threshold_band"] == 10


@pytest.mark.parametrize("seed", range(20))
def test_threshold_steps_stay_within_the_proven_bound(seed):
    """Each step removes at least one distinct value (csrc/search.h): steps <= distinct values + 1."""
    g = torch.Generator().manual_seed(seed)
    levels = int(torch.randint(2, 60, (1,), generator=g))
    probs = (torch.randint(0, levels + 1, (1, 1, 5000), generator=g).double() / levels) ** 2
    _, trace = solve_traced(probs, seed % 2, 0.0, threads=1)
    assert 1 <= trace["max_steps"] <= probs.unique().numel() + 1


def test_trace_must_be_a_dict():
    probs = torch.rand(1, 1, 10)
    out = torch.empty(probs.shape, dtype=torch.bool)
    with pytest.raises(TypeError, match="trace must be a dict"):
        _C.rma_multilabel(tensor_ref(probs), tensor_ref(out), _C.Metric.dice, 0.0, 0.0, 1, trace=[])
