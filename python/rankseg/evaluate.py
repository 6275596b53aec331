"""Argmax against RankSEG (and a RankSEG fitted on a validation folder) on a folder of saved model outputs.

Each image is one file: ``.npz`` holding ``probs`` or ``logits`` ``(C, *spatial)`` and ``label``
``(*spatial)``; ``.pt`` holding a dict with the same keys; or ``.npy`` holding probabilities, with the label
in a labels folder as ``<name>.png`` or ``<name>.npy``. Logits become probabilities by a softmax over C. Every
method labels every image; the scores are counted once per image and class (:mod:`rankseg.metrics`), so
memory holds one image per worker, whatever the size of the dataset.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Union, cast

import numpy as np
import torch

from . import _counting
from ._accumulator import METRICS, Accumulator
from ._rankseg import RankSEG
from ._types import Metric

__all__ = ["evaluate", "find_outputs", "load_output", "format_report", "to_json"]

PathLike = Union[str, os.PathLike]
OUTPUT_SUFFIXES = (".npz", ".pt", ".npy")
LABEL_SUFFIXES = (".png", ".npy")
BASELINE = "argmax"


def find_outputs(source: PathLike) -> list[Path]:
    """The model-output files of a folder (sorted by name), or those a list file names one per line (relative to
    the list file's folder)."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix in OUTPUT_SUFFIXES and p.is_file())
        if not files:
            raise ValueError(f"{source} holds no model outputs ({', '.join(OUTPUT_SUFFIXES)} files)")
        return files
    if source.is_file():
        lines = [line.strip() for line in source.read_text().splitlines()]
        files = [source.parent / line for line in lines if line and not line.startswith("#")]
        if not files:
            raise ValueError(f"the list file {source} names no files")
        for f in files:
            if not f.is_file():
                raise ValueError(f"{f} (named in {source}) is not a file")
            if f.suffix not in OUTPUT_SUFFIXES:
                raise ValueError(f"{f} (named in {source}) is not a model output ({', '.join(OUTPUT_SUFFIXES)})")
        return files
    raise ValueError(f"{source} is neither a folder of model outputs nor a list file")


def _read_label(path: Path) -> np.ndarray:
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            return np.array(image)  # a copy: the image's buffer is read-only
    return np.load(path, allow_pickle=False)


def _fields(path: Path) -> dict[str, Any]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if path.suffix == ".pt":
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError) as e:  # not tensors only (NumPy arrays, other objects)
            raise ValueError(f"cannot be read as a dict of tensors ({e}); save tensors, or use .npz") from None
        if not isinstance(data, dict):
            raise ValueError(f"holds a {type(data).__name__}; expected a dict with 'probs' or 'logits' and 'label'")
        return data
    return {"probs": np.load(path, allow_pickle=False)}


