"""Every solver RankSEG offers, in one table: the metrics it optimises, the output modes it has, and for each
mode the solver parameters it takes, the defaults it sets and the one function that computes its masks.

Option parsing reads the table to check a call's settings, ``RankSEG.predict`` calls the route's ``solve``, and
``RankSEG.as_module`` names the route's registered op. The rules on shapes and values of the compiled solvers
are checked by the compiled core; the solvers written here in torch check their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

from . import _ops
from ._probs import check_value_range, shape_check

if TYPE_CHECKING:
    from ._options import Options

# The compiled merge's label for pixels no class selects, under unassigned_policy="argmax": they take their
# argmax class afterwards.
UNSELECTED = -1


@dataclass(frozen=True)
class Route:
    """One solver in one output mode."""

    solve: Callable[[Options, torch.Tensor, bool], torch.Tensor]  # (options, probs, check_values) -> masks
    module_route: str  # what RankSEGModule.forward calls for it
    params: tuple[str, ...] = ()  # the solver parameters it takes
    defaults: dict[str, str] = field(default_factory=dict)  # settings it defaults differently from Options


@dataclass(frozen=True)
class Solver:
    name: str
    metrics: tuple[str, ...]
    routes: dict[str, Route]  # by output mode


def core_policy(o: Options) -> tuple[str, int]:
    """The policy and void index the compiled merge receives."""
    if o.unassigned_policy == "argmax":
        return "void", UNSELECTED
    return o.unassigned_policy, o.void_index


def _filled(o: Options, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if o.unassigned_policy != "argmax":
        return labels
    return _ops.fill_unselected(probs, labels, UNSELECTED)


def check_multiclass(o: Options, probs: torch.Tensor) -> None:
    """The multiclass rules of the compiled merge, for the routes that compute their labels in torch."""
    shape_check(_check_multiclass, o, probs.shape[1])


def _check_multiclass(o: Options, classes: int) -> None:
    if classes < 2:
        raise ValueError(
            "output_mode='multiclass' needs at least 2 classes (C >= 2), got probs with C = 1; use "
            "output_mode='multilabel' or give two channels (background, foreground)"
        )
    if o.unassigned_policy == "void" and 0 <= o.void_index < classes:
        raise ValueError(f"void_index must lie outside [0, C) = [0, {classes}), got {o.void_index}")


def _rma_multiclass(o: Options, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
    if o.merge == "prob" and _ops.gpu_kernels_take(probs):
        # The CUDA kernels have no merge by probability: compose it from their masks, on the GPU.
        return merged_by_probability(o, probs, check_values)
    policy, void_index = core_policy(o)
    labels = _ops.rma_multiclass(
        probs, o.metric, o.smooth, o.pruning_prob, policy, void_index, check_values, o.pruning, o.merge, o.num_threads
    )
    return _filled(o, probs, labels)


def _rma_multilabel(o: Options, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
    return _ops.rma_multilabel(probs, o.metric, o.smooth, o.pruning_prob, check_values, o.num_threads)


def _exact_multiclass(o: Options, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
    policy, void_index = core_policy(o)
    labels = _ops.sorted_multiclass(
        probs, o.solver, o.smooth, o.pruning_prob, policy, void_index, o.pruning, o.merge, o.num_threads
    )
    return _filled(o, probs, labels)


def _sorted_multilabel(o: Options, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
    return _ops.sorted_multilabel(probs, o.solver, o.smooth, o.pruning_prob, o.eps, o.num_threads)


def merged_by_probability(o: Options, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
    """merge="prob" from per-class masks (of RMA or exact): a pixel claimed by several classes goes to the most
    probable of them, and an unclaimed pixel to its argmax class (or to void_index under unassigned_policy="void").
    The compiled merge by probability computes the same labels; CUDA tensors take this composition."""
    check_multiclass(o, probs)
    by_winners = o.pruning == "argmax"
    cut = 0.0 if by_winners else o.pruning_prob  # argmax pruning: no class is emptied by its maximum
    if o.solver == "RMA":
        masks = _ops.rma_multilabel(probs, o.metric, o.smooth, cut, check_values, o.num_threads)
    else:
        masks = _ops.sorted_multilabel(probs, o.solver, o.smooth, cut, o.eps, o.num_threads)
    winners = _ops.argmax_labels(probs)
    if by_winners:  # keep the classes that win the argmax at some pixel of the image
        b, c = probs.shape[:2]
        won = torch.zeros(b, c, dtype=torch.bool, device=probs.device)
        won.scatter_(1, winners.reshape(b, -1), True)
        masks = masks & won.view(b, c, *([1] * (probs.dim() - 2)))
    claimed = _ops.argmax_labels(torch.where(masks, probs, -1.0))
    fill = torch.full_like(winners, o.void_index) if o.unassigned_policy == "void" else winners
    return torch.where(masks.any(dim=1), claimed, fill)


def _checked(probs: torch.Tensor, check_values: bool) -> None:
    if check_values and not _ops.through_dispatcher(probs):  # fake and meta tensors: shapes only
        check_value_range(probs)


def _argmax(o: Options, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
    check_multiclass(o, probs)
    _checked(probs, check_values)
    return probs.argmax(dim=1)


def _argmax_one_hot(o: Options, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
    _checked(probs, check_values)
    return torch.nn.functional.one_hot(probs.argmax(dim=1), probs.shape[1]).movedim(-1, 1).bool()


def _threshold(o: Options, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
    _checked(probs, check_values)
    return probs > 0.5


# The multiclass defaults of RMA and exact, chosen on trained networks (docs/quality.md): keep every class argmax
# predicts, and settle pixels claimed by several classes (or none) by probability. They never lost more than 0.2
# Dice points to argmax there; the incremental-score merge gains more where probabilities are calibrated and
# lost up to 0.7 where they were not. RankSEG.fit chooses between them on labelled data.
_MULTICLASS_DEFAULTS = {"pruning": "argmax", "merge": "prob"}
_MERGE_PARAMS = ("unassigned_policy", "void_index", "pruning", "merge")
_RANKDICE = Route(_sorted_multilabel, "sorted_multilabel", ("eps",))

# In the order solvers are listed to the user.
SOLVERS = (
    Solver(
        "RMA",
        ("dice", "iou"),
        {
            "multiclass": Route(
                _rma_multiclass, "rma_multiclass", (*_MERGE_PARAMS, "safe_screening"), _MULTICLASS_DEFAULTS
            ),
            "multilabel": Route(_rma_multilabel, "rma_multilabel", ("safe_screening",)),
        },
    ),
    Solver("BA", ("dice",), {"multilabel": _RANKDICE}),
    Solver("TRNA", ("dice",), {"multilabel": _RANKDICE}),
    Solver("BA+TRNA", ("dice",), {"multilabel": _RANKDICE}),
    Solver(
        "exact",
        ("dice",),
        {
            "multiclass": Route(_exact_multiclass, "sorted_multiclass", _MERGE_PARAMS, _MULTICLASS_DEFAULTS),
            "multilabel": Route(_sorted_multilabel, "sorted_multilabel"),
        },
    ),
    Solver(
        "argmax",
        ("acc",),
        {"multiclass": Route(_argmax, "argmax"), "multilabel": Route(_argmax_one_hot, "argmax_one_hot")},
    ),
    Solver("TR", ("acc",), {"multilabel": Route(_threshold, "threshold")}),
)
BY_NAME = {s.name: s for s in SOLVERS}


def route(o: Options) -> Route:
    return BY_NAME[o.solver].routes[o.output_mode]


def supported(metric: str, output_mode: str) -> tuple[str, ...]:
    """The solvers of a metric and output mode, in the order they are listed to the user."""
    return tuple(s.name for s in SOLVERS if metric in s.metrics and output_mode in s.routes)
