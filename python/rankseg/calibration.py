"""Calibration of segmentation probabilities, fitted on a labelled validation split.

RankSEG takes the probabilities at their word: where a network is over- or under-confident, the masks that
maximise *expected* Dice under its probabilities are not the ones that score best. A calibrator maps the
network's probabilities to better ones; three kinds, from the fewest parameters to the most:

* :class:`Temperature`: one temperature ``T`` for every class, ``softmax(log p / T)`` (or ``sigmoid(logit p /
  T)``); fitted by minimising the negative log-likelihood.
* :class:`VectorScaling`: a scale and a bias per class on the logits, fitted the same way.
* :class:`Binning`: per class, a monotone map of the probability, the isotonic fit of the observed frequency
  of that class in equal-width probability bins, linearly interpolated between bin centres. It can fix a
  decision band that a single temperature cannot (a network right at 0.9 and wrong at 0.45).

All take probabilities, ``(B, C, *spatial)``: softmax outputs with ``mode="multiclass"`` (labels are label
maps ``(B, *spatial)``) or sigmoid outputs with ``mode="multilabel"`` (labels are bool masks of the same
shape). ``fit`` takes tensors or an iterable of ``(probs, labels)`` batches, read once; ``apply`` (or calling
the calibrator) is one elementwise pass on the input's device. ``to_dict`` / :func:`from_dict` give a
JSON-compatible form. :func:`ece` measures top-label and class-wise expected calibration error.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import torch

from ._probs import check_value_range

__all__ = ["Temperature", "VectorScaling", "Binning", "CALIBRATORS", "ece", "from_dict"]

MODES = ("multiclass", "multilabel")
_TINY = 1e-7  # probabilities are clamped to [TINY, 1 - TINY] before taking logs


def check_mode(mode: object) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be 'multiclass' (softmax outputs) or 'multilabel' (sigmoid), got {mode!r}")
    return str(mode)


def check_pair(probs: object, labels: object, mode: str, ignore_index: int | None = None) -> None:
    """Shapes, dtypes and label values of one validation batch."""
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point() or probs.dim() < 3:
        raise TypeError(f"probs must be a floating-point torch.Tensor (B, C, *spatial), got {_kind(probs)}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    shape = tuple(probs.shape)
    if mode == "multiclass":
        if labels.dtype == torch.bool or labels.is_floating_point():
            raise TypeError(
                f"labels for mode='multiclass' must be integer label maps (B, *spatial), got {labels.dtype}"
            )
        if tuple(labels.shape) != shape[:1] + shape[2:]:
            raise ValueError(
                f"labels must have shape {shape[:1] + shape[2:]} for probs {shape}, got {tuple(labels.shape)}"
            )
        valid = labels if ignore_index is None else labels[labels != ignore_index]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= shape[1]):
            bad = int(valid.min()) if int(valid.min()) < 0 else int(valid.max())
            hint = "" if ignore_index is not None else " (pass ignore_index for a void label)"
            raise ValueError(f"labels must lie in [0, {shape[1]}), found {bad}{hint}")
    else:
        if labels.dtype != torch.bool:
            raise TypeError(f"labels for mode='multilabel' must be bool masks (B, C, *spatial), got {labels.dtype}")
        if tuple(labels.shape) != shape:
            raise ValueError(f"labels must have the shape of probs {shape}, got {tuple(labels.shape)}")
        if ignore_index is not None:
            raise TypeError("ignore_index applies to label maps (mode='multiclass')")
    check_value_range(probs)  # RankSEG's own check and message (the range, and a hint for logits)


def check_classes(first: int | None, classes: int) -> None:
    """Every batch of a split must have the classes of the first."""
    if first is not None and classes != first:
        raise ValueError(f"every batch must have the same number of classes, got {first} and then {classes}")


def _kind(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def batches(probs, labels=None) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """``(probs, labels)`` tensors, or an iterable of such pairs, as an iterable of pairs."""
    if isinstance(probs, torch.Tensor):
        if labels is None:
            raise TypeError("labels must be given with a probs tensor")
        return [(probs, labels)]
    if labels is not None:
        raise TypeError("give labels inside the batches when probs is an iterable of (probs, labels) pairs")
    return probs


def logits_of(probs: torch.Tensor, mode: str) -> torch.Tensor:
    """float32 logits whose softmax (multiclass) or sigmoid (multilabel) gives probs back."""
    p = probs.float().clamp(_TINY, 1 - _TINY)
    return p.log() if mode == "multiclass" else p.log() - (-p).log1p()


def probs_of(logits: torch.Tensor, mode: str) -> torch.Tensor:
    return logits.softmax(1) if mode == "multiclass" else logits.sigmoid()


def _pixel_sample(probs: torch.Tensor, labels: torch.Tensor, mode: str, ignore_index, step: int):
    """Every `step`-th pixel of a batch as (pixels, C) logits and (pixels,) labels or (pixels, C) targets."""
    c = probs.shape[1]
    z = logits_of(probs, mode).movedim(1, -1).reshape(-1, c)[::step]
    if mode == "multiclass":
        y = labels.reshape(-1)[::step].long()
        if ignore_index is not None:
            keep = y != ignore_index
            z, y = z[keep], y[keep]
        return z.cpu(), y.cpu()
    return z.cpu(), labels.movedim(1, -1).reshape(-1, c)[::step].float().cpu()


class _LogitCalibrator:
    """Shared fitting of the logit-space calibrators: NLL by L-BFGS on a fixed sample of pixels."""

    kind = ""
    # Pixels the fit sees: ample for one or 2 C parameters, and few enough values (pixels x classes) that
    # fitting stays a matter of seconds.
    max_pixels = 250_000
    max_values = 2_000_000

    def __init__(self, mode: str = "multiclass") -> None:
        self.mode = check_mode(mode)
        self.scale: torch.Tensor | None = None  # (C,) or (1,)
        self.bias: torch.Tensor | None = None

    def pixel_limit(self, classes: int) -> int:
        return max(20_000, min(self.max_pixels, self.max_values // classes))

    def _params(self, classes: int) -> list[torch.Tensor]:
        raise NotImplementedError

    def fit(self, probs, labels=None, *, ignore_index: int | None = None):
        """Fits on tensors ``probs`` ``(B, C, *spatial)`` and ``labels``, or on an iterable of such pairs."""
        zs: list[torch.Tensor] = []
        ys: list[torch.Tensor] = []
        for p, y in batches(probs, labels):
            check_pair(p, y, self.mode, ignore_index)
            check_classes(zs[0].shape[1] if zs else None, p.shape[1])
            limit = self.pixel_limit(p.shape[1])
            step = max(1, math.ceil(p.numel() / p.shape[1] / limit))  # at most `limit` pixels per batch
            z, t = _pixel_sample(p, y, self.mode, ignore_index, step)
            zs.append(z)
            ys.append(t)
        if not zs or sum(len(z) for z in zs) == 0:
            raise ValueError("fit needs at least one labelled pixel")
        z, y = torch.cat(zs).double(), torch.cat(ys)
        if len(z) > self.pixel_limit(z.shape[1]):
            keep = torch.randperm(len(z), generator=torch.Generator().manual_seed(0))[: self.pixel_limit(z.shape[1])]
            z, y = z[keep], y[keep]
        log_scale, bias = self._params(z.shape[1])
        opt = torch.optim.LBFGS([log_scale, bias], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")
        loss_fn = torch.nn.functional.cross_entropy if self.mode == "multiclass" else _bce

        def closure():
            opt.zero_grad()
            loss = loss_fn(z * log_scale.exp() + bias, y.double() if self.mode == "multilabel" else y)
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        self.scale, self.bias = log_scale.detach().exp().float(), bias.detach().float()
        return self

    def apply(self, probs: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities, float32, on the device of probs."""
        if self.scale is None or self.bias is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")
        c = probs.shape[1]
        if self.scale.numel() not in (1, c):
            raise ValueError(f"calibrator was fitted on {self.scale.numel()} classes, probs has {c}")
        view = (1, -1) + (1,) * (probs.dim() - 2)
        scale, bias = self.scale.to(probs.device).view(view), self.bias.to(probs.device).view(view)
        return probs_of(logits_of(probs, self.mode) * scale + bias, self.mode)

    __call__ = apply

    def to_dict(self) -> dict:
        if self.scale is None or self.bias is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")
        return {"kind": self.kind, "mode": self.mode, "scale": self.scale.tolist(), "bias": self.bias.tolist()}

    def _load(self, d: dict):
        self.scale = torch.tensor(d["scale"], dtype=torch.float32)
        self.bias = torch.tensor(d["bias"], dtype=torch.float32)
        return self

    def __repr__(self) -> str:
        fitted = "" if self.scale is None else f", scale={[round(x, 4) for x in self.scale.tolist()]}"
        return f"{type(self).__name__}(mode={self.mode!r}{fitted})"


