"""Deployment paths: torch.jit.trace and torch.jit.script record the real solve, never a bare allocation."""

from __future__ import annotations

import pytest
import torch

import rankseg
from rankseg import metrics

# (RankSEG arguments, whether the compiled core solves it: then the graph must hold a rankseg op)
SETTINGS = [
    ({"metric": "dice"}, True),
    ({"metric": "iou", "output_mode": "multilabel"}, True),
    ({"metric": "dice", "unassigned_policy": "void", "void_index": 9, "pruning": "argmax"}, True),
    ({"metric": "dice", "solver": "exact"}, True),
    ({"metric": "dice", "output_mode": "multilabel", "solver": "BA", "eps": 1e-3}, True),
    ({"metric": "acc", "solver": "argmax"}, False),
    ({"metric": "acc", "output_mode": "multilabel", "solver": "argmax"}, False),
    ({"metric": "acc", "output_mode": "multilabel", "solver": "TR"}, False),
]


def probs_of(batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 4, 12, 10, generator=g) * 3).softmax(1)


class Segmenter(torch.nn.Module):
    """What a user deploys: a model's last step calling the functional API."""

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return rankseg.rankseg(logits.softmax(1), **self.kwargs)


@pytest.mark.parametrize(("kwargs", "compiled"), SETTINGS)
def test_trace_records_the_solve(kwargs, compiled):
    model = Segmenter(**kwargs)
    example = torch.randn(2, 4, 12, 10)
    traced = torch.jit.trace(model, example, check_trace=False)
    if compiled:
        assert "rankseg::" in str(traced.graph)
    # Other values and another batch size than the example's: a trace that dropped the solve (and kept the
    # output's allocation) returns uninitialised memory here.
    for batch, seed in ((3, 1), (1, 2)):
        logits = torch.randn(batch, 4, 12, 10, generator=torch.Generator().manual_seed(seed)) * 3
        assert torch.equal(traced(logits), model(logits))


def test_trace_of_the_class_and_the_old_names():
    segmenter = rankseg.RankSEG(metric="iou")
    p = probs_of(3, 5)
    assert torch.equal(torch.jit.trace(segmenter.predict, probs_of(2, 4), check_trace=False)(p), segmenter(p))
    traced = torch.jit.trace(lambda x: rankseg.rankseg_rma(x, output_mode="multilabel"), probs_of(2, 4))
    assert torch.equal(traced(p), rankseg.rankseg_rma(p, output_mode="multilabel"))
    traced = torch.jit.trace(lambda x: rankseg.rankdice_ba(x, solver="TRNA"), probs_of(2, 4))
    assert torch.equal(traced(p), rankseg.rankdice_ba(p, solver="TRNA"))


def test_trace_refuses_entry_points_without_an_op():
    p = probs_of(1, 0)
    with pytest.raises(RuntimeError, match=r"torch\.jit\.trace"):
        torch.jit.trace(lambda x: metrics.expected_dice(x, x.argmax(1)), p)


@pytest.mark.parametrize(("kwargs", "compiled"), SETTINGS)
def test_scripted_module_equals_eager_and_survives_save(kwargs, compiled, tmp_path):
    segmenter = rankseg.RankSEG(**kwargs)
    scripted = torch.jit.script(segmenter.as_module())
    if compiled:
        assert "rankseg::" in str(scripted.graph)
    path = tmp_path / "segmenter.pt"
    torch.jit.save(scripted, str(path))
    loaded = torch.jit.load(str(path))
    for batch, seed in ((2, 0), (1, 3)):
        p = probs_of(batch, seed)
        expected = segmenter(p)
        assert torch.equal(scripted(p), expected)
        assert torch.equal(loaded(p), expected)


def test_scripted_module_checks_each_call():
    module = torch.jit.script(rankseg.RankSEG(metric="dice").as_module())
    # The TorchScript interpreter reports the core's ValueError as a torch.jit.Error (a RuntimeError).
    with pytest.raises(RuntimeError, match="finite values in"):
        module(probs_of(1, 0) * 2)
    with pytest.raises(RuntimeError, match="C >= 2"):
        module(torch.rand(1, 1, 4, 4))
    with pytest.raises(TypeError, match="check_values"):
        rankseg.RankSEG().as_module(check_values=1)


@pytest.mark.skipif(not hasattr(rankseg._ops.multiclass_op, "register_vmap"), reason="torch < 2.5: no vmap rules")
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"output_mode": "multilabel"}, {"merge": "gain", "unassigned_policy": "argmax"}, {"solver": "exact"}],
)
def test_vmap_equals_a_loop(kwargs):
    segmenter = rankseg.RankSEG(**kwargs)
    probs = torch.stack([probs_of(2, seed) for seed in range(3)])  # (3, B, C, H, W)
    looped = torch.stack([segmenter(p) for p in probs])
    assert torch.equal(torch.vmap(segmenter)(probs), looped)
    assert torch.equal(torch.vmap(segmenter, in_dims=2)(probs.movedim(0, 2)), looped)
