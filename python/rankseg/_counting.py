"""Per image and class: true positives, predicted pixels and truth pixels, the counts every score is made of.

Label maps are counted with ``bincount``: of (truth, prediction) pairs per image, a confusion matrix with one
extra row and column for "no class" (an ignored truth, or a prediction outside ``[0, C)``), in about the time of
a bare confusion matrix; past a million bins, three bincounts of (image, class) keys (the truth, the prediction,
and the truth where the prediction agrees) keep memory linear in C. Multilabel masks are summed per class.
"""

from __future__ import annotations

import numbers

import torch

# Pixels counted per bincount: bounds the int64 temporaries to a few times 32 MiB however large a volume is.
_CHUNK = 1 << 22


def num_classes_arg(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"num_classes must be a positive int, got {value!r}")
    return int(value)


def check_ignore_index(value) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"ignore_index must be an int or None, got {value!r}")
    return None if value is None else int(value)


def score(metric: str, tp, predicted, positives, smooth: float, empty: float) -> torch.Tensor:
    """Dice or IoU from the true positives, the predicted pixels and the truth pixels; `empty` where the
    denominator is 0 (nothing predicted or present, without smoothing)."""
    num = 2 * tp + smooth if metric == "dice" else tp + smooth
    den = predicted + positives + smooth if metric == "dice" else predicted + positives - tp + smooth
    return torch.where(den > 0, num / den.clamp(min=torch.finfo(num.dtype).tiny), torch.full_like(num, empty))


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, *spatial) labels -> (B, C, *spatial) bool; labels outside [0, C) select no class."""
    classes = torch.arange(num_classes, device=labels.device).view(1, -1, *([1] * (labels.dim() - 1)))
    return labels.unsqueeze(1) == classes


def as_masks(name: str, x, num_classes: int | None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.bool:
        if x.dim() < 3:
            raise ValueError(f"{name} as multilabel masks must be bool (B, C, *spatial), got shape {tuple(x.shape)}")
        return x
    check_labels(name, x, num_classes)
    assert num_classes is not None
    return one_hot(x, num_classes)


def check_labels(name: str, x, num_classes: int | None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer labels (B, *spatial) or bool masks (B, C, *spatial), got {x.dtype}")
    if num_classes is None:
        raise TypeError(f"{name} holds labels, so num_classes must be given")
    if x.dim() < 2:
        raise ValueError(f"{name} as labels must have shape (B, *spatial), got {tuple(x.shape)}")


def _check_truth_range(target: torch.Tensor, classes: int, ignore_index: int | None) -> None:
    """A truth label outside [0, C) that is not ignore_index would silently count as a miss everywhere."""
    if target.numel() == 0:
        return
    low, high = torch.aminmax(target)
    if int(low) >= 0 and int(high) < classes:
        return
    bad = (target < 0) | (target >= classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bool(bad.any()):
        value = int(target[bad][0])
        hint = "" if ignore_index is None else f" and is not ignore_index={ignore_index}"
        raise ValueError(
            f"target holds the label {value}, which lies outside [0, {classes}){hint}; pass ignore_index={value} "
            "if it marks pixels to leave out, or the right num_classes"
        )


def _label_counts(pred: torch.Tensor, target: torch.Tensor, classes: int, ignore_index: int | None) -> torch.Tensor:
    _check_truth_range(target, classes, ignore_index)
    images = target.shape[0]
    side = classes + 1  # the last bin of each class axis: no class (an ignored truth, a prediction outside [0, C))
    if target.numel() == 0:
        return torch.zeros(images, 3, classes, dtype=torch.int64, device=target.device)
    pred, target = pred.reshape(images, -1), target.reshape(images, -1)
    low, high = torch.aminmax(pred)
    clamp = int(low) < 0 or int(high) >= classes
    # A (truth, prediction) confusion matrix per image is one bincount; past a million bins (C above ~1000) three
    # bincounts of (image, class) keys keep memory linear in C.
    confusion = images * side * side <= max(1 << 20, target.numel())
    width = side * side if confusion else side
    counts = torch.zeros(width * images if confusion else 3 * images * side, dtype=torch.int64, device=target.device)
    base = (torch.arange(images, device=target.device) * width).view(-1, 1)
    step = max(1, _CHUNK // images)
    for start in range(0, target.shape[1], step):
        t = target[:, start : start + step].long()
        p = pred[:, start : start + step].long()
        if clamp:
            p = p.masked_fill((p < 0) | (p >= classes), classes)
        if ignore_index is not None:
            ignored = t == ignore_index
            t, p = t.masked_fill(ignored, classes), p.masked_fill(ignored, classes)
        if confusion:
            counts += torch.bincount((base + t * side + p).flatten(), minlength=counts.numel())
            continue
        t, p = base + t, base + p
        for row, keys in enumerate((t.where(t == p, base + classes), p, t)):
            counts[row * images * side : (row + 1) * images * side] += torch.bincount(
                keys.flatten(), minlength=images * side
            )
    if confusion:
        matrix = counts.view(images, side, side)
        tp = matrix.diagonal(dim1=1, dim2=2)[:, :classes]
        predicted = matrix[:, :, :classes].sum(1)  # an ignored truth has "no class" predicted
        positives = matrix[:, :classes, :].sum(2)
        return torch.stack([tp, predicted, positives], 1)
    return counts.view(3, images, side)[:, :, :classes].permute(1, 0, 2).contiguous()


def _mask_counts(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(2, p.dim()))
    return torch.stack([x.sum(dims, dtype=torch.int64) for x in (p & t, p, t)], 1)


def confusion_counts(pred, target, num_classes=None, ignore_index=None) -> torch.Tensor:
    """(B, 3, C) int64: true positives, predicted pixels and truth pixels per image and class."""
    num_classes = num_classes_arg(num_classes)
    labels = isinstance(target, torch.Tensor) and target.dtype != torch.bool
    if ignore_index is not None:
        if not labels:
            raise TypeError("ignore_index applies to label maps; give masks without the ignored pixels instead")
        ignore_index = check_ignore_index(ignore_index)
        assert ignore_index is not None
        info = torch.iinfo(target.dtype)
        if not info.min <= ignore_index <= info.max:  # no pixel holds it; comparing would wrap it (int8: 255 -> -1)
            ignore_index = None
    both_labels = labels and isinstance(pred, torch.Tensor) and pred.dtype != torch.bool
    if both_labels:
        check_labels("pred", pred, num_classes)
        check_labels("target", target, num_classes)
        if pred.shape != target.shape:
            raise ValueError(
                f"pred and target describe different shapes: {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        if pred.device != target.device:
            raise ValueError(f"pred is on {pred.device} and target on {target.device}; move them to one device")
        assert num_classes is not None
        return _label_counts(pred, target, num_classes, ignore_index)
    p = as_masks("pred", pred, num_classes)
    t = as_masks("target", target, num_classes)
    if p.shape != t.shape:
        raise ValueError(f"pred and target describe different shapes: {tuple(p.shape)} and {tuple(t.shape)}")
    if labels:
        assert num_classes is not None
        _check_truth_range(target, num_classes, ignore_index)
        if ignore_index is not None:
            valid = (target != ignore_index).unsqueeze(1)
            p, t = p & valid, t & valid
    return _mask_counts(p, t)
