"""The RankSEG predictor: turns segmentation probabilities into masks that maximise expected Dice or IoU."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, overload

import torch

from . import _arrays, _solvers
from ._module import RankSEGModule
from ._options import Options, parse_options
from ._probs import check_probs, shape_check
from ._types import Metric, OutputMode, Solver, SupportsDLPack

if TYPE_CHECKING:
    import numpy as np

    from .fitting import FittedRankSEG


class RankSEG:
    """Masks that maximise the expected Dice or IoU under the given probabilities (RankSEG).

    Args:
        metric: ``"dice"``, ``"iou"`` or ``"acc"`` (also ``"accuracy"``); case-insensitive.
        smooth: Smoothing constant ``s >= 0`` of the Dice/IoU being optimised.
        output_mode: ``"multiclass"`` returns one label per pixel, int64 ``(B, *spatial)``;
            ``"multilabel"`` returns one mask per class, bool ``(B, C, *spatial)``.
        solver: ``"RMA"`` (Dice and IoU: fast, exact for its objective, the default); ``"exact"`` (Dice: the
            true expected Dice under independent labels, by quadrature in O(N log N + N M) per class, M a few
            hundred); ``"BA"``, ``"TRNA"``, ``"BA+TRNA"`` (Dice, multilabel: RankDice's normal
            approximations); ``"argmax"`` or ``"TR"`` (accuracy; TR thresholds at 0.5). The sorting solvers
            (exact, BA, TRNA) run on the CPU; CUDA tensors are computed through the host.
        pruning_prob: A class whose largest probability in an image is ``<= pruning_prob`` gets an empty
            mask in that image (Dice/IoU).
        num_threads: The most CPU threads a call uses, an int >= 1; None (the default) takes
            ``torch.get_num_threads()`` at each call. Inputs too small to gain from threads are solved on the
            calling thread. Results do not depend on it.
        **solver_params: For RMA and exact with ``output_mode="multiclass"``: ``unassigned_policy``
            (``"max_score"``, the default, gives a pixel no class selected to the best active class;
            ``"void"`` labels it ``void_index``, default 255, which must lie outside ``[0, C)``), and
            ``pruning``: ``"max_prob"`` (the default: the ``pruning_prob`` test) or ``"argmax"``, which keeps
            exactly the classes that win the argmax over classes at some pixel of the image (``pruning_prob``
            is then unused). ``"argmax"`` never drops a class argmax would predict, so weak but real classes
            are not emptied; see docs/quality.md for when it helps (much, with many weak classes). ``merge``:
            ``"gain"`` (the default: a pixel several classes select, or none, goes to the largest incremental
            score) or ``"prob"`` (to the most probable class among those selecting it, and an unselected pixel
            to its argmax class; computed from the per-class masks on the input's device). For BA,
            TRNA and BA+TRNA: ``eps`` in (0, 1), default 1e-4, the tail mass their approximations leave out.

    Ties: within one class the smallest optimal volume wins, and a cut never splits equal probabilities;
    a pixel claimed by several classes goes to the largest incremental score, the lowest class index on ties.

    Example:
        >>> probs = torch.softmax(torch.randn(2, 5, 64, 64), dim=1)
        >>> RankSEG(metric="dice")(probs).shape
        torch.Size([2, 64, 64])
    """

    def __init__(
        self,
        metric: Metric = "dice",
        smooth: float = 0.0,
        output_mode: OutputMode = "multiclass",
        solver: Solver = "RMA",
        pruning_prob: float = 0.5,
        *,
        num_threads: int | None = None,
        **solver_params: Any,
    ) -> None:
        self.options: Options = parse_options(
            metric, smooth, output_mode, solver, pruning_prob, solver_params, num_threads
        )
        self._solver_params = {name: getattr(self.options, name) for name in solver_params}
        self._route = _solvers.route(self.options)
        if self.options.solver == "argmax" and self.options.output_mode == "multilabel":
            warnings.warn(
                "solver='argmax' with output_mode='multilabel' returns one-hot masks of the argmax labels",
                UserWarning,
                stacklevel=2,
            )

    # The settings, normalised, read-only.
    @property
    def metric(self) -> Metric:
        """``"dice"``, ``"iou"`` or ``"acc"``."""
        return self.options.metric  # type: ignore[return-value]

    @property
    def smooth(self) -> float:
        return self.options.smooth

    @property
    def output_mode(self) -> OutputMode:
        return self.options.output_mode  # type: ignore[return-value]

    @property
    def solver(self) -> Solver:
        return self.options.solver  # type: ignore[return-value]

    @property
    def pruning_prob(self) -> float:
        return self.options.pruning_prob

    @property
    def num_threads(self) -> int | None:
        return self.options.num_threads

    @property
    def solver_params(self) -> dict:
        """The solver parameters given, normalised (a copy)."""
        return dict(self._solver_params)

    @overload
    def predict(self, probs: torch.Tensor, *, check_values: bool = True) -> torch.Tensor: ...
    @overload
    def predict(self, probs: np.ndarray, *, check_values: bool = True) -> np.ndarray: ...
    @overload
    def predict(self, probs: SupportsDLPack, *, check_values: bool = True) -> Any: ...

    def predict(self, probs: Any, *, check_values: bool = True) -> Any:
        """Predicts masks from probabilities ``probs`` of shape ``(B, C, *spatial)``.

        ``probs`` may be float16, bfloat16, float32 or float64, on CPU or CUDA, and non-contiguous; its
        values must be finite and in ``[0, 1]``. It is never modified and no gradient is recorded. CUDA
        tensors are solved on their GPU, on the current stream, when rankseg was built with CUDA kernels.

        ``probs`` may also be a NumPy array (float16, float32 or float64), which gives NumPy masks, or an
        array with ``__dlpack__`` (CuPy, JAX, ...), which gives masks of its kind through its ``from_dlpack``
        (a ``torch.Tensor`` when it has none). Both are viewed without a copy where torch can view their
        layout (NumPy arrays with negative strides or non-native byte order are copied).

        Args:
            probs: Probabilities ``(B, C, *spatial)``.
            check_values: Raise ``ValueError`` for NaN, infinities or values outside ``[0, 1]``. The CPU
                kernels always check (it costs nothing there). On CUDA the check reads one flag back from the
                GPU, which waits for the kernels (one synchronisation per call) and is not allowed while
                capturing a CUDA graph: pass ``False`` there. Unchecked, a class holding such values gets an
                empty mask. The ``"argmax"`` and ``"TR"`` solvers skip their check when ``False``.

        Returns:
            int64 ``(B, *spatial)`` labels for ``"multiclass"``, bool ``(B, C, *spatial)`` for
            ``"multilabel"``, on the device of ``probs``, of the kind of ``probs``.
        """
        tensor, restore = _arrays.as_tensor(probs)
        masks = self._predict(tensor, check_values)
        return masks if restore is None else restore(masks)

    __call__ = predict

    def _predict(self, probs: torch.Tensor, check_values: bool) -> torch.Tensor:
        if not isinstance(check_values, bool):
            raise TypeError(f"check_values must be a bool, got {type(check_values).__name__} {check_values!r}")
        shape_check(check_probs, probs)
        # Nothing records a gradient: the compiled core is outside autograd, and the tensor code reads a detached
        # input.
        if probs.requires_grad:
            probs = probs.detach()
        return self._route.solve(self.options, probs, check_values)

    def fit(
        self,
        probs,
        labels=None,
        *,
        ignore_index: int | None = None,
        calibrations: tuple[str, ...] = ("none", "temperature", "vector", "binning"),
        aggregation: str = "per_image",
    ) -> FittedRankSEG:
        """Fits this RankSEG on a labelled validation split, so that it does not lose to argmax where the
        network's probabilities mislead it; returns a :class:`rankseg.fitting.FittedRankSEG` (call it to predict).

        For each calibration in ``calibrations`` and each multiclass rule (this one, merge ``"gain"`` or
        ``"prob"``, pruning ``"max_prob"`` or ``"argmax"``), the split is solved once; then, per class, RankSEG
        decides only where it raised the per-image mean Dice (IoU) over the classes present by more than one
        standard error of the paired gain; the other classes keep argmax's label (multilabel: the 0.5
        threshold). The best candidate wins if it beats the baseline by more than a standard error; otherwise
        the fitted predictor is the baseline. ``report()`` gives the gains per class.

        Args:
            probs: validation probabilities ``(B, C, *spatial)`` (softmax or sigmoid outputs), or a list or
                DataLoader of ``(probs, labels)`` batches (read twice, never held whole).
            labels: label maps ``(B, *spatial)`` for multiclass, bool masks ``(B, C, *spatial)`` for multilabel.
            ignore_index: a label of pixels to leave out (label maps only).
            calibrations: the calibrations to try, of ``"none"``, ``"temperature"``, ``"vector"``, ``"binning"``
                (see :mod:`rankseg.calibration`).
            aggregation: the score maximised: ``"per_image"`` (the mean over images of each image's mean over
                the classes present) or ``"dataset"`` (the mean over classes of each class's score from counts
                summed over the split, as benchmark mIoU is computed).
        """
        from .fitting import fit

        return fit(
            self, probs, labels, ignore_index=ignore_index, calibrations=tuple(calibrations), aggregation=aggregation
        )

    def as_module(self, *, check_values: bool = True) -> RankSEGModule:
        """This RankSEG as a ``torch.nn.Module`` for ``torch.jit.script`` and ``torch.jit.save``.

        ``torch.jit.trace`` and ``torch.export`` record calls of this object and of :func:`rankseg.rankseg`
        as they are; TorchScript cannot compile them (they take keyword arguments), so script this module
        instead. Its ``forward(probs)`` equals ``predict(probs, check_values=check_values)``.
        """
        if not isinstance(check_values, bool):
            raise TypeError(f"check_values must be a bool, got {type(check_values).__name__} {check_values!r}")
        return RankSEGModule(self.options, check_values)

    def __repr__(self) -> str:
        o = self.options
        extra = ""
        for name in self._route.params:
            value = getattr(o, name)
            if name == "safe_screening" or value == _QUIET.get(name):
                continue
            if name == "void_index" and o.unassigned_policy != "void":
                continue
            extra += f", {name}={value!r}"
        if o.num_threads is not None:
            extra += f", num_threads={o.num_threads}"
        return (
            f"RankSEG(metric={o.metric!r}, smooth={o.smooth}, output_mode={o.output_mode!r}, "
            f"solver={o.solver!r}, pruning_prob={o.pruning_prob}{extra})"
        )


# Solver parameters __repr__ leaves out at these values.
_QUIET = {"pruning": "max_prob", "merge": "gain"}
