"""The solver table is the one place that says which solver supports which metric, mode and parameters: what
the public types list, what parsing accepts and what each route computes agree with it."""

from __future__ import annotations

import contextlib
from typing import get_args

import pytest
import torch

import rankseg
from rankseg import _ops, _solvers, _types


def test_the_public_types_list_the_table():
    assert get_args(_types.Solver) == tuple(s.name for s in _solvers.SOLVERS)
    routes = {mode for s in _solvers.SOLVERS for mode in s.routes}
    assert routes == set(get_args(_types.OutputMode))
    assert {m for s in _solvers.SOLVERS for m in s.metrics} | {"accuracy"} == set(get_args(_types.Metric))


# What the documentation of RankSEG promises, written out.
DOCUMENTED = {
    ("dice", "multiclass"): ("RMA", "exact"),
    ("dice", "multilabel"): ("RMA", "BA", "TRNA", "BA+TRNA", "exact"),
    ("iou", "multiclass"): ("RMA",),
    ("iou", "multilabel"): ("RMA",),
    ("acc", "multiclass"): ("argmax",),
    ("acc", "multilabel"): ("argmax", "TR"),
}


@pytest.mark.parametrize("metric", ["dice", "iou", "acc"])
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_parsing_accepts_exactly_the_table(metric, mode):
    probs = torch.rand(1, 3, 4, 4).softmax(1)
    for solver in get_args(_types.Solver):
        assert _solvers.supported(metric, mode) == DOCUMENTED[(metric, mode)]
        if solver not in DOCUMENTED[(metric, mode)]:
            with pytest.raises(ValueError, match="does not support"):
                rankseg.RankSEG(metric, output_mode=mode, solver=solver)
            continue
        one_hot = (solver, mode) == ("argmax", "multilabel")
        with pytest.warns(UserWarning, match="one-hot") if one_hot else contextlib.nullcontext():
            out = rankseg.RankSEG(metric, output_mode=mode, solver=solver)(probs)
        assert out.shape == ((1, 4, 4) if mode == "multiclass" else (1, 3, 4, 4))


def test_expected_scores_op_passes_opcheck():
    probs = torch.rand(2, 3, 40, dtype=torch.float64)
    masks = probs > 0.5
    torch.library.opcheck(_ops.expected_scores_op, (probs, masks, "dice", 0.0, 0.0))
    torch.library.opcheck(_ops.expected_scores_op, (probs.float(), masks, "iou", 1.0, 1.0))
    compiled = torch.compile(lambda p, m: rankseg.metrics.expected_iou(p, m), fullgraph=False, backend="eager")
    assert torch.equal(compiled(probs, masks), rankseg.metrics.expected_iou(probs, masks))
