"""What the integrations share: reading output objects, checking sizes, resizing in batched groups."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# Transformers model types of the SAM family, and the adapter in rankseg.integration.sam for each.
SAM_ADAPTERS = {"sam": "Sam1", "sam_hq": "Sam1", "sam2": "Sam2", "sam3": "Sam3"}


def sam_adapter_for(outputs) -> str | None:
    """The SAM adapter that handles this output object, or None if it is not a SAM-family output."""
    cls = type(outputs)
    for model_type in sorted(SAM_ADAPTERS, key=len, reverse=True):  # sam_hq before sam
        if f".models.{model_type}." in cls.__module__ or f".models.{model_type}_" in cls.__module__:
            return SAM_ADAPTERS[model_type]
    return None


def tensor_field(outputs, name: str, ndim: int, layout: str) -> torch.Tensor:
    """outputs.<name> as a finite float32 tensor of `ndim` dims, or a clear error."""
    t = getattr(outputs, name, None)
    if t is None:
        raise ValueError(f"outputs.{name} is missing; expected a tensor of shape {layout}")
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"outputs.{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim or 0 in t.shape[1:]:
        raise ValueError(f"outputs.{name} must have shape {layout} with non-empty dims, got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"outputs.{name} must be floating point, got {t.dtype}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"outputs.{name} contains NaN or infinity; check the model's inputs and precision")
    return t.detach().float()


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def image_sizes(value, name: str, batch: int, *, allow_single: bool) -> list[tuple[int, int]]:
    """One positive (height, width) per image, from a list/tuple of pairs or an int tensor (B, 2); with
    `allow_single`, one pair (or a tensor of shape (2,)) also stands for every image."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} tensor must hold integers, got {value.dtype}")
        if not (value.dim() == 2 and value.shape[1] == 2) and not (allow_single and value.shape == (2,)):
            expected = "(batch, 2) or (2,)" if allow_single else "(batch, 2)"
            raise ValueError(f"{name} tensor must have shape {expected}, got {tuple(value.shape)}")
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list of (height, width) pairs or an int tensor, got {type(value).__name__}")
    if len(value) == 2 and all(_is_int(s) for s in value):
        if not allow_single:
            raise TypeError(
                f"{name} must hold one (height, width) per image, e.g. [{tuple(value)}], got a flat "
                f"{type(value).__name__} {tuple(value)}"
            )
        value = [value] * batch
    if len(value) != batch:
        raise ValueError(f"{name} has {len(value)} entries for a batch of {batch} images")
    sizes = []
    for i, size in enumerate(value):
        if not isinstance(size, Sequence) or len(size) != 2 or not all(_is_int(s) for s in size):
            raise TypeError(f"{name}[{i}] must be a (height, width) pair of ints, got {size!r}")
        if min(size) < 1:
            raise ValueError(f"{name}[{i}] must be positive, got {tuple(size)}")
        sizes.append((int(size[0]), int(size[1])))
    return sizes


def per_group(keys, solve) -> list:
    """Results in image order from one batched call per group of images with equal keys (sizes, shapes):
    solve(key, index) gets the group's key and image positions and returns one result per image, in order."""
    out: list = [None] * len(keys)
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(tuple(key), []).append(i)
    for key, index in groups.items():
        for i, result in zip(index, solve(key, index)):
            out[i] = result
    return out


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear, align_corners=False, over the last two dims of a 4-D tensor."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
