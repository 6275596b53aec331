"""Where the time of one GPU call goes: GPU time per kernel (torch.profiler) and the host time to enqueue a
call, for a few benchmark cases. Run: python benchmarks/profile_cuda.py (needs a GPU and the CUDA kernels)."""

from __future__ import annotations

import time

import torch
from inputs import INPUTS
from torch.profiler import ProfilerActivity, profile

import rankseg

CASES = [
    ("multilabel", (4, 19, 512, 512), "sigmoid-fields"),
    ("multiclass", (4, 19, 512, 512), "softmax-fields"),
    ("multiclass", (1, 150, 512, 512), "softmax-noise"),
    ("multiclass", (16, 19, 1024, 1024), "softmax-fields"),
]
CALLS = 10


def main() -> None:
    for mode, shape, kind in CASES:
        probs = INPUTS[kind](shape).float().cuda()
        segmenter = rankseg.RankSEG(output_mode=mode)
        for _ in range(3):
            segmenter(probs, check_values=False)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(CALLS):
            segmenter(probs, check_values=False)
        enqueue = (time.perf_counter() - start) / CALLS
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(CALLS):
                segmenter(probs, check_values=False)
            torch.cuda.synchronize()
        print(f"\n== {mode} {shape} {kind}: host enqueue {enqueue * 1e3:.3f} ms per call")
        rows = [
            (e.key, e.device_time_total / CALLS, e.count // CALLS)
            for e in prof.key_averages()
            if e.device_time_total > 0
        ]
        for name, us, count in sorted(rows, key=lambda r: -r[1])[:12]:
            print(f"{us / 1e3:9.3f} ms  x{count:<3} {name[:110]}")
        print(f"{sum(r[1] for r in rows) / 1e3:9.3f} ms  total GPU time per call")


if __name__ == "__main__":
    main()
