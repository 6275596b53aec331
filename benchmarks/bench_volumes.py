"""RankSEG on one CT-sized volume, (1, 14, 512, 512, 300) probabilities (14 organs, 300 slices of 512 x 512), in
float16 and float32 on the CPU, against argmax on the same tensor; and rankseg.metrics.dice of such a volume's
labels against a bare torch.bincount confusion matrix. The rankseg rows give the peak memory of one call beyond
its input and output (target: at most 0.1x the input). Run: python -m pytest benchmarks/bench_volumes.py

The float32 volume is 4.4 GB and is built once, in place; it is skipped when less than FLOAT32_NEEDS_GIB of memory
is available. The peak is resident memory (VmHWM), so it counts what a call touches beyond its input; for an
allocation-exact figure, run a case in a fresh process as benchmarks/peak_memory.py does."""

from __future__ import annotations

import functools

import pytest
import torch

import rankseg
from rankseg import metrics
from rankseg._bench import _peak_extra_mb, logit_fields

SHAPE = (1, 14, 512, 512, 300)
FLOAT32_NEEDS_GIB = 14  # the input (4.4 GB), argmax's and RankSEG's labels (0.6 GB each) and headroom
CASES = [  # (what, dtype), in this order: each volume is made once and freed before the next
    ("rankseg", torch.float16),
    ("dice", torch.float16),
    ("rankseg", torch.float32),
]


@functools.lru_cache(maxsize=1)
def volume(dtype: torch.dtype) -> torch.Tensor:
    """The fields input of the other benchmarks (benchmarks/inputs.py) at SHAPE, softmaxed in place: softmax's
    out-of-place result would double the 4.4 GB float32 peak."""
    x = logit_fields(SHAPE)
    x.sub_(x.amax(1, keepdim=True)).exp_()
    x.div_(x.sum(1, keepdim=True))
    return x if dtype == torch.float32 else x.to(dtype)


@functools.lru_cache(maxsize=1)
def label_maps(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """RankSEG's labels of the volume, and a truth that differs from them (argmax, shifted by 7 voxels)."""
    probs = volume(dtype)
    return rankseg.rankseg(probs), torch.roll(probs.argmax(1), shifts=7, dims=-1)


def available_gib() -> float:
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) for line in f}
    return info["MemAvailable"] / 2**20


def case_id(case):
    what, dtype = case
    return f"{what}-{'x'.join(map(str, SHAPE))}-{str(dtype).removeprefix('torch.')}"


def record_peak(benchmark, run, input_bytes: int) -> None:
    extra_mb = _peak_extra_mb(run, torch.device("cpu"))  # None where /proc/self/clear_refs is not writable
    if extra_mb is not None:
        benchmark.extra_info["peak_extra_bytes"] = extra_mb * 2**20
        benchmark.extra_info["input_bytes"] = input_bytes


@pytest.mark.parametrize(
    "case, impl",
    [pytest.param(case, impl, id=f"{case_id(case)}-{impl}") for case in CASES for impl in ("baseline", "rankseg")],
)
def test_volume(benchmark, case, impl):
    what, dtype = case
    if dtype == torch.float32:
        label_maps.cache_clear()  # the float16 volume's labels and the volume itself go before float32 comes
        volume.cache_clear()
        if available_gib() < FLOAT32_NEEDS_GIB:
            pytest.skip(f"the float32 volume needs {FLOAT32_NEEDS_GIB} GiB free, {available_gib():.1f} GiB is")
    benchmark.group = case_id(case)
    if what == "rankseg":
        probs = volume(dtype)
        if impl == "baseline":
            run = functools.partial(torch.argmax, probs, dim=1)
        else:
            segmenter = rankseg.RankSEG(metric="dice")
            run = functools.partial(segmenter, probs)
            labels = run()  # checked before timing: labels of the volume, every one a class
            assert labels.shape == (SHAPE[0], *SHAPE[2:]) and 0 <= int(labels.min()) <= int(labels.max()) < SHAPE[1]
            del labels
            record_peak(benchmark, run, probs.numel() * probs.element_size())
    else:
        pred, truth = label_maps(dtype)
        classes = SHAPE[1]
        if impl == "baseline":
            run = lambda: torch.bincount(truth.flatten() * classes + pred.flatten(), minlength=classes * classes)
        else:
            run = functools.partial(metrics.dice, pred, truth, num_classes=classes)
            # checked before timing: the Dice the confusion matrix gives, for the classes present
            confusion = torch.bincount(truth.flatten() * classes + pred.flatten(), minlength=classes**2)
            confusion = confusion.view(classes, classes).double()
            tp, predicted, true = confusion.diag(), confusion.sum(0), confusion.sum(1)
            present = (predicted + true) > 0
            expected = (2 * tp / (predicted + true))[present]
            assert torch.allclose(run().flatten().double()[present], expected, rtol=1e-6)
            record_peak(benchmark, run, 2 * pred.numel() * pred.element_size())  # input: both label maps
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