def load_output(path: PathLike, labels: PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's probabilities ``(C, *spatial)`` (floating point, in [0, 1]) and label map ``(*spatial)`` int64,
    or a ``ValueError`` that names the file."""
    path = Path(path)
    try:
        fields = _fields(path)
        if ("probs" in fields) == ("logits" in fields):
            raise ValueError(f"must hold exactly one of 'probs' and 'logits'; it holds {sorted(fields)}")
        key = "probs" if "probs" in fields else "logits"
        scores = torch.as_tensor(np.asarray(fields[key]) if not isinstance(fields[key], torch.Tensor) else fields[key])
        if not scores.is_floating_point() or scores.dim() < 2:
            raise ValueError(f"{key} must be floating point (C, *spatial), got {scores.dtype} {tuple(scores.shape)}")
        if scores.shape[0] < 2:
            raise ValueError(
                f"{key} has {scores.shape[0]} channel; evaluate compares label maps of C >= 2 classes (for a binary "
                "model's sigmoid probability p, save the two channels 1 - p and p)"
            )
        if not bool(torch.isfinite(scores).all()):
            raise ValueError(f"{key} holds NaN or infinity")
        if key == "logits":
            scores = torch.softmax(scores if scores.dtype == torch.float64 else scores.float(), dim=0)
        label = fields.get("label")
        if label is None:
            label = _label_beside(path, labels)
        label = torch.as_tensor(np.asarray(label) if not isinstance(label, torch.Tensor) else label)
        if label.is_floating_point() or label.dtype == torch.bool:
            raise ValueError(f"label must hold integer class labels, got {label.dtype}")
        if tuple(label.shape) != tuple(scores.shape[1:]):
            shapes = f"{key} {tuple(scores.shape)} and label {tuple(label.shape)}"
            raise ValueError(f"{shapes} differ in their spatial shape")
        return scores, label.long()
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _label_beside(path: Path, labels: PathLike | None) -> np.ndarray:
    folder = Path(labels) if labels is not None else path.parent
    for suffix in LABEL_SUFFIXES:
        candidate = folder / f"{path.stem}{suffix}"
        if candidate.is_file() and candidate != path:
            return _read_label(candidate)
    names = " or ".join(f"{path.stem}{s}" for s in LABEL_SUFFIXES)
    raise ValueError(f"has no 'label' and {folder} holds no {names}")


class _Folder:
    """(probs, label) batches of one image each, read from the files every time it is iterated (fitting reads
    twice)."""

    def __init__(self, files: Sequence[Path], labels: PathLike | None) -> None:
        self.files, self.labels = files, labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for f in self.files:
            probs, label = load_output(f, self.labels)
            yield probs.unsqueeze(0), label.unsqueeze(0)


# The methods each worker applies, set once per process (not sent with every file).
_methods: dict[str, Any] = {}


def _start_worker(methods: dict[str, Any], threads: int) -> None:
    global _methods
    _methods = methods
    torch.set_num_threads(threads)


def _count_file(task: tuple[Path, PathLike | None, int | None, str]) -> dict[str, np.ndarray]:
    """Every method's (3, C) counts on one image."""
    path, labels, ignore_index, device = task
    probs, label = load_output(path, labels)
    probs, label = probs.unsqueeze(0).to(device), label.unsqueeze(0).to(device)
    counts = {}
    try:
        for name, method in _methods.items():
            pred = probs.argmax(1) if method is None else method(probs)
            counts[name] = _counting.confusion_counts(pred, label, probs.shape[1], ignore_index)[0].cpu().numpy()
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return counts


def _paired(ours: torch.Tensor, base: torch.Tensor) -> dict[str, float]:
    """Mean paired difference per image ± its standard error, and how many images rose or fell."""
    d = ours - base
    d = d[~d.isnan()]
    n = d.numel()
    se = float(d.std() / math.sqrt(n)) if n > 1 else math.nan
    return {
        "mean": float(d.mean()) if n else math.nan,
        "se": se,
        "better": int((d > 1e-12).sum()),
        "worse": int((d < -1e-12).sum()),
        "images": n,
    }


def evaluate(
    source: PathLike,
    *,
    metric: str = "dice",
    ignore_index: int | None = None,
    labels: PathLike | None = None,
    options: dict[str, Any] | None = None,
    fit_on: PathLike | None = None,
    workers: int = 1,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Scores argmax, RankSEG and, with ``fit_on``, a RankSEG fitted on that validation folder, on every image
    of ``source`` (a folder of model outputs, or a list file; see the module).

    Args:
        metric: what RankSEG optimises and the fitted RankSEG chooses by, ``"dice"`` or ``"iou"``; both are
            reported.
        ignore_index: a truth label to leave out; any other label outside ``[0, C)`` is an error.
        labels: the folder of ``<name>.png`` / ``<name>.npy`` label maps for outputs without a ``label``.
        options: further :class:`rankseg.RankSEG` arguments, e.g. ``{"merge": "gain"}``.
        workers: processes reading and solving files in parallel (1: this process).
        device: ``"cpu"`` or ``"cuda"``, where the methods run.
        progress: a progress bar on stderr.

    Returns:
        For each method (``"argmax"``, ``"rankseg"``, ``"fitted"``): ``{"images", "per_image": {"dice", "iou"},
        "dataset": {"dice", "iou"}, "per_class": {...}}`` as :meth:`rankseg.metrics.Accumulator.compute`
        gives, and for the others ``"vs_argmax"``: per metric, the paired per-image difference ``mean`` ± ``se``
        and the images ``better`` and ``worse``.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be 'dice' or 'iou', got {metric!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda': torch sees no CUDA device here; use device='cpu'")
    files = find_outputs(source)
    segmenter = RankSEG(metric=cast(Metric, metric), **(options or {}))
    methods: dict[str, Any] = {BASELINE: None, "rankseg": segmenter}
    if fit_on is not None:
        methods["fitted"] = segmenter.fit(_Folder(find_outputs(fit_on), labels), ignore_index=ignore_index)
    accumulators = {name: Accumulator(ignore_index=ignore_index) for name in methods}
    tasks = [(f, labels, ignore_index, device) for f in files]
    for path, counts in zip(files, _progress(_run(tasks, methods, workers), len(files), progress)):
        try:
            for name, c in counts.items():
                accumulators[name].update_counts(c)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    report = {name: acc.compute() for name, acc in accumulators.items()}
    base = accumulators[BASELINE]
    for name, acc in accumulators.items():
        if name != BASELINE:
            report[name]["vs_argmax"] = {m: _paired(acc.image_scores(m), base.image_scores(m)) for m in METRICS}
    return report


def _run(tasks, methods, workers: int) -> Iterator[dict[str, np.ndarray]]:
    if workers == 1:
        _start_worker(methods, torch.get_num_threads())
        yield from map(_count_file, tasks)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: a forked child of a process that has run OpenMP or CUDA can hang.
    with ProcessPoolExecutor(workers, get_context("spawn"), _start_worker, (methods, threads)) as pool:
        yield from pool.map(_count_file, tasks)


def _progress(results: Iterator, total: int, show: bool) -> Iterator:
    if not show:
        return results
    try:
        from tqdm import tqdm
    except ImportError:
        return results
    return tqdm(results, total=total, unit="image", file=sys.stderr, desc="rankseg evaluate")


def to_json(report: dict) -> str:
    """The report as JSON, NaN (nothing scored) written as null."""

    def clean(x):
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(report), indent=2)


def _signed(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:+.4f}"


def format_report(report: dict, metric: str = "dice") -> str:
    """The report as a text table: both averages of both scores per method, the paired gains over argmax, and
    the per-class dataset-level scores of ``metric``."""
    name = {"dice": "Dice", "iou": "IoU"}
    base = report[BASELINE]
    lines = [
        f"{base['images']} images. Per image: each image's mean over the classes in its truth, averaged. "
        "Dataset: each class's score from counts summed over the images, averaged over classes.",
        "",
        f"{'method':<10} {'image Dice':>10} {'image IoU':>10} {'data Dice':>10} {'data IoU':>10}   "
        f"{'Δ image ' + name[metric] + ' vs argmax':<26} better/worse",
    ]
    for method, r in report.items():
        row = f"{method:<10} " + " ".join(f"{r[a][m]:>10.4f}" for a in ("per_image", "dataset") for m in METRICS)
        if "vs_argmax" in r:
            d = r["vs_argmax"][metric]
            row += f"   {d['mean']:+.4f} ± {d['se']:.4f}{'':<10} {d['better']}/{d['worse']}"
        lines.append(row)
    gains = class_gains(report, metric)
    lines += ["", f"per class, dataset {name[metric]}:", f"{'class':>5} " + " ".join(f"{m:>10}" for m in report)]
    lines[-1] += "".join(f" {'Δ ' + m:>12}" for m in gains)
    per_class = {m: r["per_class"]["dataset"][metric] for m, r in report.items()}
    for c in range(len(per_class[BASELINE])):
        row = f"{c:>5} " + " ".join(f"{per_class[m][c]:>10.4f}" for m in report)
        row += "".join(f" {_signed(g[c]):>12}" for g in gains.values())
        lines.append(row)
    return "\n".join(lines)


def class_gains(report: dict, metric: str) -> dict[str, list[float]]:
    """Per method other than argmax, the per-class differences of the dataset-level score (NaN: unscored)."""
    base = report[BASELINE]["per_class"]["dataset"][metric]
    return {
        name: [ours - theirs for ours, theirs in zip(r["per_class"]["dataset"][metric], base)]
        for name, r in report.items()
        if name != BASELINE
    }
