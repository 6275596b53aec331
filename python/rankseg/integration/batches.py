"""RankSEG on batches of NumPy arrays, for the engines that run a dataset over many processes or machines: Ray
Data's ``Dataset.map_batches`` and Hugging Face ``datasets``' ``Dataset.map(batched=True)``.

A batch is a dict of columns. The probabilities (or logits) column holds ``(B, C, *spatial)`` arrays, or a list
of ``(C, *spatial)`` arrays of different sizes; a ``label`` column, when present, holds label maps
``(B, *spatial)``. :class:`BatchSegmenter` returns the predictions and, with labels, the per-image counts that
:class:`rankseg.metrics.Accumulator` merges, so scoring a dataset never gathers its masks in one place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import _ops
from .._arrays import view_numpy
from .._counting import confusion_counts
from .._rankseg import RankSEG

__all__ = ["BatchSegmenter"]


def _tensor(array, name: str) -> torch.Tensor:
    a = np.asarray(array)
    if a.dtype == object:
        raise TypeError(f"column {name!r} holds arrays of different shapes; pass them one image per row")
    return view_numpy(np, a)  # Ray hands read-only batches: viewed, not copied


def _rows(column, name: str) -> list[torch.Tensor] | torch.Tensor:
    """One tensor for a stacked (B, ...) array; a list of tensors for rows of different shapes."""
    if isinstance(column, np.ndarray) and column.dtype != object:
        return _tensor(column, name)
    rows = [_tensor(row, name) for row in column]
    shapes = {tuple(r.shape) for r in rows}
    return torch.stack(rows) if len(shapes) == 1 else rows


class BatchSegmenter:
    """A callable that labels a batch with RankSEG (and argmax beside it, to compare), for ``map_batches``.

    Args:
        segmenter: a :class:`rankseg.RankSEG` or a fitted one (``RankSEG.fit``); by default
            ``RankSEG(**options)``.
        probs_key, logits_key: the input column, probabilities or logits (a softmax over C is applied).
        label_key: the column of label maps; when present, counts are returned.
        output_key: the column of predictions, int64 ``(B, *spatial)`` (a list of arrays for rows of
            different shapes).
        ignore_index: a truth label to leave out of the counts.
        baseline: also count argmax's predictions (column ``"argmax_counts"``).
        keep_inputs: pass the probability column through (by default it is dropped, being the largest).
        device: where RankSEG runs, e.g. ``"cuda"`` in an actor given ``num_gpus=1``.

    Returns per batch: the other input columns, ``output_key``, and with labels ``"rankseg_counts"`` (and
    ``"argmax_counts"``), int64 ``(B, 3, C)``: true positives, predicted and truth pixels per image and class.
    """

    def __init__(
        self,
        segmenter: Any = None,
        *,
        probs_key: str = "probs",
        logits_key: str = "logits",
        label_key: str = "label",
        output_key: str = "pred",
        ignore_index: int | None = None,
        baseline: bool = True,
        keep_inputs: bool = False,
        device: str = "cpu",
        **options: Any,
    ) -> None:
        if segmenter is not None and options:
            raise TypeError(f"give either a segmenter or RankSEG options, not both (got {sorted(options)})")
        self.segmenter = segmenter if segmenter is not None else RankSEG(**options)
        self.probs_key, self.logits_key, self.label_key, self.output_key = probs_key, logits_key, label_key, output_key
        self.ignore_index, self.baseline, self.keep_inputs = ignore_index, baseline, keep_inputs
        self.device = torch.device(device)

    @staticmethod
    def _in_forked_worker() -> None:
        """datasets' num_proc (and multiprocessing's default on Linux) forks workers from a process whose OpenMP
        threads do not survive the fork: OpenMP work there would wait forever, so torch runs on one thread in a
        forked worker, as in torch's DataLoader workers (RankSEG does so by itself). Spawned workers, Ray's
        among them, keep their threads."""
        if _ops._forked and torch.get_num_threads() > 1:
            torch.set_num_threads(1)

    def _input(self, batch) -> tuple[str, list[torch.Tensor] | torch.Tensor]:
        keys = [k for k in (self.probs_key, self.logits_key) if k in batch]
        if len(keys) != 1:
            raise ValueError(
                f"the batch must hold exactly one of the columns {self.probs_key!r} and {self.logits_key!r}; "
                f"it holds {sorted(batch)}"
            )
        return keys[0], _rows(batch[keys[0]], keys[0])

    def _probs(self, key: str, scores: torch.Tensor, batched: bool) -> torch.Tensor:
        if not scores.is_floating_point():
            raise TypeError(f"column {key!r} must be floating point, got {scores.dtype}")
        scores = scores.to(self.device)
        if not batched:
            scores = scores.unsqueeze(0)
        if key == self.logits_key:
            scores = torch.softmax(scores if scores.dtype == torch.float64 else scores.float(), dim=1)
        return scores

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        self._in_forked_worker()
        key, scores = self._input(batch)
        labels = _rows(batch[self.label_key], self.label_key) if self.label_key in batch else None
        stacked = isinstance(scores, torch.Tensor)
        items = [scores] if stacked else scores
        preds: list[torch.Tensor] = []
        counts: dict[str, list[torch.Tensor]] = {"rankseg": [], "argmax": []}
        for i, item in enumerate(items):
            probs = self._probs(key, item, stacked)
            pred = self.segmenter(probs)
            preds.append(pred.cpu())
            if labels is None:
                continue
            truth = labels[i].unsqueeze(0) if not stacked else labels
            if not isinstance(truth, torch.Tensor):
                raise ValueError(f"column {self.label_key!r} holds rows of different shapes, unlike {key!r}")
            truth = truth.to(self.device)
            classes = probs.shape[1]
            counts["rankseg"].append(confusion_counts(pred, truth, classes, self.ignore_index).cpu())
            if self.baseline:
                counts["argmax"].append(confusion_counts(probs.argmax(1), truth, classes, self.ignore_index).cpu())
        out = {k: v for k, v in batch.items() if k != key or self.keep_inputs}
        out[self.output_key] = preds[0].numpy() if stacked else [p[0].numpy() for p in preds]
        for name, chunks in counts.items():
            if chunks:
                out[f"{name}_counts"] = torch.cat(chunks).numpy()
        return out
