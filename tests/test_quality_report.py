"""docs/quality.md is what benchmarks/quality.py computes: one committed setting is recomputed and compared."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_report():
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["quality"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_committed_table_matches_a_fresh_run():
    quality = load_report()
    setting = quality.SETTINGS[0]
    fresh = quality.table({setting: quality.evaluate(setting, draws=20)}).splitlines()[2:]
    committed = [
        line
        for line in (ROOT / "docs" / "quality.md").read_text().splitlines()
        if line.startswith(f"| {setting.label()} |")
    ]
    assert len(fresh) == len(committed) == len(quality.methods())
    for ours, theirs in zip(fresh, committed):
        assert ours.split("|")[1:7] == theirs.split("|")[1:7]  # everything but the time
