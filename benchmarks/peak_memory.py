"""Peak memory of one rankseg call beyond its input and output, each case in a fresh process.

Run: python benchmarks/peak_memory.py. Linux only: the peak (VmHWM) is reset through /proc/self/clear_refs
right before the call, so the input's construction does not hide what the call itself allocates, and glibc
is told to hand freed memory back at once, so no earlier allocation is silently reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CASES = [
    ("multiclass", "dice", (1, 150, 512, 512), "softmax-fields", "float32"),
    ("multiclass", "dice", (1, 150, 512, 512), "softmax-noise", "float32"),
    ("multiclass", "iou", (4, 19, 512, 512), "softmax-fields", "float32"),
    ("multilabel", "dice", (4, 19, 512, 512), "sigmoid-fields", "float32"),
    ("multiclass", "dice", (1, 14, 128, 256, 256), "softmax-fields", "float32"),
    ("multilabel", "dice-smooth", (4, 19, 512, 512), "sigmoid-fields", "float32"),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", "float16"),
    ("multiclass", "dice", (4, 19, 512, 512), "softmax-fields", "bfloat16"),
    ("multilabel", "dice", (4, 19, 512, 512), "sigmoid-fields", "float32", "channels_last"),
]

CHILD = """
import json, sys, torch, rankseg
from inputs import INPUTS

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

mode, metric, shape, kind, dtype, *layout = json.loads(sys.argv[1])
memory_format = getattr(torch, layout[0]) if layout else torch.contiguous_format
probs = INPUTS[kind](tuple(shape)).to(getattr(torch, dtype)).contiguous(memory_format=memory_format)
options = {"metric": "dice", "smooth": 1.0} if metric == "dice-smooth" else {"metric": metric}
rankseg.rankseg(probs[:1, :, :4], output_mode=mode, **options)  # one-time op setup
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
out = rankseg.rankseg(probs, output_mode=mode, **options)
peak = status("VmHWM")
input_bytes = probs.numel() * probs.element_size()
extra = peak - before - out.numel() * out.element_size()
mb = {"before_mb": before, "peak_mb": peak, "input_mb": input_bytes, "extra_mb": extra}
print(json.dumps({**{k: v / 2**20 for k, v in mb.items()}, "ratio": extra / input_bytes}))
"""


def main() -> None:
    here = Path(__file__).parent
    print(f"{'case':<68} {'input':>9} {'extra':>10} {'extra/input':>12}")
    for case in CASES:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(case)],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"},
        )
        r = json.loads(result.stdout)
        name = "-".join([case[0], case[1], "x".join(map(str, case[2])), *case[3:]])
        print(f"{name:<68} {r['input_mb']:7.0f}MB {r['extra_mb'] * 1024:8.0f}KB {r['ratio']:11.4f}x")


if __name__ == "__main__":
    main()
