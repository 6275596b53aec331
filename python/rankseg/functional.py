"""Functional forms of RankSEG, including the names of rankseg 0.0.x (rankseg_rma, rankdice_ba)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_args, overload

import torch

from ._options import check_safe_screening
from ._rankseg import RankSEG
from ._types import Metric, OutputMode, RankDiceSolver, SafeScreening, Solver, SupportsDLPack, UnassignedPolicy

if TYPE_CHECKING:
    import numpy as np

__all__ = ["rankseg", "rankseg_rma", "rankdice_ba"]


@overload
def rankseg(
    probs: torch.Tensor,
    metric: Metric = ...,
    smooth: float = ...,
    output_mode: OutputMode = ...,
    solver: Solver = ...,
    pruning_prob: float = ...,
    *,
    check_values: bool = ...,
    num_threads: int | None = ...,
    **solver_params: Any,
) -> torch.Tensor: ...
@overload
def rankseg(
    probs: np.ndarray,
    metric: Metric = ...,
    smooth: float = ...,
    output_mode: OutputMode = ...,
    solver: Solver = ...,
    pruning_prob: float = ...,
    *,
    check_values: bool = ...,
    num_threads: int | None = ...,
    **solver_params: Any,
) -> np.ndarray: ...
@overload
def rankseg(
    probs: SupportsDLPack,
    metric: Metric = ...,
    smooth: float = ...,
    output_mode: OutputMode = ...,
    solver: Solver = ...,
    pruning_prob: float = ...,
    *,
    check_values: bool = ...,
    num_threads: int | None = ...,
    **solver_params: Any,
) -> Any: ...


def rankseg(
    probs: Any,
    metric: Metric = "dice",
    smooth: float = 0.0,
    output_mode: OutputMode = "multiclass",
    solver: Solver = "RMA",
    pruning_prob: float = 0.5,
    *,
    check_values: bool = True,
    num_threads: int | None = None,
    **solver_params: Any,
) -> Any:
    """``RankSEG(metric, smooth, output_mode, solver, pruning_prob, num_threads=num_threads,
    **solver_params).predict(probs, check_values=check_values)``.

    See :class:`rankseg.RankSEG` for the arguments and the returned masks; ``probs`` may be a torch tensor, a
    NumPy array or a DLPack array, and the masks are of its kind.
    """
    segmenter = RankSEG(metric, smooth, output_mode, solver, pruning_prob, num_threads=num_threads, **solver_params)
    return segmenter.predict(probs, check_values=check_values)


def rankseg_rma(
    probs: torch.Tensor,
    metric: Metric = "dice",
    smooth: float = 0.0,
    output_mode: OutputMode = "multiclass",
    pruning_prob: float = 0.5,
    unassigned_policy: UnassignedPolicy = "max_score",
    void_index: int = 255,
    safe_screening: SafeScreening = False,
) -> torch.Tensor:
    """RankSEG with the RMA solver, in the signature of rankseg 0.0.x.

    ``unassigned_policy`` and ``void_index`` apply to multiclass output: ``"void"`` is refused for multilabel
    output, and a ``void_index`` other than 255 needs ``unassigned_policy="void"``. ``safe_screening`` (True,
    False or ``"auto"``) chose an inexact fast path in 0.0.x; this RMA is always exact and fast, so it is
    checked and changes nothing. A ``pruning_prob`` other than 0.5 prunes multiclass classes by their largest
    probability, as in 0.0.x; otherwise the multiclass defaults of :class:`rankseg.RankSEG` apply.
    """
    check_safe_screening(safe_screening)
    if not isinstance(unassigned_policy, str):
        raise TypeError(f"unassigned_policy must be a string, got {type(unassigned_policy).__name__}")
    multiclass = isinstance(output_mode, str) and output_mode.strip().lower() == "multiclass"
    void = unassigned_policy.strip().lower() != "max_score"
    params: dict[str, Any] = {"unassigned_policy": unassigned_policy} if multiclass else {}
    if multiclass and pruning_prob != 0.5:  # 0.0.x's pruning_prob pruned by the largest probability: keep it so
        params["pruning"] = "max_prob"
    if multiclass and void:
        params["void_index"] = void_index
    elif void_index != 255:
        raise ValueError(
            f"void_index={void_index!r} is used only with output_mode='multiclass' and unassigned_policy='void'"
        )
    if void and not multiclass:
        raise ValueError(
            f"unassigned_policy={unassigned_policy!r} applies to output_mode='multiclass' only; multilabel masks "
            "leave unselected pixels unselected"
        )
    segmenter = RankSEG(metric, smooth, output_mode, "RMA", pruning_prob, **params)
    return segmenter.predict(probs)


def rankdice_ba(
    probs: torch.Tensor,
    solver: RankDiceSolver = "BA",
    smooth: float = 0.0,
    eps: float = 1e-4,
    pruning_prob: float = 0.5,
) -> torch.Tensor:
    """RankDice's multilabel Dice masks ``(B, C, *spatial)``, bool, in the signature of rankseg 0.0.x.

    ``solver`` is ``"BA"``, ``"TRNA"`` or ``"BA+TRNA"`` (case-insensitive): :class:`rankseg.RankSEG` with
    ``metric="dice"``, ``output_mode="multilabel"`` and ``eps``. Computed on the CPU; CUDA tensors go through the
    host and come back on their device.
    """
    if not isinstance(solver, str) or solver.strip().upper() not in get_args(RankDiceSolver):
        raise ValueError(f"solver must be 'BA', 'TRNA' or 'BA+TRNA', got {solver!r}")
    return RankSEG("dice", smooth, "multilabel", solver, pruning_prob, eps=eps).predict(probs)
