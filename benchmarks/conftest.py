"""Prints the ratio table (ours / baseline, by best-of-rounds time) after a benchmark run."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, dict[str, float]] = {}
    for bench in session.benchmarks:
        if bench:
            groups.setdefault(bench.group, {})[bench.params["impl"]] = bench.stats.min
    lines = ["", "ratios of best-of-rounds times (lower is better)", f"{'case':<58} {'baseline':>10} {'rankseg':>9} {'ratio':>7} {'textbook':>10}"]
    for group, times in sorted(groups.items()):
        base, ours, book = times.get("baseline"), times.get("rankseg"), times.get("textbook")
        if base is None or ours is None:
            continue
        book_text = f"{book * 1e3:8.1f}ms" if book else f"{'-':>10}"
        lines.append(f"{group:<58} {base * 1e3:8.1f}ms {ours * 1e3:7.1f}ms {ours / base:6.2f}x {book_text}")
    terminalreporter.write_line("\n".join(lines))
