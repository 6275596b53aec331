"""A RankSEG fitted on a labelled validation split: it calibrates, and it lets RankSEG decide only the classes for
which it measured a gain over argmax (multiclass) or the 0.5 threshold (multilabel).

RankSEG maximises the Dice or IoU *expected* under the probabilities it is given. Where a network's
probabilities are miscalibrated in the band where RankSEG acts, that can lose to argmax; nothing in the
probabilities alone tells. Fitting measures it. For every candidate (a calibration, then RankSEG with a
merge and pruning rule), it solves the validation split once and keeps, per pixel, the argmax label, the
candidate's label and the truth (as counts of distinct triples per image, so any mix of the two can be scored
without solving again). It then chooses the classes whose pixels RankSEG may label, greedily, adding a class
only while the per-image score rises by more than one standard error of the paired gain, and keeps the
candidate with the largest gain; if none gains more than one standard error over the baseline, the fitted
predictor *is* the baseline. The score is the user's: per image, the mean Dice (or IoU) over the classes
present in the truth (the MONAI and torchmetrics convention), averaged over images; or, with
``aggregation="dataset"``, each class's score from counts summed over the split, averaged over the classes
(the benchmark convention), whose error comes from bootstrap resamples of the images.

Predicting: ``labels = where(RankSEG label is a chosen class, RankSEG label, argmax label)`` for label maps;
per class, the RankSEG mask or the thresholded mask for multilabel outputs.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from . import calibration as cal
from ._counting import score
from ._ops import argmax_labels
from ._probs import check_probs
from ._solvers import check_multiclass

__all__ = ["FittedRankSEG", "fit", "load"]

FORMAT = "rankseg.fitted/1"
CALIBRATIONS = ("none", "temperature", "vector", "binning")
# The multiclass decision rules tried, as RankSEG solver parameters beside the segmenter's own.
MULTICLASS_RULES: tuple[dict[str, str], ...] = tuple(
    {"merge": merge, "pruning": pruning} for merge in ("prob", "gain") for pruning in ("argmax", "max_prob")
)


@dataclass
class ClassReport:
    """One class on the validation split: whether RankSEG labels it, the paired gain of its own score (fitted
    minus baseline: per image, over the images where the class is present; or of the split's summed counts)
    with its standard error, and the number of images where the class is present."""

    index: int
    rankseg: bool
    gain: float
    se: float
    images: int


def _per_class_scores(tp, pred, true, metric: str) -> torch.Tensor:
    """(images, C) Dice or IoU, NaN where the class is absent from the truth (skipped, the usual convention)."""
    return torch.where(true > 0, score(metric, tp, pred, true, 0.0, math.nan), math.nan)


class _Triples:
    """Per image, counts of (baseline label, candidate label, true label) over the validation pixels."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.keys: list[torch.Tensor] = []  # (image, base, cand, truth) packed in one int64
        self.counts: list[torch.Tensor] = []
        self.images = 0

    def add(self, base: torch.Tensor, cand: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor | None) -> None:
        c1 = self.classes + 1  # label C stands for "no class" (a void candidate label)
        b = base.shape[0]
        cand = torch.where((cand >= 0) & (cand < self.classes), cand, self.classes)
        image = torch.arange(self.images, self.images + b, device=base.device).view(b, *([1] * (base.dim() - 1)))
        key = ((image * c1 + base) * c1 + cand) * c1 + truth
        key = (key[valid] if valid is not None else key.reshape(-1)).cpu()
        space = (self.images + b) * c1**3
        if space <= 1 << 24:  # a dense count is much faster than sorting the keys
            counts = torch.bincount(key, minlength=space)
            unique = torch.nonzero(counts).flatten()
            counts = counts[unique]
        else:
            unique, counts = torch.unique(key, return_counts=True)
        self.keys.append(unique)
        self.counts.append(counts)
        self.images += b

    def unpack(self):
        key, count = torch.cat(self.keys), torch.cat(self.counts).double()
        c1 = self.classes + 1
        truth, key = key % c1, key // c1
        cand, key = key % c1, key // c1
        base, image = key % c1, key // c1
        return image, base, cand, truth, count


class _Scorer:
    """Scores any mix "candidate label where it is a chosen class, else the baseline label" from triples: the
    baseline's counts plus, for each chosen class, what moving its candidate pixels to it changes."""

    def __init__(self, triples: _Triples) -> None:
        image, base, cand, truth, count = triples.unpack()
        self.classes, self.images = triples.classes, triples.images
        width = self.classes + 1
        size = self.images * width
        self.tp, self.pred, self.true = (torch.zeros(size, dtype=torch.float64) for _ in range(3))
        self.pred.index_add_(0, image * width + base, count)
        self.true.index_add_(0, image * width + truth, count)
        self.tp.index_add_(0, image * width + base, count * (base == truth))
        # Per class c, the change of (tp, pred) when the pixels whose candidate label is c take it.
        self.delta_tp = torch.zeros(width, size, dtype=torch.float64)
        self.delta_pred = torch.zeros_like(self.delta_tp)
        moved = base != cand
        image, base, cand, truth, count = (x[moved] for x in (image, base, cand, truth, count))
        row = cand * size
        self.delta_pred.view(-1).index_add_(0, row + image * width + cand, count)
        self.delta_pred.view(-1).index_add_(0, row + image * width + base, -count)
        self.delta_tp.view(-1).index_add_(0, row + image * width + cand, count * (cand == truth))
        self.delta_tp.view(-1).index_add_(0, row + image * width + base, -count * (base == truth))

    def counts(self, chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """True positives and predicted pixels (..., images, C) of the mix, positives (images, C); `chosen` is
        bool (..., C), one mix per row."""
        weight = torch.cat([chosen, chosen.new_zeros((*chosen.shape[:-1], 1))], -1).double()
        tp = self.tp + weight @ self.delta_tp
        pred = self.pred + weight @ self.delta_pred
        view, c = (*chosen.shape[:-1], self.images, self.classes + 1), self.classes
        return tp.view(view)[..., :c], pred.view(view)[..., :c], self.true.view(view[-2:])[..., :c]


class _MaskScorer:
    """Scores per class "candidate mask if chosen, else baseline mask" from per-image, per-class counts."""

    def __init__(self) -> None:
        self.base: list[torch.Tensor] = []  # per batch (images, C, 3): tp, pred, true
        self.cand: list[torch.Tensor] = []
        self.images = 0

    def add(self, base: torch.Tensor, cand: torch.Tensor, truth: torch.Tensor) -> None:
        dims = tuple(range(2, truth.dim()))
        for store, masks in ((self.base, base), (self.cand, cand)):
            counts = [(masks & truth).sum(dims), masks.sum(dims), truth.sum(dims)]
            store.append(torch.stack(counts, -1).double().cpu())
        self.images += truth.shape[0]

    @functools.cached_property
    def tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The baseline's and the candidate's counts of the whole split, joined once all batches were added."""
        return torch.cat(self.base), torch.cat(self.cand)

    def counts(self, chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """True positives, predicted and positive pixels (..., images, C) of the mix; `chosen` is bool (..., C)."""
        base, cand = self.tables
        counts = torch.where(chosen.unsqueeze(-2).unsqueeze(-1), cand, base)
        return counts[..., 0], counts[..., 1], counts[..., 2]


AGGREGATIONS = ("per_image", "dataset")


class _Objective:
    """What fitting maximises, from per-image counts: the mean over images of the mean score over the classes
    present in each ("per_image"), or the mean over classes of the score of counts summed over the split
    ("dataset"); and how sure a paired gain is: its standard error over images, or for "dataset" the spread
    of the gain over bootstrap resamples of the images (the same resamples for every mix compared)."""

    def __init__(self, aggregation: str, images: int, metric: str, resamples: int = 200) -> None:
        self.per_image, self.metric = aggregation == "per_image", metric
        weights = torch.poisson(torch.ones(resamples, images, dtype=torch.float64), torch.Generator().manual_seed(0))
        self.weights = torch.cat([torch.ones(1, images, dtype=torch.float64), weights])  # row 0: the split itself

    def class_values(self, tp, pred, true) -> torch.Tensor:
        """(..., units, C): per image (NaN where absent), or per resample (row 0 the whole split)."""
        if self.per_image:
            return _per_class_scores(tp, pred, true, self.metric)
        w = self.weights
        return _per_class_scores(w @ tp, w @ pred, w @ true, self.metric)

    def values(self, tp, pred, true) -> torch.Tensor:
        return self.class_values(tp, pred, true).nanmean(-1)  # NaN for an image with no class present

    def gain_se(self, diff: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gain and its error from paired differences (..., units); NaN units (no class present) skipped."""
        if not self.per_image:
            return diff[..., 0], diff[..., 1:].std(-1)
        valid = ~diff.isnan()
        n = valid.sum(-1)
        d = diff.nan_to_num(0.0)
        mean = d.sum(-1) / n.clamp(min=1)
        var = ((d - mean.unsqueeze(-1)) ** 2 * valid).sum(-1) / (n - 1).clamp(min=1)
        se = torch.where(n > 1, (var / n.clamp(min=1)).sqrt(), torch.full_like(mean, math.inf))
        return torch.where(n > 0, mean, torch.zeros_like(mean)), se

    def point(self, values: torch.Tensor) -> float:
        return float(values.nanmean() if self.per_image else values[0])


def _choose_classes(scorer, classes: int, objective: _Objective) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy choice of the classes RankSEG decides: add the class whose paired gain is largest, while that gain
    exceeds its error. Returns the chosen classes and the mix's values (per image or per resample)."""
    chosen = torch.zeros(classes, dtype=torch.bool)
    current = objective.values(*scorer.counts(chosen))
    while not chosen.all():
        left = torch.nonzero(~chosen).flatten()
        trials = chosen.unsqueeze(0) | torch.nn.functional.one_hot(left, classes).bool()  # one more class each
        values = objective.values(*scorer.counts(trials))  # (trials, units), all trials in one go
        gain, se = objective.gain_se(values - current)
        gain = torch.where((gain > se) & (gain > 0), gain, torch.full_like(gain, -math.inf))
        best = int(gain.argmax())  # the first of equal gains: the lowest class index
        if gain[best] == -math.inf:
            break
        chosen[left[best]] = True
        current = values[best]
    return chosen, current


@dataclass
class _Candidate:
    calibration: str
    rule: dict
    chosen: torch.Tensor
    gain: float
    se: float
    class_values: torch.Tensor  # (units, C) of the mix


class FittedRankSEG:
    """RankSEG with a calibration and the classes it decides, chosen on a validation split; made by
    :meth:`rankseg.RankSEG.fit` or :func:`load`. Calling it (or :meth:`predict`) predicts like the segmenter
    it was fitted from: label maps for multiclass, masks for multilabel.

    Attributes:
        segmenter: the :class:`rankseg.RankSEG` that decides the chosen classes (its rule as fitted).
        calibrator: the fitted calibrator applied before RankSEG, or None.
        rankseg_classes: bool ``(C,)``, the classes RankSEG decides; the others keep the argmax label (or the
            0.5 threshold).
        gain, gain_se: the fitted predictor's paired gain over the baseline on the validation split, in score
            units (0.01 is one Dice point), and its standard error (over images, or over bootstrap resamples of
            the images for ``aggregation="dataset"``).
        baseline_score, aggregation: the baseline's score on the validation split, and how it was aggregated.
        classes: a :class:`ClassReport` per class.
    """

    def __init__(
        self,
        segmenter,
        calibrator,
        rankseg_classes: torch.Tensor,
        gain: float,
        gain_se: float,
        classes: list[ClassReport],
        baseline_score: float,
        aggregation: str = "per_image",
    ) -> None:
        self.segmenter = segmenter
        self.calibrator = calibrator
        self.rankseg_classes = rankseg_classes.bool().cpu()
        self.gain, self.gain_se = gain, gain_se
        self.classes = classes
        self.baseline_score = baseline_score
        self.aggregation = aggregation

    @property
    def mode(self) -> str:
        return self.segmenter.output_mode

    def predict(self, probs: torch.Tensor, *, check_values: bool = True) -> torch.Tensor:
        """Labels ``(B, *spatial)`` (multiclass) or masks ``(B, C, *spatial)`` (multilabel) for ``probs``."""
        c = probs.shape[1] if isinstance(probs, torch.Tensor) and probs.dim() >= 2 else None
        if c is not None and c != len(self.rankseg_classes):
            raise ValueError(f"this RankSEG was fitted on {len(self.rankseg_classes)} classes, probs has {c}")
        multiclass = self.mode == "multiclass"
        if not self.rankseg_classes.any():  # the baseline won: no solve at all
            check_probs(probs)
            if multiclass:
                check_multiclass(self.segmenter.options, probs)
            return argmax_labels(probs) if multiclass else probs > 0.5
        calibrated = self.calibrator(probs) if self.calibrator is not None else probs
        decided = self.segmenter.predict(calibrated, check_values=check_values)
        if self.rankseg_classes.all() and not (multiclass and self.segmenter.options.unassigned_policy == "void"):
            return decided  # (void labels are no class: they take the argmax label below, as fitting scored them)
        chosen = self.rankseg_classes.to(probs.device)
        if multiclass:
            index = torch.where((decided >= 0) & (decided < len(chosen)), decided, len(chosen))  # void: no class
            in_chosen = torch.cat([chosen, chosen.new_zeros(1)])[index]
            return torch.where(in_chosen, decided, argmax_labels(probs))
        view = (1, -1) + (1,) * (probs.dim() - 2)
        return torch.where(chosen.view(view), decided, probs > 0.5)

    __call__ = predict

    def report(self) -> str:
        """A table of the validation gains, per class and in all, in score points (x100)."""
        o = self.segmenter.options
        rule = f"merge={o.merge!r}, pruning={o.pruning!r}" if self.mode == "multiclass" else "per-class masks"
        base = "argmax" if self.mode == "multiclass" else "threshold 0.5"
        calib = "none" if self.calibrator is None else self.calibrator.kind
        lines = [
            f"fitted RankSEG ({o.metric}): calibration {calib}, {rule}",
            f"validation: {base} {100 * self.baseline_score:.2f}, fitted {100 * (self.baseline_score + self.gain):.2f}"
            f" ({100 * self.gain:+.2f} ± {100 * self.gain_se:.2f}, {self.aggregation.replace('_', '-')} score)",
            "class  decided by  change of its score ± se  images",
        ]
        for r in self.classes:
            lines.append(f"{r.index:>5}  {'RankSEG' if r.rankseg else base:>10}  {100 * r.gain:+.2f} ± "
                         f"{100 * r.se:.2f}  {r.images}")  # fmt: skip
        return "\n".join(lines)

    def __repr__(self) -> str:
        chosen = torch.nonzero(self.rankseg_classes).flatten().tolist()
        calib = None if self.calibrator is None else self.calibrator.kind
        return f"FittedRankSEG({self.segmenter!r}, calibration={calib!r}, rankseg_classes={chosen})"

    def to_dict(self) -> dict[str, Any]:
        o = self.segmenter.options
        return {
            "format": FORMAT,
            "segmenter": {"metric": o.metric, "smooth": o.smooth, "output_mode": o.output_mode, "solver": o.solver,
                          "pruning_prob": o.pruning_prob, "params": _effective_params(self.segmenter)},
            "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
            "rankseg_classes": self.rankseg_classes.tolist(),
            "gain": self.gain, "gain_se": self.gain_se, "baseline_score": self.baseline_score,
            "aggregation": self.aggregation,
            "classes": [vars(r) for r in self.classes],
        }  # fmt: skip

    def save(self, path: str | os.PathLike) -> None:
        """Writes the fitted predictor as a small JSON file."""
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)


def _effective_params(segmenter) -> dict[str, Any]:
    """The segmenter's solver parameters, defaults included, so that a saved file does not depend on them."""
    o = segmenter.options
    params = dict(segmenter.solver_params)
    if o.output_mode == "multiclass" and o.solver in ("RMA", "exact"):
        params.update(unassigned_policy=o.unassigned_policy, pruning=o.pruning, merge=o.merge)
    elif o.solver in ("BA", "TRNA", "BA+TRNA"):
        params["eps"] = o.eps
    return params


def from_dict(d: dict[str, Any]) -> FittedRankSEG:
    from ._rankseg import RankSEG

    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"not a fitted RankSEG: expected format {FORMAT!r}, got {str(d)[:80]!r}")
    s = d["segmenter"]
    segmenter = RankSEG(s["metric"], s["smooth"], s["output_mode"], s["solver"], s["pruning_prob"], **s["params"])
    calibrator = None if d["calibrator"] is None else cal.from_dict(d["calibrator"])
    classes = [ClassReport(**r) for r in d["classes"]]
    return FittedRankSEG(segmenter, calibrator, torch.tensor(d["rankseg_classes"], dtype=torch.bool), d["gain"],
                         d["gain_se"], classes, d["baseline_score"], d.get("aggregation", "per_image"))  # fmt: skip


