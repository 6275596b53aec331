"""What the integrations share: reading output objects, checking sizes, resizing in batched groups."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._ops import through_dispatcher

# Transformers model types of the SAM family, and the adapter in rankseg.integration.sam for each.
SAM_ADAPTERS = {"sam": "Sam1", "sam_hq": "Sam1", "sam2": "Sam2", "sam3": "Sam3"}


def _is_model_output_base(cls: type) -> bool:
    return cls.__name__ == "ModelOutput" and cls.__module__.startswith("transformers.")


def _classes(outputs) -> tuple[type, ...]:
    """The output's class and its bases, in method resolution order. A plain dict has none worth reading, and
    torch.compile(fullgraph=True) cannot read dict's (torch 2.13: it neither iterates over dict.__mro__ nor
    reads dict.__name__), so it gets none."""
    return () if type(outputs) is dict else type(outputs).__mro__


def output_name(outputs) -> str:
    """The output's class name, as messages give it: its Transformers class's (see transformers_class)."""
    if type(outputs) is dict:  # see _classes
        return "dict"
    known = transformers_class(outputs)
    return (known or type(outputs)).__name__


def transformers_class(outputs) -> type | None:
    """The output's class if Transformers defines it as a model output, else the nearest base class that does
    (outputs of a subclass, e.g. a wrapped model's, are read as that base), else None. The generic base
    ModelOutput does not count: its other subclasses are custom outputs."""
    for cls in _classes(outputs):
        if _is_model_output_base(cls):
            return None
        if cls.__module__.startswith("transformers."):
            return cls
    return None


def is_mapping(outputs) -> bool:
    """Plain dict-like outputs (exported or served models return such), not ModelOutput objects."""
    model_output = any(_is_model_output_base(cls) for cls in _classes(outputs))
    return isinstance(outputs, Mapping) and not model_output


def sam_adapter_for(outputs) -> str | None:
    """The SAM adapter that handles this output object, or None if it is not a SAM-family output."""
    cls = transformers_class(outputs)
    if cls is None:
        return None
    for model_type in sorted(SAM_ADAPTERS, key=len, reverse=True):  # sam_hq before sam
        if f".models.{model_type}." in cls.__module__ or f".models.{model_type}_" in cls.__module__:
            return SAM_ADAPTERS[model_type]
    return None


def model_type(model) -> str | None:
    """The model type of a model (its config's), a config object, or a config dict {"model_type": ...}."""
    if isinstance(model, Mapping):
        return model.get("model_type")
    config = getattr(model, "config", model)
    return getattr(config, "model_type", None)


def field(outputs, name: str):
    """outputs.<name>, or outputs[name] for a mapping; None when absent. NumPy arrays become tensors."""
    value = outputs.get(name) if isinstance(outputs, Mapping) else getattr(outputs, name, None)
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


def tensor_field(outputs, name: str, ndims, layout: str) -> torch.Tensor:
    """outputs.<name> as a floating-point tensor with one of `ndims` dims (an int or a tuple), or a clear
    error; finite, where its values can be read (see check_finite). float64 stays float64 (decisions on
    near-ties depend on it), 16-bit floats compute in float32; autograd history is kept, so restored
    probabilities carry gradients when grad mode is on."""
    t = field(outputs, name)
    ndims = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if t is None:
        raise ValueError(f"outputs.{name} is missing; expected a tensor of shape {layout}")
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"outputs.{name} must be a torch.Tensor or NumPy array, got {type(t).__name__}")
    if t.dim() not in ndims or 0 in t.shape[1:]:
        raise ValueError(f"outputs.{name} must have shape {layout} with non-empty dims, got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"outputs.{name} must be floating point, got {t.dtype}")
    check_finite(t, name)
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def check_finite(t: torch.Tensor, name: str) -> None:
    """A ValueError naming the field for NaN or infinity, in eager calls on real tensors (where RankSEG.predict
    reads values too). Skipped under torch.compile, export and torch.jit.trace, where reading a value breaks the
    graph (or freezes the example's answer), and for fake and meta tensors, which have none. Masks lose nothing:
    fields reach the solver through softmax or sigmoid, which turn NaN (and softmax +inf) into NaN, and the
    solver's own invalid-value report rejects NaN probabilities in compiled code too. What no solver reads
    (restored probabilities, SAM3 scores and boxes) is then left as the processor leaves it."""
    if not through_dispatcher(t) and not bool(torch.isfinite(t).all()):
        raise ValueError(f"outputs.{name} contains NaN or infinity; check the model's inputs and precision")


def check_same_device(fields: Mapping[str, torch.Tensor]) -> None:
    """Fields of one output that are computed with one another must share a device; else a ValueError names the
    first field and the first one on another device, with both devices."""
    (first, t), *rest = fields.items()
    for name, other in rest:
        if other.device != t.device:
            raise ValueError(
                f"outputs.{first} is on {t.device} but outputs.{name} is on {other.device}; the fields of one "
                "output must be on one device: move them to one (e.g. the model's) before post-processing"
            )


def promoted(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """The tensors in one dtype, the one torch gives their sum (float64 with float32 gives float64), so mixed
    fields of one output compute together as torch's arithmetic would."""
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    return [t.to(dtype) for t in tensors]


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def image_sizes(value, name: str, batch: int, *, allow_single: bool) -> list[tuple[int, int]]:
    """One positive (height, width) per image, from a list/tuple of pairs (or {"height": h, "width": w} dicts,
    arrays) or an int tensor or array (B, 2); with `allow_single`, one pair (or dict, or tensor of shape (2,))
    also stands for every image."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if _is_size_dict(value):  # one {"height": h, "width": w}: a single pair
        value = _pair_of(value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = [_as_pair(size) for size in value]
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


def _is_size_dict(value) -> bool:
    return isinstance(value, Mapping) and set(value) == {"height", "width"}


def _pair_of(size: Mapping) -> tuple:
    return (size["height"], size["width"])


def _as_pair(size):
    """One image's size as the processors accept it: a pair, a {"height", "width"} dict, an array or tensor."""
    if _is_size_dict(size):
        return _pair_of(size)
    if isinstance(size, (np.ndarray, torch.Tensor)):
        return size.tolist()
    return size


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
