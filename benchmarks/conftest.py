"""Prints the ratio table (ours / baseline, by best-of-rounds time per call) after a benchmark run, with the
peak extra memory of one call where a benchmark measured it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, dict[str, float]] = {}
    memory: dict[str, str] = {}
    for bench in session.benchmarks:
        if not bench:
            continue
        impl = bench.params["impl"]
        groups.setdefault(bench.group, {})[impl] = bench.stats.min / bench.extra_info.get("calls_per_round", 1)
        if impl == "rankseg" and "peak_extra_bytes" in bench.extra_info:
            extra, size = bench.extra_info["peak_extra_bytes"], bench.extra_info["input_bytes"]
            memory[bench.group] = f"{extra / 2**20:8.1f} MB {extra / size:5.2f}x"
    header = f"{'case':<62} {'baseline':>10} {'rankseg':>10} {'ratio':>7} {'textbook':>10}"
    if memory:
        header += f" {'peak extra memory (x input)':>28}"
    lines = ["", "ratios of best-of-rounds times per call (lower is better)", header]
    for group, times in sorted(groups.items()):
        base, ours, book = times.get("baseline"), times.get("rankseg"), times.get("textbook")
        if base is None or ours is None:
            continue
        book_text = f"{book * 1e3:8.3f}ms" if book else f"{'-':>10}"
        line = f"{group:<62} {base * 1e3:8.3f}ms {ours * 1e3:8.3f}ms {ours / base:6.2f}x {book_text}"
        lines.append(line + (f" {memory[group]:>28}" if group in memory else ""))
    terminalreporter.write_line("\n".join(lines))
