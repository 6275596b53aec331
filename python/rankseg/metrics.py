"""Dice and IoU of predictions against ground truth, and their exact expectation under given probabilities.

Conventions, the same everywhere here:

* Scores are per image and class: Dice ``(2 TP + s) / (2 TP + FP + FN + s)`` and IoU
  ``(TP + s) / (TP + FP + FN + s)`` with smoothing ``s`` (default 0).
* A class absent from both the prediction and the truth of an image (``0/0`` when ``s = 0``) scores
  ``empty_score``: NaN by default for measured scores, so that means skip it (the usual mIoU convention), and
  0 by default for expected scores (the convention RankSEG's solvers optimise); pass 1.0 to count such
  agreement as perfect.
* Predictions and truths are either label maps (integer ``(B, *spatial)``, ``num_classes`` needed; a
  prediction outside ``[0, num_classes)``, such as a void label, predicts no class; a truth outside it that is
  not ``ignore_index`` is an error) or multilabel masks (bool ``(B, C, *spatial)``).
* Over a dataset, :class:`Accumulator` gives both averages people report: the mean over images of each image's
  mean over the classes in its truth, and each class's score from counts summed over the dataset (benchmark
  mIoU), averaged over classes.
"""

from __future__ import annotations

import itertools
import math
import numbers

import torch

from . import _counting, _ops
from ._accumulator import Accumulator
from ._counting import as_masks
from ._ops import refuse_tracing
from ._probs import FLOAT_DTYPES
from ._types import ExpectedMethod, Reduction

__all__ = ["dice", "iou", "confusion_counts", "Accumulator", "expected_dice", "expected_iou"]

_MAX_ENUMERATED_PIXELS = 16