def _bce(z, y):
    return torch.nn.functional.binary_cross_entropy_with_logits(z, y)


class Temperature(_LogitCalibrator):
    """One temperature for all classes: logits divided by ``T`` (``scale = 1 / T``, no bias)."""

    kind = "temperature"

    def _params(self, classes: int):
        return torch.zeros(1, dtype=torch.float64, requires_grad=True), torch.zeros(1, dtype=torch.float64)

    @property
    def temperature(self) -> float:
        if self.scale is None:
            raise RuntimeError("Temperature is not fitted: call fit first")
        return 1.0 / float(self.scale)


class VectorScaling(_LogitCalibrator):
    """A scale and a bias per class on the logits."""

    kind = "vector"

    def _params(self, classes: int):
        return (
            torch.zeros(classes, dtype=torch.float64, requires_grad=True),
            torch.zeros(classes, dtype=torch.float64, requires_grad=True),
        )


def isotonic(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The non-decreasing sequence closest to `values` in weighted least squares (pool adjacent violators)."""
    blocks: list[tuple[float, float, int]] = []  # (mean, weight, how many values it pools)
    for v, w in zip(values.tolist(), weights.tolist()):
        blocks.append((v, w, 1))
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks[-1]
            total = w1 + w2
            blocks[-1] = ((v1 * w1 + v2 * w2) / total if total > 0 else v1, total, n1 + n2)
    out = [mean for mean, _, n in blocks for _ in range(n)]
    return torch.tensor(out, dtype=torch.float64)


class Binning:
    """Per class, a monotone map of the probability: isotonic histogram binning.

    For each class, the observed frequency of the class among the validation pixels in each of ``bins``
    equal-width probability bins, made non-decreasing in the probability (weighted by the pixel counts, so
    the map keeps the order of pixels within a class) and interpolated linearly between the bins' mean
    probabilities; empty bins take the identity. Multiclass outputs are renormalised to sum to one per pixel.
    """

    kind = "binning"
    bins: int

    def __init__(self, mode: str = "multiclass", bins: int = 50) -> None:
        self.mode = check_mode(mode)
        if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or not 2 <= bins <= 10_000:
            raise ValueError(f"bins must be an int in [2, 10000], got {bins!r}")
        self.bins = int(bins)
        self.knots: torch.Tensor | None = None  # (C, bins) mean probability per bin
        self.values: torch.Tensor | None = None  # (C, bins) calibrated probability at each knot

    def fit(self, probs, labels=None, *, ignore_index: int | None = None):
        """Fits on tensors ``probs`` ``(B, C, *spatial)`` and ``labels``, or on an iterable of such pairs."""
        hist: torch.Tensor | None = None  # (3, C, bins): pixels, their probability sum, how many are the class
        bins = self.bins
        for p, y in batches(probs, labels):
            check_pair(p, y, self.mode, ignore_index)
            c = p.shape[1]
            check_classes(None if hist is None else hist.shape[1], c)
            b = p.shape[0]
            x = p.detach().double().reshape(b, c, -1)  # the layout as it comes: no transposed copy
            if self.mode == "multiclass":
                flat = y.reshape(b, 1, -1)
                t = (flat == torch.arange(c, device=y.device).view(1, c, 1)).double()
            else:
                t = y.reshape(b, c, -1).double()
            index = (x * bins).long().clamp(0, bins - 1) + (torch.arange(c, device=x.device) * bins).view(1, c, 1)
            if self.mode == "multiclass" and ignore_index is not None:
                keep = (flat != ignore_index).expand_as(x)
                x, t, index = x[keep], t[keep], index[keep]
            index = index.reshape(-1)
            batch = torch.stack(
                [torch.bincount(index, w, minlength=c * bins) for w in (None, x.reshape(-1), t.reshape(-1))]
            )
            hist = batch.view(3, c, bins).cpu().double() + (0 if hist is None else hist)
        if hist is None or hist[0].sum() == 0:
            raise ValueError("fit needs at least one labelled pixel")
        count, mass, hits = hist
        centres = (torch.arange(bins, dtype=torch.float64) + 0.5) / bins
        filled = count > 0
        knots = torch.where(filled, mass / count.clamp(min=1), centres)
        freq = torch.where(filled, hits / count.clamp(min=1), knots)
        self.knots = knots.float()
        self.values = torch.stack([isotonic(freq[k], count[k]) for k in range(len(freq))]).float()
        return self

    def apply(self, probs: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities, float32, on the device of probs."""
        if self.knots is None or self.values is None:
            raise RuntimeError("Binning is not fitted: call fit first")
        c = probs.shape[1]
        if self.knots.shape[0] != c:
            raise ValueError(f"calibrator was fitted on {self.knots.shape[0]} classes, probs has {c}")
        # The knots are increasing and each lies in its own bin, so the segment holding x starts at x's bin or at
        # the one before: no search is needed, only x's bin and a comparison with that bin's knot.
        b, bins = probs.shape[0], self.bins
        x = probs.float().reshape(b, c, -1)
        knots, values = self.knots.to(x.device).view(-1), self.values.to(x.device).view(-1)
        offset = (torch.arange(c, device=x.device) * bins).view(1, c, 1)
        own = (x * bins).long().clamp(0, bins - 1)
        right = torch.where(x > knots[own + offset], own + 1, own).clamp(1, bins - 1) + offset
        k0, k1, v0, v1 = knots[right - 1], knots[right], values[right - 1], values[right]
        w = ((x - k0) / (k1 - k0).clamp(min=1e-12)).clamp(0, 1)
        out = (v0 + w * (v1 - v0)).reshape(probs.shape)
        if self.mode == "multiclass":
            out = out / out.sum(1, keepdim=True).clamp(min=1e-12)
        return out.clamp(0, 1)

    __call__ = apply

    def to_dict(self) -> dict:
        if self.knots is None or self.values is None:
            raise RuntimeError("Binning is not fitted: call fit first")
        return {"kind": self.kind, "mode": self.mode, "bins": self.bins, "knots": self.knots.tolist(),
                "values": self.values.tolist()}  # fmt: skip

    def _load(self, d: dict):
        self.knots = torch.tensor(d["knots"], dtype=torch.float32)
        self.values = torch.tensor(d["values"], dtype=torch.float32)
        return self

    def __repr__(self) -> str:
        return f"Binning(mode={self.mode!r}, bins={self.bins}{'' if self.knots is None else ', fitted'})"


CALIBRATORS = {"temperature": Temperature, "vector": VectorScaling, "binning": Binning}


def from_dict(d: dict):
    """A fitted calibrator from its ``to_dict()``."""
    if not isinstance(d, dict) or d.get("kind") not in CALIBRATORS:
        raise ValueError(f"not a calibrator's dict: expected 'kind' in {sorted(CALIBRATORS)}, got {d!r:.80}")
    cls = CALIBRATORS[d["kind"]]
    extra = {"bins": d["bins"]} if d["kind"] == "binning" else {}
    return cls(d["mode"], **extra)._load(d)


def ece(probs, labels=None, *, mode: str = "multiclass", bins: int = 15, ignore_index: int | None = None) -> dict:
    """Expected calibration error over equal-width bins, as fractions.

    ``"top_label"`` (multiclass): the confidence of the predicted class against its accuracy. ``"class_wise"``:
    every class's probability against that class's frequency, averaged over the classes (for multilabel
    outputs the only kind, with ``"top_label"`` absent). Takes tensors or an iterable of ``(probs, labels)``.
    """
    mode = check_mode(mode)
    top = torch.zeros(3, bins, dtype=torch.float64)  # count, confidence sum, hits
    per_class = None
    for p, y in batches(probs, labels):
        check_pair(p, y, mode, ignore_index)
        c = p.shape[1]
        x = p.detach().double().movedim(1, -1).reshape(-1, c).cpu()
        if mode == "multiclass":
            yy = y.reshape(-1).cpu().long()
            keep = torch.ones_like(yy, dtype=torch.bool) if ignore_index is None else yy != ignore_index
            x, yy = x[keep], yy[keep]
            conf, pred = x.max(1)
            _bin_add(top, conf, (pred == yy).double(), bins)
            t = torch.nn.functional.one_hot(yy, c).double()
        else:
            t = y.movedim(1, -1).reshape(-1, c).double().cpu()
        check_classes(None if per_class is None else per_class.shape[0], c)
        if per_class is None:
            per_class = torch.zeros(c, 3, bins, dtype=torch.float64)
        for k in range(c):
            _bin_add(per_class[k], x[:, k], t[:, k], bins)
    if per_class is None:
        raise ValueError("ece needs at least one batch")
    out = {"class_wise": float(torch.stack([_ece_of(h) for h in per_class]).mean())}
    if mode == "multiclass":
        out["top_label"] = float(_ece_of(top))
    return out


def _bin_add(hist: torch.Tensor, conf: torch.Tensor, hit: torch.Tensor, bins: int) -> None:
    index = (conf * bins).long().clamp(0, bins - 1)
    hist[0] += torch.bincount(index, minlength=bins)
    hist[1] += torch.bincount(index, conf, minlength=bins)
    hist[2] += torch.bincount(index, hit, minlength=bins)


def _ece_of(hist: torch.Tensor) -> torch.Tensor:
    count, conf, hits = hist
    total = count.sum().clamp(min=1)
    return ((conf - hits).abs() / total).sum()
