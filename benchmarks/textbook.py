"""The textbook RMA in plain PyTorch: sort every class, cumulative sums, first argmax. The baseline users
would otherwise write; benchmarks time it and check the compiled core against it."""

from __future__ import annotations

import torch


def textbook_rma_masks(probs: torch.Tensor, metric: str = "dice", pruning_prob: float = 0.5) -> torch.Tensor:
    """Multilabel RMA masks (B, C, *spatial) for smooth = 0, fully vectorised over (image, class)."""
    b, c = probs.shape[:2]
    p = probs.reshape(b, c, -1).double()
    values, order = torch.sort(p, dim=2, descending=True, stable=True)
    selected = torch.cumsum(values, dim=2)
    tau = torch.arange(1, p.shape[2] + 1, dtype=torch.float64)
    mu = p.sum(2, keepdim=True)
    scores = 2 * selected / (mu + tau + 1) if metric == "dice" else selected / (mu - selected + tau)
    scores = torch.cat([torch.zeros(b, c, 1, dtype=torch.float64), scores], dim=2)
    volume = scores.argmax(2, keepdim=True)
    volume[p.amax(2, keepdim=True) <= pruning_prob] = 0
    ranked = torch.arange(p.shape[2]).expand_as(p) < volume
    masks = torch.zeros_like(p, dtype=torch.bool).scatter_(2, order, ranked)
    return masks.reshape(probs.shape)
