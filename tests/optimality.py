"""Checks that masks and labels are optimal: equal to the float64 reference (tests/reference.py), or tied with it."""

from __future__ import annotations

import math

import reference
import torch

# The compiled incremental-score merge, which the multiclass tests check against the reference merge (the
# multiclass default merges by probability instead; tests/test_fitting.py checks that one).
GAIN_MERGE = {"merge": "gain", "pruning": "max_prob"}


def as_bcn(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], t.shape[1], -1) if t.shape[0] else t.reshape(0, t.shape[1], math.prod(t.shape[2:]))


def active_flags(probs, pruning_prob):
    p = as_bcn(probs).to(torch.float64)
    if p.shape[0] == 0:
        return torch.zeros(p.shape[:2], dtype=torch.bool)
    return p.amax(2) > pruning_prob


def assert_masks_optimal(probs, masks, metric, smooth, pruning_prob):
    """Each class mask equals the sorted reference, or is a top set with the same optimal score (ties)."""
    p = as_bcn(probs).to(torch.float64)
    masks = as_bcn(masks)
    assert masks.dtype == torch.bool and masks.shape == p.shape
    for b in range(p.shape[0]):
        for c in range(p.shape[1]):
            ours, pc = masks[b, c], p[b, c]
            ref, active, best = reference.class_mask(pc, metric, smooth, pruning_prob)
            if torch.equal(ours, ref):
                continue
            where = f"image {b}, class {c}"
            assert active, f"{where}: pruned class got a non-empty mask"
            if ours.any() and (~ours).any():
                assert pc[ours].min() >= pc[~ours].max(), f"{where}: mask is not a top set"
            got = reference.mask_score(pc, ours, metric, smooth)
            assert torch.isclose(got, best, rtol=1e-12, atol=1e-15), f"{where}: score {got} < optimum {best}"


def assert_labels_optimal(probs, labels, masks, active, metric, smooth, policy="max_score", void_index=255):
    """Labels equal the reference merge of the given masks, except between classes whose gains tie."""
    p = as_bcn(probs)
    labels = labels.reshape(p.shape[0], p.shape[2])
    masks = as_bcn(masks)
    ref, g = reference.merge(p, masks, active, metric, smooth, policy, void_index)
    diff = (labels != ref).nonzero()
    for b, i in diff.tolist():
        ours, theirs = int(labels[b, i]), int(ref[b, i])
        where = f"image {b}, pixel {i}: label {ours}, reference {theirs}"
        assert 0 <= ours < p.shape[1] and 0 <= theirs < p.shape[1], where
        hits = masks[b, :, i]
        eligible = hits if hits.any() else (active[b] if active[b].any() else torch.ones_like(active[b]))
        assert eligible[ours], f"{where}: class {ours} is not eligible"
        assert torch.isclose(g[b, ours, i], g[b, theirs, i], rtol=1e-9, atol=1e-15), (
            f"{where}: gains {g[b, ours, i]} vs {g[b, theirs, i]}"
        )
