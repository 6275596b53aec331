"""num_threads: its checks, the calling thread for small inputs, and results that never depend on threads."""

from __future__ import annotations

import pytest
import torch
from probability_inputs import make_probs

import rankseg
from rankseg import _C, _ops


@pytest.mark.parametrize(
    ("value", "exc", "message"),
    [
        (0, ValueError, "num_threads must be at least 1"),
        (-2, ValueError, "num_threads must be at least 1"),
        (2**31, ValueError, "fit in int32"),
        (1.5, TypeError, "num_threads must be an int >= 1 or None .*got float 1.5"),
        ("2", TypeError, "got str '2'"),
        (True, TypeError, "got bool True"),
    ],
)
def test_num_threads_input_errors(value, exc, message):
    with pytest.raises(exc, match=message):
        rankseg.RankSEG(num_threads=value)
    with pytest.raises(exc, match=message):
        rankseg.rankseg(torch.rand(1, 2, 3, 3).softmax(1), num_threads=value)


def test_num_threads_is_an_argument_of_every_solver():
    assert rankseg.RankSEG(num_threads=3).num_threads == 3
    assert rankseg.RankSEG().num_threads is None
    assert "num_threads=2" in repr(rankseg.RankSEG(solver="exact", num_threads=2))
    assert rankseg.RankSEG(metric="acc", solver="argmax", num_threads=1).options.num_threads == 1
    with pytest.raises(TypeError, match="did you mean 'num_threads'"):
        rankseg.RankSEG(num_thread=2)


class ThreadsSeen:
    """Records the thread count each call hands to a compiled kernel (by its position)."""

    def __init__(self, monkeypatch, *names):
        self.seen: list[int] = []
        for name in names:
            kernel = getattr(_C, name)
            monkeypatch.setattr(_C, name, self.spy(kernel, name))

    def spy(self, kernel, name):
        position = {"rma_multiclass": 9, "rma_multilabel": 5, "exact_multiclass": 8, "sorted_multilabel": 6}[name]

        def call(*args, **kwargs):
            self.seen.append(args[position])
            return kernel(*args, **kwargs)

        return call


@pytest.mark.parametrize("kwargs", [{}, {"output_mode": "multilabel"}, {"solver": "exact"}], ids=["mc", "ml", "exact"])
def test_small_inputs_run_on_the_calling_thread(threads, monkeypatch, kwargs):
    torch.set_num_threads(2)
    spy = ThreadsSeen(monkeypatch, "rma_multiclass", "rma_multilabel", "exact_multiclass")
    tiny = make_probs("softmax", (1, 2, 4, 4), seed=0)
    rankseg.rankseg(tiny, **kwargs)
    rankseg.rankseg(tiny, num_threads=2, **kwargs)
    assert spy.seen == [1, 1]


def test_large_inputs_use_the_threads_asked_for(threads, monkeypatch):
    torch.set_num_threads(2)
    spy = ThreadsSeen(monkeypatch, "rma_multiclass", "rma_multilabel")
    large = make_probs("softmax", (1, 2, 128, 128), seed=0)  # 32768 probabilities, past RMA_SERIAL_BELOW
    assert large.numel() >= _ops.RMA_SERIAL_BELOW
    rankseg.rankseg(large)
    rankseg.rankseg(large, num_threads=3)
    rankseg.rankseg(large, output_mode="multilabel", num_threads=1)
    assert spy.seen == [2, 3, 1]


def test_threads_for():
    assert _ops.threads_for(10, None, 512) == 1
    assert _ops.threads_for(10, 8, 512) == 1
    assert _ops.threads_for(512, 8, 512) == 8
    assert _ops.threads_for(512, None, 512) == torch.get_num_threads()


# Settings and inputs covering each parallel loop of the CPU kernels: per class and per chunk, argmax pruning,
# both merges, the class-major copy of strided input, and the sorting solvers.
SETTINGS = [
    {},
    {"merge": "gain", "pruning": "max_prob"},
    {"unassigned_policy": "void", "void_index": 255, "merge": "gain"},
    {"unassigned_policy": "argmax", "merge": "gain"},
    {"metric": "iou", "smooth": 1.0},
    {"output_mode": "multilabel"},
    {"output_mode": "multilabel", "smooth": 1.0, "pruning_prob": 0.0},
    {"solver": "exact"},
    {"output_mode": "multilabel", "solver": "BA+TRNA"},
]
SHAPES = [(1, 2, 4, 4), (3, 5, 16, 16), (1, 1, 3 * 2**20 + 17), (2, 19, 33, 31)]


def inputs(shape, mode):
    kind = "softmax" if mode == "multiclass" else "fields"
    yield make_probs(kind, shape, seed=sum(shape))
    if len(shape) == 4:
        yield make_probs(kind, shape, seed=1, layout="channels_last")


@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: "-".join(f"{v}" for v in k.values()) or "default")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_results_do_not_depend_on_threads(threads, monkeypatch, kwargs, shape):
    mode = kwargs.get("output_mode", "multiclass")
    if shape[1] == 1 and mode == "multiclass":
        pytest.skip("multiclass needs two classes")
    if shape[-1] > 10**6 and "solver" in kwargs:
        pytest.skip("the one huge class is checked with RMA (a sorting solver takes seconds on it)")
    # Threads even on the smallest inputs, so that the one-thread loops are compared with the parallel ones.
    monkeypatch.setattr(_ops, "RMA_SERIAL_BELOW", 0)
    monkeypatch.setattr(_ops, "SORTED_SERIAL_BELOW", 0)
    torch.set_num_threads(2)
    for probs in inputs(shape, mode):
        one = rankseg.rankseg(probs, num_threads=1, **kwargs)
        assert torch.equal(rankseg.rankseg(probs, num_threads=2, **kwargs), one)
        assert torch.equal(rankseg.rankseg(probs, num_threads=3, **kwargs), one)
        assert torch.equal(rankseg.rankseg(probs, **kwargs), one)


def test_num_threads_through_the_registered_op():
    probs = make_probs("softmax", (2, 3, 8, 8), seed=4)
    args = (probs, "dice", 0.0, 0.5, "max_score", 255, True, "max_prob", "gain")
    torch.library.opcheck(_ops.multiclass_op, (*args, 2))
    assert torch.equal(_ops.multiclass_op(*args, 2), _ops.multiclass_op(*args))
    compiled = torch.compile(rankseg.RankSEG(num_threads=2, merge="gain", pruning="max_prob"), fullgraph=True)
    assert torch.equal(compiled(probs), rankseg.rankseg(probs, merge="gain", pruning="max_prob"))


def test_a_forked_child_solves_on_its_calling_thread():
    """OpenMP threads do not survive fork: a child of a process that ran OpenMP would wait forever on a
    parallel region (as under datasets' num_proc). The child gets an answer, the parent's."""
    import os
    import signal

    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    probs = torch.softmax(torch.randn(2, 5, 128, 128, generator=torch.Generator().manual_seed(0)), 1)
    expected = rankseg.rankseg(probs)  # the parent runs OpenMP first
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether its labels equal the parent's, then leave at once
        try:
            os.write(write, b"1" if torch.equal(rankseg.rankseg(probs), expected) else b"0")
        finally:
            os._exit(0)
    os.close(write)

    def hung(signum, frame):
        raise TimeoutError("the forked child did not answer in 20 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        answer = os.read(read, 1)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.waitpid(pid, 0)
    assert answer == b"1"
