"""Functional form of RankSEG."""

from __future__ import annotations

import torch

from ._rankseg import RankSEG


def rankseg(
    probs: torch.Tensor,
    metric: str = "dice",
    smooth: float = 0.0,
    output_mode: str = "multiclass",
    solver: str = "RMA",
    pruning_prob: float = 0.5,
    *,
    check_values: bool = True,
    **solver_params,
) -> torch.Tensor:
    """``RankSEG(metric, smooth, output_mode, solver, pruning_prob, **solver_params).predict(probs, check_values)``.

    See :class:`rankseg.RankSEG` for the arguments and the returned masks.
    """
    segmenter = RankSEG(metric, smooth, output_mode, solver, pruning_prob, **solver_params)
    return segmenter.predict(probs, check_values=check_values)
