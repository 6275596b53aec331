"""RMA on the GPU against the baseline it replaces (torch.argmax over classes, or a 0.5 threshold for
multilabel) on the same CUDA tensor, plus the peak extra GPU memory of one call. Each timed round runs the
call ROUNDS_PER_TIMING times and then synchronises, so kernel time, not launch latency, is what is compared.
Run: python -m pytest benchmarks/bench_cuda.py (skipped without a GPU and rankseg's CUDA kernels)."""

from __future__ import annotations

import functools

import pytest
import torch
from inputs import INPUTS

import rankseg

pytestmark = pytest.mark.skipif(not rankseg.cuda_available(), reason="needs a GPU and rankseg's CUDA kernels")

ROUNDS_PER_TIMING = 20

# (mode, metric, shape, input, dtype)
CASES = [
    ("multiclass", "dice", (1, 150, 512, 512), "softmax-fields", torch.float32),
    ("multiclass", "dice", (1, 150, 512, 512), "softmax-noise", torch.float32),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", torch.float32),
    ("multiclass", "dice", (16, 19, 1024, 1024), "softmax-fields", torch.float32),
    ("multilabel", "dice", (4, 19, 512, 512), "sigmoid-fields", torch.float32),
    ("multilabel", "dice", (16, 19, 1024, 1024), "sigmoid-fields", torch.float32),
    ("multiclass", "iou", (1, 150, 512, 512), "softmax-fields", torch.float32),
    ("multilabel", "iou", (4, 19, 512, 512), "sigmoid-fields", torch.float32),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", torch.float16),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", torch.bfloat16),
    ("multilabel", "dice", (4, 19, 512, 512), "sigmoid-fields", torch.float16),
]


@functools.lru_cache(maxsize=1)
def make_input(shape, kind, dtype):
    return INPUTS[kind](shape).to(dtype).cuda()


def case_id(case):
    mode, metric, shape, kind, dtype = case
    return f"cuda-{mode}-{metric}-{'x'.join(map(str, shape))}-{kind}-{str(dtype).removeprefix('torch.')}"


def peak_extra_bytes(run, probs, output_bytes):
    """Peak GPU memory allocated during one call, beyond its input and its output."""
    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = run()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - start - output_bytes
    del out
    return extra


@pytest.mark.parametrize("impl", ["baseline", "rankseg"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_cuda(benchmark, case, impl):
    mode, metric, shape, kind, dtype = case
    probs = make_input(shape, kind, dtype)
    benchmark.group = case_id(case)
    if impl == "baseline":
        run = (lambda: torch.argmax(probs, dim=1)) if mode == "multiclass" else (lambda: probs > 0.5)
    else:
        segmenter = rankseg.RankSEG(metric=metric, output_mode=mode)
        run = functools.partial(segmenter, probs, check_values=False)
        # check before timing: exactly the CPU kernel's result
        assert torch.equal(segmenter(probs).cpu(), segmenter(probs.cpu()))
    out = run()
    benchmark.extra_info["peak_extra_bytes"] = peak_extra_bytes(run, probs, out.numel() * out.element_size())
    benchmark.extra_info["input_bytes"] = probs.numel() * probs.element_size()
    benchmark.extra_info["calls_per_round"] = ROUNDS_PER_TIMING

    def timed():
        for _ in range(ROUNDS_PER_TIMING):
            run()
        torch.cuda.synchronize()

    benchmark.pedantic(timed, rounds=10, iterations=1, warmup_rounds=2)
