"""What crosses into ``rankseg._C``: named references to tensors, and the core's enums for the option strings.

The enums are defined once, in C++ (``csrc/core.h``), and exported; the tables here only spell the public option
strings in them.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from . import _C


class TensorRef(NamedTuple):
    """A tensor as the compiled core reads it (a named tuple, which pybind11 reads as fast as a plain one)."""

    data: int
    dtype: _C.ScalarType
    device: _C.DeviceType
    device_index: int
    sizes: tuple[int, ...]
    strides: tuple[int, ...]


class CudaArgs(NamedTuple):
    """What a call on a CUDA device takes besides its tensors."""

    stream: int  # a cudaStream_t as an integer: the caller's current stream
    workspace: TensorRef  # uint8, at least _C.workspace_bytes(...) bytes
    first_invalid: Optional[TensorRef]  # int64 (1,): the first (image, class) with invalid values, or -1


SCALAR_TYPES = {
    torch.float32: _C.ScalarType.float32,
    torch.float64: _C.ScalarType.float64,
    torch.float16: _C.ScalarType.float16,
    torch.bfloat16: _C.ScalarType.bfloat16,
    torch.bool: _C.ScalarType.boolean,
    torch.int64: _C.ScalarType.int64,
    torch.uint8: _C.ScalarType.uint8,
}
METRICS = {"dice": _C.Metric.dice, "iou": _C.Metric.iou}
UNASSIGNED = {"max_score": _C.Unassigned.max_score, "void": _C.Unassigned.void_label}
PRUNING = {"max_prob": _C.Pruning.max_prob, "argmax": _C.Pruning.argmax}
MERGES = {"gain": _C.Merge.gain, "prob": _C.Merge.probability}
SORTING_SOLVERS = {"exact": _C.Solver.exact, "BA": _C.Solver.ba, "TRNA": _C.Solver.trna, "BA+TRNA": _C.Solver.ba_trna}
_CPU = _C.DeviceType.cpu
_CUDA = _C.DeviceType.cuda


_new_tuple = tuple.__new__


def make_ref(fields: tuple) -> TensorRef:
    """TensorRef(*fields), without the named tuple's __new__: half the cost (0.2 us), twice per call."""
    return _new_tuple(TensorRef, fields)


def tensor_ref(t: torch.Tensor) -> TensorRef:
    """A reference to t, which must stay alive (and unmoved) for the call it is passed to."""
    if t.is_cpu:  # without building a torch.device (about 0.4 us, a tenth of a small call's Python)
        return make_ref((t.data_ptr(), SCALAR_TYPES[t.dtype], _CPU, 0, tuple(t.shape), tuple(t.stride())))
    index = t.device.index if t.device.index is not None else 0
    return make_ref((t.data_ptr(), SCALAR_TYPES[t.dtype], _CUDA, index, tuple(t.shape), tuple(t.stride())))
