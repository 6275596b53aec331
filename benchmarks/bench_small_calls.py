"""Small calls: the fixed cost of a call against argmax (or a 0.5 threshold for multilabel) on the same tensor,
through the function and through a RankSEG made once; and one thread against two around the sizes where the
solvers start sharing work out (_ops.RMA_SERIAL_BELOW and SORTED_SERIAL_BELOW).

Run: python -m pytest benchmarks/bench_small_calls.py. RANKSEG_BENCH_BUSY=2 keeps two other processes spinning
meanwhile, which measures the contended case."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest
import torch
from inputs import INPUTS

import rankseg
from rankseg import _ops

SHAPES = [(1, 2, 4, 4), (1, 5, 16, 16), (1, 19, 64, 64)]
# (solver, mode, shape): RMA from 4,096 to 311,296 probabilities, exact from 128 to 5,120.
THREAD_CASES = [
    *[("RMA", mode, (1, c, n)) for mode in ("multiclass", "multilabel") for c, n in ((5, 1024), (19, 512))],
    *[("RMA", mode, (1, 19, n)) for mode in ("multiclass", "multilabel") for n in (1024, 2048, 4096, 16384)],
    *[("exact", "multiclass", (1, c, n)) for c, n in ((2, 64), (2, 256), (5, 256), (5, 1024))],
]


@pytest.fixture(scope="module", autouse=True)
def busy_cores():
    """RANKSEG_BENCH_BUSY other processes that keep a core each busy for the whole run."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(int(os.environ.get("RANKSEG_BENCH_BUSY", "0")))
    ]
    yield
    for p in spinners:
        p.kill()
        p.wait()


@functools.lru_cache(maxsize=8)
def make_input(shape: tuple, mode: str) -> torch.Tensor:
    return INPUTS["softmax-fields" if mode == "multiclass" else "sigmoid-fields"](shape)


def calls_per_round(probs: torch.Tensor) -> int:
    return max(10, 100_000 // probs.numel())  # rounds of a few ms: timer overhead stays negligible


def shape_id(shape) -> str:
    return "x".join(map(str, shape))


@pytest.mark.parametrize("impl", ["baseline", "rankseg"])
@pytest.mark.parametrize("api", ["function", "instance"])
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_small_call(benchmark, shape, mode, api, impl):
    probs = make_input(shape, mode)
    benchmark.group = f"{mode}-{api}-{shape_id(shape)}"
    if impl == "baseline":
        run = (lambda: torch.argmax(probs, dim=1)) if mode == "multiclass" else (lambda: probs > 0.5)
    else:
        segmenter = rankseg.RankSEG(output_mode=mode)
        if api == "function":
            run = functools.partial(rankseg.rankseg, probs, output_mode=mode)
        else:
            run = functools.partial(segmenter, probs)
        # Checked before timing: the same masks as on one thread with every parallel loop entered.
        assert torch.equal(run(), rankseg.RankSEG(output_mode=mode, num_threads=1)(probs))
    benchmark.pedantic(run, rounds=20, iterations=calls_per_round(probs), warmup_rounds=2)


@pytest.mark.parametrize("impl", ["1-thread", "2-threads"])
@pytest.mark.parametrize("case", THREAD_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{shape_id(c[2])}")
def test_threads(benchmark, monkeypatch, case, impl):
    """One thread against two with the serial rule turned off: where two win, calls should share work out."""
    solver, mode, shape = case
    monkeypatch.setattr(_ops, "RMA_SERIAL_BELOW", 0)
    monkeypatch.setattr(_ops, "SORTED_SERIAL_BELOW", 0)
    probs = make_input(shape, mode)
    segmenter = rankseg.RankSEG(output_mode=mode, solver=solver, num_threads=1 if impl == "1-thread" else 2)
    assert torch.equal(segmenter(probs), rankseg.RankSEG(output_mode=mode, solver=solver, num_threads=1)(probs))
    benchmark.group = f"threads-{solver}-{mode}-{probs.numel()}-{shape_id(shape)}"
    iterations = max(3, calls_per_round(probs) // (100 if solver == "exact" else 1))
    benchmark.pedantic(segmenter, args=(probs,), rounds=15, iterations=iterations, warmup_rounds=1)