def _real(name: str, value, *, allow_nan=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    x = float(value)
    if not (math.isfinite(x) or (allow_nan and math.isnan(x))):
        raise ValueError(f"{name} must be finite{' or NaN' if allow_nan else ''}, got {value!r}")
    return x


def _smooth(value) -> float:
    s = _real("smooth", value)
    if s < 0:
        raise ValueError(f"smooth must be >= 0, got {value!r}")
    return s


def _reduce(scores: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return scores
    per_class = scores.nanmean(0)
    if reduction == "class":
        return per_class
    if reduction == "mean":
        return per_class.nanmean()
    raise ValueError(f"reduction must be 'none', 'class' or 'mean', got {reduction!r}")


def confusion_counts(
    pred: torch.Tensor, target: torch.Tensor, *, num_classes: int | None = None, ignore_index: int | None = None
) -> torch.Tensor:
    """True positives, predicted pixels and truth pixels per image and class, ``(B, 3, C)`` int64: what every
    score here is made of, and what :class:`Accumulator` sums. Label maps are counted by one ``bincount`` of
    (truth, prediction) pairs, in time that does not grow with the number of classes.

    Args:
        pred, target: label maps ``(B, *spatial)`` with ``num_classes``, or bool masks ``(B, C, *spatial)``.
        ignore_index: label-map truths equal to it are left out, from the prediction too.
    """
    return _counting.confusion_counts(pred, target, num_classes, ignore_index)


def _measured(metric, pred, target, num_classes, ignore_index, smooth, empty_score, reduction):
    tp, volume, positives = _counting.confusion_counts(pred, target, num_classes, ignore_index).double().unbind(1)
    empty = _real("empty_score", empty_score, allow_nan=True)
    return _reduce(_counting.score(metric, tp, volume, positives, _smooth(smooth), empty), reduction)


def dice(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    smooth: float = 0.0,
    empty_score: float = float("nan"),
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Dice of predictions against ground truth, per image and class (see the module's conventions).

    Args:
        pred, target: label maps ``(B, *spatial)`` with ``num_classes``, or bool masks ``(B, C, *spatial)``.
        ignore_index: label-map truths equal to it are left out, from the prediction too.
        reduction: ``"none"`` (B, C) float64; ``"class"`` (C,), each class averaged over the images where it
            has a score; ``"mean"``, the mean of those over classes.
    """
    return _measured("dice", pred, target, num_classes, ignore_index, smooth, empty_score, reduction)


def iou(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    smooth: float = 0.0,
    empty_score: float = float("nan"),
    reduction: Reduction = "none",
) -> torch.Tensor:
    """IoU (Jaccard) of predictions against ground truth, per image and class; arguments as :func:`dice`."""
    return _measured("iou", pred, target, num_classes, ignore_index, smooth, empty_score, reduction)


def _check_probs(probs) -> None:
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        raise TypeError("probs must be a floating-point torch.Tensor (B, C, *spatial)")
    if probs.dim() < 3:
        raise ValueError(f"probs must have shape (B, C, *spatial), got {tuple(probs.shape)}")


def _expected(metric: str, probs, pred, smooth, empty_score, method, samples, generator):
    refuse_tracing(f"rankseg.metrics.expected_{metric}")
    _check_probs(probs)
    masks = as_masks("pred", pred, probs.shape[1])
    if masks.shape != probs.shape:
        raise ValueError(f"pred must describe probs' shape {tuple(probs.shape)}, got {tuple(masks.shape)}")
    s, empty = _smooth(smooth), _real("empty_score", empty_score)
    p = probs.detach().cpu().reshape(*probs.shape[:2], -1)
    m = masks.cpu().reshape(p.shape)
    if method == "exact":
        p = p if p.dtype in FLOAT_DTYPES else p.double()
        return _ops.expected_scores(p, m, metric, s, empty)
    if method == "enumerate":
        return _enumerated(metric, p.double(), m, s, empty)
    if method == "monte_carlo":
        return _monte_carlo(metric, p.double(), m, s, empty, samples, generator)
    raise ValueError(f"method must be 'exact', 'enumerate' or 'monte_carlo', got {method!r}")


def _enumerated(metric, p, m, s, empty):
    """Expectation over all 2^N label vectors (N <= 16 pixels)."""
    n = p.shape[2]
    if n > _MAX_ENUMERATED_PIXELS:
        raise ValueError(f"method='enumerate' takes at most {_MAX_ENUMERATED_PIXELS} pixels, got {n}")
    labels = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)  # (2^N, N)
    weight = torch.where(labels.bool(), p.unsqueeze(2), 1 - p.unsqueeze(2)).prod(-1)  # (B, C, 2^N)
    sel = m.double().unsqueeze(2)  # (B, C, 1, N)
    tp = (labels * sel).sum(-1)
    scores = _counting.score(metric, tp, sel.sum(-1), labels.sum(-1), s, empty)
    return (weight * scores).sum(-1)


def _monte_carlo(metric, p, m, s, empty, samples, generator):
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 2:
        raise ValueError(f"samples must be an int >= 2, got {samples!r}")
    sel = m.double()
    volume = sel.sum(-1)
    total = torch.zeros(p.shape[:2], dtype=torch.float64)
    square = torch.zeros_like(total)
    for _ in range(int(samples)):
        y = torch.bernoulli(p, generator=generator)
        scores = _counting.score(metric, (y * sel).sum(-1), volume, y.sum(-1), s, empty)
        total += scores
        square += scores * scores
    mean = total / samples
    variance = (square / samples - mean * mean).clamp(min=0) * samples / (samples - 1)
    return mean, (variance / samples).sqrt()


def expected_dice(
    probs: torch.Tensor,
    pred: torch.Tensor,
    *,
    smooth: float = 0.0,
    empty_score: float = 0.0,
    method: ExpectedMethod = "exact",
    samples: int = 1000,
    generator: torch.Generator | None = None,
):
    """Expected Dice of a prediction when each pixel's label of class c is an independent Bernoulli(probs[:, c])
    (for softmax outputs: labels drawn from the probabilities), per image and class, (B, C) float64.

    Args:
        probs: ``(B, C, *spatial)`` probabilities (any device; computed on the CPU).
        pred: bool masks ``(B, C, *spatial)``, or labels ``(B, *spatial)`` in [0, C) (others predict no class).
        method: ``"exact"`` (quadrature and series truncation below 1e-15 relative, beside the rounding of sums
            over the pixels; docs/algorithm.md), ``"enumerate"``
            (all 2^N label vectors, N <= 16 pixels per class), or ``"monte_carlo"``, which returns
            ``(mean, standard_error)`` over ``samples`` draws.
    """
    return _expected("dice", probs, pred, smooth, empty_score, method, samples, generator)


def expected_iou(
    probs: torch.Tensor,
    pred: torch.Tensor,
    *,
    smooth: float = 0.0,
    empty_score: float = 0.0,
    method: ExpectedMethod = "exact",
    samples: int = 1000,
    generator: torch.Generator | None = None,
):
    """Expected IoU of a prediction; arguments as :func:`expected_dice`. Exact because the labels inside and
    outside the prediction are independent: ``E[IoU] = E[TP + s] E[1 / (|pred| + s + positives outside)]``."""
    return _expected("iou", probs, pred, smooth, empty_score, method, samples, generator)
