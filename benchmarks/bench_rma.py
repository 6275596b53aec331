"""RMA against the baseline it replaces (argmax, or a 0.5 threshold for multilabel) on the same tensor, plus
the textbook sort-based RMA where it fits in memory (for multiclass, only its per-class masks: a lower bound
of its cost). Run: python -m pytest benchmarks/bench_rma.py"""

from __future__ import annotations

import functools

import pytest
import torch
from inputs import INPUTS
from textbook import textbook_rma_masks

import rankseg

# (mode, metric, shape, input, dtype[, memory format])
CASES = [
    ("multiclass", "dice", (1, 150, 512, 512), "softmax-fields", torch.float32),
    ("multiclass", "dice", (1, 150, 512, 512), "softmax-noise", torch.float32),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", torch.float32),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-noise", torch.float32),
    ("multiclass", "iou", (1, 150, 512, 512), "softmax-fields", torch.float32),
    ("multiclass", "iou", (1, 150, 512, 512), "softmax-noise", torch.float32),
    ("multiclass", "iou", (4, 19, 512, 512), "softmax-fields", torch.float32),
    ("multiclass", "iou", (4, 19, 512, 512), "softmax-noise", torch.float32),
    ("multilabel", "dice", (4, 19, 512, 512), "sigmoid-fields", torch.float32),
    ("multilabel", "dice", (4, 19, 512, 512), "sigmoid-noise", torch.float32),
    ("multiclass", "dice", (1, 14, 128, 256, 256), "softmax-fields", torch.float32),
    ("multiclass", "dice", (1, 14, 128, 256, 256), "softmax-noise", torch.float32),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", torch.float16),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", torch.bfloat16),
    ("multilabel", "dice", (4, 19, 512, 512), "sigmoid-fields", torch.float16),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", torch.float32, torch.channels_last),
    ("multilabel", "dice", (4, 19, 512, 512), "sigmoid-fields", torch.float32, torch.channels_last),
]
TEXTBOOK_MAX_ELEMENTS = 40_000_000  # the sort-based baseline needs ~50 bytes per element


@functools.lru_cache(maxsize=2)
def make_input(shape, kind, dtype, memory_format=torch.contiguous_format):
    return INPUTS[kind](shape).to(dtype).contiguous(memory_format=memory_format)


def case_id(case):
    mode, metric, shape, kind, dtype, *memory_format = case
    layout = "".join(f"-{str(f).removeprefix('torch.')}" for f in memory_format)
    return f"{mode}-{metric}-{'x'.join(map(str, shape))}-{kind}-{str(dtype).removeprefix('torch.')}{layout}"


@pytest.mark.parametrize("impl", ["baseline", "rankseg", "textbook"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_rma(benchmark, case, impl):
    mode, metric, shape, kind, dtype, *memory_format = case
    probs = make_input(shape, kind, dtype, *memory_format)
    benchmark.group = case_id(case)
    if impl == "baseline":
        run = (lambda: torch.argmax(probs, dim=1)) if mode == "multiclass" else (lambda: probs > 0.5)
    elif impl == "rankseg":
        segmenter = rankseg.RankSEG(metric=metric, output_mode=mode)
        run = functools.partial(segmenter, probs)
        if probs.numel() <= TEXTBOOK_MAX_ELEMENTS:  # check before timing: the same masks as the textbook
            ours = rankseg.rankseg(probs, metric=metric, output_mode="multilabel")
            assert torch.equal(ours, textbook_rma_masks(probs, metric))
    else:  # for multiclass this times only the per-class masks, a lower bound of the textbook's cost
        if probs.numel() > TEXTBOOK_MAX_ELEMENTS:
            pytest.skip("the textbook baseline is timed where it fits in memory")
        benchmark.pedantic(textbook_rma_masks, args=(probs, metric), rounds=2, iterations=1)
        return
    benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
