"""`rankseg bench`: RankSEG against argmax (multiclass) or a 0.5 threshold (multilabel) on this machine, on
synthetic segmenter outputs (the *fields* inputs of the repository's benchmarks, defined here), with the peak
memory a call takes beyond its input and output."""

from __future__ import annotations

import ctypes
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

import rankseg
from rankseg._types import Metric, OutputMode


def logit_fields(shape: tuple, present: int = 6, seed: int = 0) -> torch.Tensor:
    """Smooth random logits: a handful of classes present per image, confident interiors, uncertain borders."""
    g = torch.Generator().manual_seed(seed)
    b, c, *spatial = shape
    low = torch.randn(b, c, *[max(2, s // 32) for s in spatial], generator=g) * 4 - 8
    for i in range(b):
        low[i, torch.randperm(c, generator=g)[:present]] += 8
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
    return F.interpolate(low, size=tuple(spatial), mode=mode, align_corners=False)


def softmax_fields(shape: tuple, seed: int = 0) -> torch.Tensor:
    return logit_fields(shape, seed=seed).softmax(1)


def sigmoid_fields(shape: tuple, seed: int = 0) -> torch.Tensor:
    return torch.sigmoid(logit_fields(shape, present=shape[1], seed=seed) / 2)


@dataclass
class Row:
    case: str
    baseline_ms: float
    rankseg_ms: float
    peak_extra_mb: float | None  # None where it cannot be measured
    input_mb: float = 0.0

    @property
    def ratio(self) -> float:
        return self.rankseg_ms / self.baseline_ms


CASES: dict[str, list[tuple[OutputMode, Metric, tuple[int, ...]]]] = {  # (mode, metric, shape)
    "quick": [
        ("multiclass", "dice", (1, 21, 256, 256)),
        ("multilabel", "dice", (1, 5, 256, 256)),
        ("multiclass", "iou", (1, 21, 256, 256)),
    ],
    "full": [
        ("multiclass", "dice", (4, 19, 512, 512)),
        ("multiclass", "dice", (1, 150, 512, 512)),
        ("multiclass", "iou", (4, 19, 512, 512)),
        ("multilabel", "dice", (4, 19, 512, 512)),
        ("multilabel", "iou", (4, 19, 512, 512)),
    ],
}


def _best_ms(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _rss_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _return_freed_memory() -> bool:
    """Makes glibc map every allocation of 64 KiB or more afresh and hand freed memory back at once, so that the
    resident high-water mark sees what a call allocates instead of heap pages earlier calls left resident
    (without it, every row read 0.0 MB). False where glibc is not the allocator."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 65536) == 1 and libc.mallopt(m_trim_threshold, 0) == 1
        libc.malloc_trim(0)
        return ok
    except (OSError, AttributeError):
        return False


def _peak_extra_mb(run: Callable[[], torch.Tensor], device: torch.device) -> float | None:
    """Peak memory of one call beyond what was allocated before it and its output."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        out = run()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before - out.numel() * out.element_size()) / 2**20
    if not _return_freed_memory():
        return None
    try:  # Linux: reset the high-water mark of resident memory, then read it after the call
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    resident = _rss_bytes("VmRSS")
    out = run()
    peak = _rss_bytes("VmHWM")
    if resident is None or peak is None:
        return None
    return max(0.0, (peak - resident - out.numel() * out.element_size()) / 2**20)


def measure(mode: OutputMode, metric: Metric, shape: tuple, device: torch.device, repeats: int) -> Row:
    probs = (softmax_fields if mode == "multiclass" else sigmoid_fields)(shape).to(device)
    baseline = (lambda: probs.argmax(1)) if mode == "multiclass" else (lambda: probs > 0.5)
    segmenter = rankseg.RankSEG(metric=metric, output_mode=mode)

    def ours():
        return segmenter(probs, check_values=False)

    baseline(), ours()  # warm-up
    case = f"{mode} {metric} {'x'.join(map(str, shape))}"
    timed = _best_ms(baseline, device, repeats), _best_ms(ours, device, repeats)
    return Row(case, *timed, _peak_extra_mb(ours, device), probs.numel() * probs.element_size() / 2**20)


def progress(done: int, total: int, label: str) -> None:
    width = 24
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<40}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _megabytes(extra_mb: float, input_mb: float) -> str:
    """Peak extra memory; small amounts in KB (the core's workspace is often a few KB)."""
    amount = f"{extra_mb:.1f} MB" if extra_mb >= 1 else f"{extra_mb * 1024:.0f} KB"
    return f"{amount} ({extra_mb / input_mb:.3f}x)" if input_mb else amount


def table(rows: list[Row], device: torch.device) -> str:
    baseline = "argmax / >0.5"
    lines = [
        f"{'case':<34} {baseline:>14} {'rankseg':>10} {'ratio':>7} {'peak extra (x input)':>21}",
        "-" * 90,
    ]
    for r in rows:
        peak = "n/a" if r.peak_extra_mb is None else _megabytes(r.peak_extra_mb, r.input_mb)
        lines.append(f"{r.case:<34} {r.baseline_ms:>11.3f} ms {r.rankseg_ms:>7.3f} ms {r.ratio:>6.2f}x {peak:>21}")
    lines.append(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; best of runs")
    return "\n".join(lines)


def run(device: torch.device, quick: bool) -> str:
    cases = CASES["quick"] if quick else CASES["quick"] + CASES["full"]
    repeats = 5 if quick else 10
    rows = []
    for i, (mode, metric, shape) in enumerate(cases):
        progress(i, len(cases), f"{mode} {metric} {'x'.join(map(str, shape))}")
        rows.append(measure(mode, metric, shape, device, repeats))
    progress(len(cases), len(cases), "done")
    return table(rows, device)
