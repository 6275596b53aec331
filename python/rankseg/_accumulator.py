"""Dice and IoU over a dataset, from per-image counts: updated batch by batch, merged across workers."""

from __future__ import annotations

import math
import numbers

import torch

from ._counting import check_ignore_index, confusion_counts, num_classes_arg, score

METRICS = ("dice", "iou")


def _scores(metric: str, counts: torch.Tensor, smooth: float) -> torch.Tensor:
    """Dice or IoU of (..., 3, C) counts, NaN where nothing is predicted or present (0/0 without smoothing)."""
    tp, predicted, positives = counts.double().unbind(-2)
    return score(metric, tp, predicted, positives, smooth, math.nan)


class Accumulator:
    """Dice and IoU over a dataset, in both ways they are averaged, from one count per image and class.

    * **Per image** (the MONAI and torchmetrics convention, the score :meth:`rankseg.RankSEG.fit` maximises):
      each image's mean over the classes present in its truth, averaged over images. With
      ``ignore_empty=False`` a class absent from an image's truth counts too: 1 if it is also absent from the
      prediction, else 0 (MONAI's ``ignore_empty=False``).
    * **Dataset** (the benchmark convention, e.g. ADE20K or Cityscapes mIoU): each class's score from its
      counts summed over the dataset, averaged over the classes predicted or present anywhere (others are NaN).

    The two can disagree in sign when comparing methods: summed counts weigh large objects, the per-image mean
    weighs every image alike. Counts are exact integers, so accumulators updated in any order, on any number of
    workers, merge into the same result.

    Args:
        num_classes: needed for label maps; masks carry their classes.
        ignore_index: label-map truths equal to it are left out, from the prediction too.
        smooth: smoothing of both scores, as in :func:`rankseg.metrics.dice`.
        ignore_empty: skip, per image, the classes absent from its truth.

    Example:
        >>> acc = Accumulator(num_classes=3)
        >>> for pred, truth in batches:  # label maps (B, *spatial)
        ...     acc.update(pred, truth)
        >>> acc.compute()["dataset"]["iou"]  # benchmark mIoU
    """

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        ignore_index: int | None = None,
        smooth: float = 0.0,
        ignore_empty: bool = True,
    ) -> None:
        self.num_classes = num_classes_arg(num_classes)
        if isinstance(smooth, bool) or not isinstance(smooth, numbers.Real):
            raise TypeError(f"smooth must be a real number, got {smooth!r}")
        if not smooth >= 0 or math.isinf(smooth):
            raise ValueError(f"smooth must be finite and >= 0, got {smooth!r}")
        if not isinstance(ignore_empty, bool):
            raise TypeError(f"ignore_empty must be True or False, got {ignore_empty!r}")
        self.ignore_index: int | None = check_ignore_index(ignore_index)
        self.smooth: float = float(smooth)
        self.ignore_empty: bool = ignore_empty
        self.totals: torch.Tensor | None = None  # (3, C) int64 summed over images
        self._class_sums: dict[str, torch.Tensor] = {}  # per metric: (C,) sums of per-image class scores
        self._class_images: torch.Tensor = torch.zeros(0, dtype=torch.int64)  # (C,) images scoring each class
        self._image_means: dict[str, list[float]] = {m: [] for m in METRICS}

    def _settings(self) -> tuple:
        return self.ignore_index, self.smooth, self.ignore_empty

    @property
    def images(self) -> int:
        return len(self._image_means["dice"])

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Adds a batch: label maps ``(B, *spatial)`` or bool masks ``(B, C, *spatial)``; returns its counts."""
        counts = confusion_counts(pred, target, self.num_classes, self.ignore_index)
        self.update_counts(counts)
        return counts

    def update_counts(self, counts) -> None:
        """Adds per-image counts ``(B, 3, C)`` (or ``(3, C)`` for one image), as :func:`confusion_counts` returns
        and :class:`rankseg.integration.batches.BatchSegmenter` emits; NumPy arrays are accepted."""
        if not isinstance(counts, torch.Tensor):  # NumPy, or rows of a table (a datasets column, a list)
            import numpy as np  # only such inputs need it: import rankseg does not

            counts = np.asarray(counts)
        counts = torch.as_tensor(counts).cpu()
        if counts.dim() == 2:
            counts = counts.unsqueeze(0)
        if counts.dim() != 3 or counts.shape[1] != 3 or counts.is_floating_point() or counts.dtype == torch.bool:
            raise ValueError(
                f"counts must be integer (B, 3, C) (true positives, predicted, truth), got {counts.dtype} "
                f"{tuple(counts.shape)}"
            )
        counts = counts.long()
        tp, predicted, positives = counts.unbind(1)
        if bool((tp < 0).any()) or bool((tp > predicted).any()) or bool((tp > positives).any()):
            raise ValueError(
                "counts must hold, per image and class, true positives <= predicted pixels and <= truth pixels, "
                "none negative; pass what confusion_counts returns"
            )
        classes = counts.shape[2]
        if self.totals is None:
            if self.num_classes is not None and classes != self.num_classes:
                raise ValueError(f"counts hold {classes} classes, this accumulator num_classes={self.num_classes}")
            self.totals = torch.zeros(3, classes, dtype=torch.int64)
            self._class_sums = {m: torch.zeros(classes, dtype=torch.float64) for m in METRICS}
            self._class_images = torch.zeros(classes, dtype=torch.int64)
        elif classes != self.totals.shape[1]:
            raise ValueError(f"counts hold {classes} classes, earlier ones {self.totals.shape[1]}")
        self.totals += counts.sum(0)
        present = counts[:, 2] > 0
        scored = present if self.ignore_empty else torch.ones_like(present)
        self._class_images += scored.sum(0)
        for metric in METRICS:
            scores = _scores(metric, counts, self.smooth)
            if not self.ignore_empty:  # absent from truth: 1 if also absent from the prediction, else 0
                scores = torch.where(present, scores, (counts[:, 1] == 0).double())
            scores = torch.where(scored, scores, math.nan)
            self._class_sums[metric] += scores.nan_to_num(0.0).sum(0)
            self._image_means[metric] += scores.nanmean(1).tolist()

    def merge(self, other: Accumulator) -> Accumulator:
        """Adds another accumulator's images to this one (e.g. from another worker); returns self."""
        if not isinstance(other, Accumulator):
            raise TypeError(f"merge takes an Accumulator, got {type(other).__name__}")
        if other is self:
            raise ValueError("merge: an accumulator cannot take its own images twice")
        if other._settings() != self._settings():
            raise ValueError("merge takes an accumulator with the same ignore_index, smooth and ignore_empty")
        if other.totals is None:
            return self
        classes = other.totals.shape[1]
        if self.num_classes is not None and classes != self.num_classes:
            raise ValueError(
                f"merge: the other accumulator holds {classes} classes, this one num_classes={self.num_classes}"
            )
        if self.totals is None:
            self.totals = other.totals.clone()
            self._class_sums = {m: s.clone() for m, s in other._class_sums.items()}
            self._class_images = other._class_images.clone()
        elif other.totals.shape != self.totals.shape:
            raise ValueError(f"merge: {other.totals.shape[1]} classes against {self.totals.shape[1]}")
        else:
            self.totals += other.totals
            for m in METRICS:
                self._class_sums[m] += other._class_sums[m]
            self._class_images += other._class_images
        for m in METRICS:
            self._image_means[m] += other._image_means[m]
        return self

    def image_scores(self, metric: str = "dice") -> torch.Tensor:
        """(images,) float64: each image's mean score over its scored classes, NaN for an image with none, in
        the order the images were added (for paired comparisons between methods)."""
        if metric not in METRICS:
            raise ValueError(f"metric must be 'dice' or 'iou', got {metric!r}")
        return torch.tensor(self._image_means[metric], dtype=torch.float64)

    def compute(self) -> dict:
        """``{"images": n, "per_image": {"dice", "iou"}, "dataset": {"dice", "iou"}, "per_class": {"per_image":
        {"dice": [...], "iou": [...]}, "dataset": {...}}}``: means over classes in [0, 1], per-class lists beside
        them; NaN where nothing was scored."""
        if self.totals is None or self.images == 0:
            raise ValueError("compute: no images were added")
        result: dict = {"images": self.images, "per_image": {}, "dataset": {}, "per_class": {}}
        per_image, dataset = {}, {}
        for m in METRICS:
            per_image[m] = self._class_sums[m] / self._class_images.double()  # NaN where never scored
            # A class never predicted nor present is not scored, smoothing or not (s / s would count it as 1).
            seen = (self.totals[1] + self.totals[2]) > 0
            dataset[m] = torch.where(seen, _scores(m, self.totals, self.smooth), math.nan)
            result["per_image"][m] = float(self.image_scores(m).nanmean())
            result["dataset"][m] = float(dataset[m].nanmean())
        result["per_class"] = {
            "per_image": {m: per_image[m].tolist() for m in METRICS},
            "dataset": {m: dataset[m].tolist() for m in METRICS},
        }
        return result
