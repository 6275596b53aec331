"""The real-network suite (benchmarks/real_networks.py) in its --quick form: tiny networks trained here, every
method scored, the tables written between the markers. Needs the quality extra (MONAI, scikit-image)."""

from __future__ import annotations

import pytest
from benchmark_modules import load_benchmark

pytest.importorskip("monai")
pytest.importorskip("skimage")


def test_quick_suite_scores_every_method_and_writes_between_the_markers(tmp_path, capsys):
    suite = load_benchmark("real_networks")
    report = tmp_path / "quality.md"
    report.write_text(f"before\n{suite.MARKER}\nold table\n{suite.MARKER}\nafter\n")
    regimes = ["mc_well", "bin_hard", "ml_shapes"]
    suite.main(["--quick", "--cache", str(tmp_path / "cache"), "--regimes", ",".join(regimes), "--output", str(report)])
    text = report.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old table" not in text
    for r in suite.load_regimes(regimes, tmp_path / "cache", quick=True):
        rows = [line for line in text.splitlines() if line.startswith(f"| {r.name} | ")]
        expected = [name for name, (modes, _) in suite.METHODS.items() if r.mode in modes]
        assert [row.split(" | ")[1] for row in rows[1:]] == expected  # the first row is the regime's settings
        baseline = next(row for row in rows[1:] if row.split(" | ")[1] == suite.BASELINE[r.mode])
        assert "baseline" in baseline
    assert (tmp_path / "cache").is_dir() and capsys.readouterr().out.strip()
