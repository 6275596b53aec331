"""Smoke test of an installed rankseg (run from outside the source tree): it imports from the environment, reports
its build, runs the demo and the command line, and solves random inputs exactly as the float64 reference."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import rankseg

repo = Path(__file__).resolve().parents[1]
where = Path(rankseg.__file__).resolve()
assert repo / "python" not in where.parents, f"rankseg imported from the source tree: {where}"
print(f"rankseg {rankseg.__version__} from {Path(rankseg.__file__).parent}")
print(json.dumps(rankseg.build_info()))

command = Path(sys.executable).with_name("rankseg")
subprocess.run([str(command), "info"], check=True)
with tempfile.TemporaryDirectory() as tmp:
    picture = Path(tmp) / "demo.png"
    subprocess.run([str(command), "demo", "--output", str(picture)], check=True)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

spec = importlib.util.spec_from_file_location("reference", repo / "tests" / "reference.py")
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)
g = torch.Generator().manual_seed(0)
checked = 0
for metric in ("dice", "iou"):
    for smooth in (0.0, 1.0):
        probs = torch.rand(3, 4, 300, generator=g) ** 2
        ours = rankseg.rankseg(probs, metric=metric, smooth=smooth, output_mode="multilabel", pruning_prob=0.1)
        expected, _ = reference.multilabel(probs, metric, smooth, 0.1)
        assert torch.equal(ours, expected), f"{metric}, smooth {smooth}: masks differ from the reference"
        checked += probs.shape[0] * probs.shape[1]
print(f"parity with the float64 reference: {checked} classes, all equal")
