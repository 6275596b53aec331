"""RankSEG as a MONAI post-transform, in place of ``AsDiscrete(argmax=True)`` or ``AsDiscrete(threshold=0.5)``.

``RankSEG`` (array) and ``RankSEGd`` (dictionary) take one image's channel-first probabilities
``(C, *spatial)``, as MONAI post-transforms see them after ``decollate_batch`` and ``Activations``, and return
what ``AsDiscrete`` returns, with the decision made by RankSEG. This module imports MONAI; ``import rankseg``
does not.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Union, cast

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor, get_track_meta
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from .._rankseg import RankSEG as _RankSEG
from ..fitting import FittedRankSEG

__all__ = ["RankSEG", "RankSEGd"]

Segmenter = Union[_RankSEG, FittedRankSEG]


class RankSEG(Transform):
    """Masks that maximise the expected Dice or IoU of one image, as a MONAI array transform.

    A drop-in for ``AsDiscrete(argmax=True)`` (``output_mode="multiclass"``) or ``AsDiscrete(threshold=0.5)``
    (``output_mode="multilabel"``) after ``Activations(softmax=True)`` or ``Activations(sigmoid=True)``.
    The output is what ``AsDiscrete`` returns: float32 by default, so that ``DiceMetric``, ``SaveImage`` and the
    other MONAI transforms take it unchanged; a ``MetaTensor`` carrying the input's metadata (meta dict,
    affine, applied operations), or a plain tensor when MONAI's ``track_meta`` is off; on the input's device.

    Args:
        segmenter: A ready :class:`rankseg.RankSEG`, or a :class:`rankseg.fitting.FittedRankSEG` (from
            ``RankSEG.fit`` or :func:`rankseg.fitting.load`). Leave it out to build one from ``options``.
        to_onehot: ``None`` (labels ``(1, *spatial)``) or a number of channels ``N >= C``: one-hot labels
            ``(N, *spatial)``, as ``AsDiscrete(argmax=True, to_onehot=N)``. A pixel RankSEG labels void
            (``unassigned_policy="void"``) is in no channel. Multiclass only.
        dtype: The output dtype, float32 as ``AsDiscrete``; any torch dtype that holds the labels (bool only for
            masks: multilabel or one-hot).
        spatial_dims: If given, the number of spatial dims every input must have; a batch ``(B, C, *spatial)``
            passed by mistake is then refused instead of being read as one image.
        **options: Arguments of :class:`rankseg.RankSEG` (``metric``, ``smooth``, ``output_mode``, ``solver``,
            ``pruning_prob`` and solver parameters), when ``segmenter`` is not given.

    Example:
        >>> post_pred = Compose([Activations(softmax=True), RankSEG(metric="dice", to_onehot=3)])
    """

    backend = [TransformBackends.TORCH]  # noqa: RUF012 (MONAI's Transform declares it so)

    def __init__(
        self,
        segmenter: Segmenter | None = None,
        *,
        to_onehot: int | None = None,
        dtype: torch.dtype = torch.float32,
        spatial_dims: int | None = None,
        **options: Any,
    ) -> None:
        self.segmenter = _segmenter(segmenter, options)
        self.output_mode: str = (
            self.segmenter.output_mode if isinstance(self.segmenter, _RankSEG) else self.segmenter.mode
        )
        self.to_onehot = _check_onehot(to_onehot, self.output_mode)
        self.dtype = _check_dtype(dtype, labels=self.output_mode == "multiclass" and to_onehot is None)
        if spatial_dims is not None and (not _is_int(spatial_dims) or spatial_dims < 1):
            raise ValueError(f"spatial_dims must be None or a positive int, got {spatial_dims!r}")
        self.spatial_dims = spatial_dims

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        """Labels ``(1, *spatial)``, one-hot labels ``(to_onehot, *spatial)`` or masks ``(C, *spatial)`` for
        the probabilities ``img`` ``(C, *spatial)`` of one image (a tensor or NumPy array)."""
        return self._decide(img, "img")

    def _decide(self, img: NdarrayOrTensor, name: str) -> torch.Tensor:
        """As calling the transform; errors name the input ``name`` (``"img"``, ``"data['pred']"``)."""
        if not isinstance(img, (torch.Tensor, np.ndarray)):
            raise TypeError(f"{name} must be a torch.Tensor or NumPy array (C, *spatial), got {type(img).__name__}")
        # As AsDiscrete: a MetaTensor out (metadata copied from the input) unless track_meta is off.
        tensor = cast(torch.Tensor, convert_to_tensor(img, track_meta=get_track_meta()))
        probs = self._checked(tensor, name)
        try:
            decided = self.segmenter(probs.unsqueeze(0))[0]  # the core solves batches (B, C, *spatial)
        except ValueError as error:  # rankseg's value and class-count errors, said of this input
            raise ValueError(f"{name}: {error}") from error
        if self.output_mode == "multiclass":
            decided = decided.unsqueeze(0)  # (1, *spatial), as AsDiscrete(argmax=True) keeps the channel dim
        if self.to_onehot is not None:
            classes = torch.arange(self.to_onehot, device=decided.device).view(-1, *[1] * (decided.dim() - 1))
            decided = decided == classes  # void labels (outside [0, N)) match no channel
        out, *_ = convert_to_dst_type(decided, tensor, dtype=self.dtype)
        return out

    def _checked(self, img: torch.Tensor, name: str) -> torch.Tensor:
        """The probabilities as a plain tensor (the core needs no metadata), after the checks that name `name`."""
        shape = tuple(img.shape)
        if not img.is_floating_point():
            raise TypeError(
                f"{name} must hold floating-point probabilities, got {img.dtype}; apply Activations(softmax=True) "
                "(multiclass) or Activations(sigmoid=True) (multilabel) to the network's output first"
            )
        if img.dim() < 2 or 0 in shape:
            raise ValueError(
                f"{name} must be one image's probabilities (C, *spatial) with at least one spatial dim and no "
                f"empty dim, got shape {shape}"
            )
        if self.spatial_dims is not None and img.dim() != self.spatial_dims + 1:
            hint = "; is it a batch? split it with monai.data.decollate_batch first"
            raise ValueError(
                f"{name} must have shape (C, *spatial) with spatial_dims={self.spatial_dims} spatial dims, got shape "
                f"{shape}{hint if img.dim() == self.spatial_dims + 2 else ''}"
            )
        if self.to_onehot is not None and self.to_onehot < shape[0]:
            raise ValueError(
                f"to_onehot={self.to_onehot} has fewer channels than the {shape[0]} classes of {name}; labels "
                f"from {self.to_onehot} on would be lost: use to_onehot={shape[0]}"
            )
        return img.as_tensor() if isinstance(img, MetaTensor) else img


class RankSEGd(MapTransform):
    """Dictionary-based :class:`RankSEG`: replaces each of ``keys`` with its RankSEG masks, as ``AsDiscreted``
    does with its own.

    Args:
        keys: The keys of the probabilities ``(C, *spatial)`` to decide (e.g. ``"pred"``); see
            ``monai.transforms.MapTransform``.
        segmenter: As :class:`RankSEG`, and so are ``to_onehot``, ``dtype``, ``spatial_dims`` and the RankSEG
            options; the same for every key.
        allow_missing_keys: Skip keys absent from the data instead of raising ``KeyError``.

    Example:
        >>> post = Compose([Activationsd(keys="pred", softmax=True), RankSEGd(keys="pred", to_onehot=3)])
    """

    backend = RankSEG.backend

    def __init__(
        self,
        keys: KeysCollection,
        segmenter: Segmenter | None = None,
        *,
        to_onehot: int | None = None,
        dtype: torch.dtype = torch.float32,
        spatial_dims: int | None = None,
        allow_missing_keys: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = RankSEG(segmenter, to_onehot=to_onehot, dtype=dtype, spatial_dims=spatial_dims, **options)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform._decide(d[key], f"data[{key!r}]")
        return d


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _segmenter(segmenter: object, options: dict[str, Any]) -> Segmenter:
    if segmenter is None:
        return _RankSEG(**options)
    if options:
        raise TypeError(
            f"give either segmenter or RankSEG options, not both: got segmenter and {', '.join(sorted(options))}; "
            "set the options on the segmenter instead"
        )
    if not isinstance(segmenter, (_RankSEG, FittedRankSEG)):
        raise TypeError(
            "segmenter must be a rankseg.RankSEG or a rankseg.fitting.FittedRankSEG, got "
            f"{type(segmenter).__name__} {segmenter!r}; pass RankSEG options by name, e.g. metric='dice'"
        )
    return segmenter


def _check_onehot(to_onehot: object, output_mode: str) -> int | None:
    if to_onehot is None:
        return None
    if not isinstance(to_onehot, int) or isinstance(to_onehot, bool):
        raise TypeError(f"to_onehot must be None or a number of classes (int), got {to_onehot!r}")
    if output_mode != "multiclass":
        raise ValueError(
            f"to_onehot applies to output_mode='multiclass' only, got to_onehot={to_onehot} with "
            f"output_mode={output_mode!r}, whose masks (C, *spatial) already have one channel per class"
        )
    if to_onehot < 1:
        raise ValueError(f"to_onehot must be at least 1, got {to_onehot}")
    return to_onehot


def _check_dtype(dtype: object, *, labels: bool) -> torch.dtype:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, e.g. torch.float32, got {type(dtype).__name__} {dtype!r}")
    if labels and dtype == torch.bool:
        raise ValueError(
            "dtype=torch.bool cannot hold multiclass labels (1, *spatial); use an integer or float dtype, or "
            "to_onehot=C for one bool mask per class"
        )
    return dtype
