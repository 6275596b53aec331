"""Plain float64 PyTorch reference of the RMA rule (per class: full sort, cumulative sums of the sorted
probabilities, first argmax of the volume scores) and of the RMA merge (each pixel to the eligible class whose
score it raises most). Slow and obvious."""

from __future__ import annotations

import itertools

import torch


def volume_scores(sorted_desc: torch.Tensor, mu: torch.Tensor, metric: str, smooth: float) -> torch.Tensor:
    """Scores of volumes 0..N for one class, given its probabilities sorted in descending order."""
    s = smooth
    selected = torch.cumsum(sorted_desc, 0)
    tau = torch.arange(1, sorted_desc.numel() + 1, dtype=torch.float64)
    if metric == "dice":
        scores = 2 * selected / (mu + tau + 1 + s) + s / (mu + tau + s)
    else:
        scores = (selected + s) / (mu - selected + tau + s)
    empty = s / (mu + s) if mu + s > 0 else torch.zeros((), dtype=torch.float64)
    return torch.cat([empty.reshape(1), scores])


def class_mask(p: torch.Tensor, metric: str, smooth: float, pruning_prob: float):
    """(mask, active, best score) of one class; p is 1-D float64."""
    if p.max() <= pruning_prob:
        return torch.zeros_like(p, dtype=torch.bool), False, None
    order = torch.sort(p, descending=True, stable=True).indices
    scores = volume_scores(p[order], p.sum(), metric, smooth)
    tau = int(torch.argmax(scores))  # first maximiser
    mask = torch.zeros_like(p, dtype=torch.bool)
    mask[order[:tau]] = True
    return mask, True, scores.max()


def mask_score(p: torch.Tensor, mask: torch.Tensor, metric: str, smooth: float) -> torch.Tensor:
    """Score of an arbitrary mask under the same formula (for comparing tied choices)."""
    s, mu = smooth, p.sum()
    tau, selected = mask.sum().to(torch.float64), p[mask].sum()
    if tau == 0:
        return s / (mu + s) if mu + s > 0 else torch.zeros((), dtype=torch.float64)
    if metric == "dice":
        return 2 * selected / (mu + tau + 1 + s) + s / (mu + tau + s)
    return (selected + s) / (mu - selected + tau + s)


def multilabel(probs: torch.Tensor, metric: str, smooth: float, pruning_prob: float):
    """Masks (B, C, N) and active flags (B, C) for probs (B, C, N)."""
    p = probs.to(torch.float64)
    b, c, _ = p.shape
    masks = torch.zeros(p.shape, dtype=torch.bool)
    active = torch.zeros((b, c), dtype=torch.bool)
    for i in range(b):
        for j in range(c):
            masks[i, j], active[i, j], _ = class_mask(p[i, j], metric, smooth, pruning_prob)
    return masks, active


def gains(p: torch.Tensor, mu: torch.Tensor, n: torch.Tensor, m: torch.Tensor, metric: str, smooth: float):
    """Incremental score of giving each pixel (row of p: one class) to that class: the RMA merge's gain, its
    formula written out as is."""
    s = smooth
    if metric == "dice" and s == 0:
        d = n + mu + 1
        return 2 / (d + 1) * (p - m / d)
    if metric == "dice":  # the exact change of the volume score, evaluated directly

        def dice(count, mass):
            return 2 * mass / (mu + count + 1 + s) + s / (mu + count + s)

        return dice(n + 1, m + p) - dice(n, m)
    d = n + mu - m + s
    base = torch.where(d == 0, torch.zeros_like(d), (m + s) / torch.where(d == 0, torch.ones_like(d), d))
    return (p - base * (1 - p)) / (d + 1 - p)


def merge(probs, masks, active, metric, smooth, policy="max_score", void_index=255):
    """Labels (B, N) and the gains used (B, C, N), from per-class masks (B, C, N) and active flags (B, C)."""
    p = probs.to(torch.float64)
    hits = masks.sum(1, keepdim=True)  # (B, 1, N)
    safe = masks & (hits == 1)
    n = safe.sum(2, keepdim=True).to(torch.float64)
    m = (p * safe).sum(2, keepdim=True)
    mu = p.sum(2, keepdim=True)
    g = gains(p, mu, n, m, metric, smooth)
    # Unselected pixels may go to the active classes, or to every class when all were pruned.
    fallback = torch.where(active.any(1, keepdim=True), active, torch.ones_like(active)).unsqueeze(2)
    eligible = torch.where(hits == 0, fallback, masks)
    labels = torch.argmax(torch.where(eligible, g, torch.full_like(g, -torch.inf)), dim=1)  # first maximiser
    if policy == "void":
        labels[hits[:, 0] == 0] = void_index
    return labels, g


def enumerated_expectation(p: list[float], mask: list[bool], metric: str, smooth: float, empty: float) -> float:
    """E[Dice or IoU] of `mask` under independent Bernoulli(p) labels, summed over all 2^N label vectors."""
    total = 0.0
    for labels in itertools.product((0, 1), repeat=len(p)):
        weight = 1.0
        for pi, y in zip(p, labels):
            weight *= pi if y else 1.0 - pi
        tp = sum(y for y, m in zip(labels, mask) if m)
        volume, positives = sum(mask), sum(labels)
        if metric == "dice":
            num, den = 2 * tp + smooth, volume + positives + smooth
        else:
            num, den = tp + smooth, volume + positives - tp + smooth
        total += weight * (num / den if den > 0 else empty)
    return total


def best_top_set_value(p: list[float], smooth: float) -> float:
    """The largest enumerated expected Dice over the top sets that keep equal probabilities together."""
    order = sorted(range(len(p)), key=lambda i: -p[i])
    cuts = [0] + [k for k in range(1, len(p) + 1) if k == len(p) or p[order[k]] < p[order[k - 1]]]
    values = []
    for k in cuts:
        mask = [False] * len(p)
        for i in order[:k]:
            mask[i] = True
        values.append(enumerated_expectation(p, mask, "dice", smooth, 0.0))
    return max(values)