def load(path: str | os.PathLike) -> FittedRankSEG:
    """A fitted RankSEG saved by :meth:`FittedRankSEG.save`."""
    with open(path) as f:
        return from_dict(json.load(f))


def _reiterable(probs, labels):
    pairs = cal.batches(probs, labels)
    if iter(pairs) is pairs:
        raise TypeError(
            "probs must be tensors or a re-iterable of (probs, labels) batches (a list or a DataLoader): fitting "
            "reads the validation split twice; got a one-shot iterator"
        )
    return pairs


def fit(segmenter, probs, labels=None, *, ignore_index: int | None = None,
        calibrations: tuple[str, ...] = CALIBRATIONS, aggregation: str = "per_image") -> FittedRankSEG:  # fmt: skip
    """See :meth:`rankseg.RankSEG.fit`."""
    from ._rankseg import RankSEG

    o = segmenter.options
    given = segmenter.solver_params  # the segmenter's own parameters, which every candidate keeps (eps, void_index)
    if o.metric not in ("dice", "iou"):
        raise ValueError(f"fit chooses by Dice or IoU; this RankSEG has metric={o.metric!r}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    for name in calibrations:
        if name not in CALIBRATIONS:
            raise ValueError(f"calibrations must be drawn from {CALIBRATIONS}, got {name!r}")
    mode = o.output_mode
    pairs = _reiterable(probs, labels)

    # First the calibrators, each reading the split once.
    fitted: dict[str, Any] = {"none": None}
    for name in calibrations:
        if name != "none":
            fitted[name] = cal.CALIBRATORS[name](mode).fit(pairs, ignore_index=ignore_index)

    # Then one more read: each candidate solved once per batch, its labels recorded beside the baseline's and the
    # truth. The multiclass rules are tried beside the segmenter's own.
    rules: dict[Any, tuple[dict, Any]] = {}  # by the settings they make, so that no rule is solved twice
    for rule in [given] + ([dict(given, **r) for r in MULTICLASS_RULES] if mode == "multiclass" else []):
        seg = RankSEG(o.metric, o.smooth, mode, o.solver, o.pruning_prob, num_threads=o.num_threads, **rule)
        rules.setdefault(seg.options, (rule, seg))
    candidates = [(name, rule) for name in fitted for rule, _ in rules.values()]
    segmenters = [seg for _ in fitted for _, seg in rules.values()]
    records: list[Any] = []
    classes = None
    for p, y in pairs:
        cal.check_pair(p, y, mode, ignore_index)
        cal.check_classes(classes, p.shape[1])
        if classes is None:
            classes = p.shape[1]
            records = [_Triples(classes) if mode == "multiclass" else _MaskScorer() for _ in candidates]
        calibrated = {name: (p if c is None else c(p)) for name, c in fitted.items()}
        if mode == "multiclass":
            base = argmax_labels(p)
            valid = None if ignore_index is None else y != ignore_index
            truth = y.where(valid, 0) if valid is not None else y
            for record, (name, _), seg in zip(records, candidates, segmenters):
                record.add(base, seg(calibrated[name]), truth.long(), valid)
        else:
            base = p > 0.5
            for record, (name, _), seg in zip(records, candidates, segmenters):
                record.add(base, seg(calibrated[name]), y)
    if classes is None:
        raise ValueError("fit needs at least one batch")

    scorers = [_Scorer(record) if mode == "multiclass" else record for record in records]
    objective = _Objective(aggregation, scorers[0].images, o.metric)
    nobody = torch.zeros(classes, dtype=torch.bool)
    base_counts = scorers[0].counts(nobody)  # the baseline is the same in every candidate
    base_values = objective.values(*base_counts)
    best: _Candidate | None = None
    for scorer, (name, rule) in zip(scorers, candidates):
        chosen, values = _choose_classes(scorer, classes, objective)
        gain, se = (float(x) for x in objective.gain_se(values - base_values))
        if chosen.any() and gain > se and (best is None or gain > best.gain):
            best = _Candidate(name, rule, chosen, gain, se, objective.class_values(*scorer.counts(chosen)))
    base_class_values = objective.class_values(*base_counts)
    if best is None:  # nothing beat the baseline by its error: the baseline it is
        best = _Candidate("none", given, nobody, 0.0, 0.0, base_class_values)
    class_gain, class_se = objective.gain_se((best.class_values - base_class_values).t())
    present = (base_counts[2] > 0).sum(0)
    reports = [
        ClassReport(c, bool(best.chosen[c]), float(class_gain[c]), float(class_se[c]), int(present[c]))
        for c in range(classes)
    ]
    chosen_segmenter = RankSEG(
        o.metric, o.smooth, mode, o.solver, o.pruning_prob, num_threads=o.num_threads, **best.rule
    )
    return FittedRankSEG(chosen_segmenter, fitted[best.calibration], best.chosen, best.gain, best.se, reports,
                         objective.point(base_values), aggregation)  # fmt: skip
