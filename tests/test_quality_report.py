"""docs/quality.md is what benchmarks/quality.py computes: one committed setting is recomputed and compared."""

from __future__ import annotations

from pathlib import Path

from benchmark_modules import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


def test_committed_table_matches_a_fresh_run():
    quality = load_benchmark("quality")
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
