"""NumPy arrays and DLPack arrays (CuPy, JAX, ...) as torch tensors for the solvers, and their masks back in
the caller's kind: RankSEG.predict converts its input and output here, and nowhere else."""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import torch

_ACCEPTED = "a torch.Tensor, a NumPy array or an array with __dlpack__ (CuPy, JAX, ...)"
Restore = Optional[Callable[[torch.Tensor], Any]]


def as_tensor(probs: object) -> tuple[torch.Tensor, Restore]:
    """probs as a torch.Tensor, sharing its memory where torch can view the layout, and the function that turns
    a result into the input's kind (None: keep the tensor)."""
    if isinstance(probs, torch.Tensor):
        return probs, None
    np = sys.modules.get("numpy")  # a NumPy array exists only once NumPy is imported; rankseg does not need it
    if np is not None and isinstance(probs, np.ndarray):
        return _from_numpy(np, probs), _to_numpy
    if hasattr(probs, "__dlpack__"):
        return _from_dlpack(probs), _from_dlpack_of(probs)
    raise TypeError(
        f"probs must be {_ACCEPTED} of probabilities (B, C, *spatial), got {type(probs).__name__}; convert it "
        "first, e.g. torch.as_tensor(probs, dtype=torch.float32)"
    )


def _from_numpy(np: Any, a: Any) -> torch.Tensor:
    if a.dtype.kind != "f" or a.dtype.itemsize > 8:
        raise TypeError(
            f"probs must hold float16, float32 or float64 probabilities, got a NumPy array of dtype {a.dtype}; "
            "pass softmax or sigmoid outputs, converted with probs.astype(np.float32) if need be"
        )
    return view_numpy(np, a)


def view_numpy(np: Any, a: Any) -> torch.Tensor:
    """A NumPy array as a tensor that shares its memory, read-only arrays included (nothing here writes to
    them); copied only where torch cannot view the layout."""
    if not a.dtype.isnative or any(s < 0 or s % a.itemsize for s in a.strides):
        # Byte-swapped values and negative or unaligned strides are the layouts torch cannot view: copy those.
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
    if a.flags.writeable:
        return torch.from_numpy(a)
    # torch.from_numpy warns that torch cannot mark a tensor read-only; DLPack 1.0 carries the flag, and the
    # solvers never write to probs. Where NumPy or torch predates DLPack 1.0, NumPy refuses: then copy.
    try:
        return torch.from_dlpack(a)
    except BufferError:
        return torch.from_numpy(a.copy())


def _to_numpy(masks: torch.Tensor) -> Any:
    return masks.numpy()  # a fresh CPU tensor: the array takes over its memory


def _from_dlpack(x: Any) -> torch.Tensor:
    strides = getattr(x, "strides", None)
    if isinstance(strides, tuple) and any(isinstance(s, int) and s < 0 for s in strides):
        # torch (2.13) aborts the process on negative DLPack strides instead of raising.
        raise TypeError(
            f"probs ({type(x).__name__}) has negative strides, which torch cannot view through DLPack; pass a "
            "contiguous copy (e.g. cupy.ascontiguousarray(probs))"
        )
    try:
        return torch.from_dlpack(x)
    except (BufferError, RuntimeError, TypeError, ValueError) as e:
        raise TypeError(
            f"probs ({type(x).__name__}) could not be read through DLPack: {e}; pass {_ACCEPTED} that torch "
            "supports (a CPU or CUDA array of float16, bfloat16, float32 or float64)"
        ) from None


def _from_dlpack_of(x: Any) -> Restore:
    """The from_dlpack that makes arrays of x's kind: its array-API namespace's (NumPy, JAX, ...), else its
    package's (cupy.from_dlpack). Not the type's own: some (Triton's pb_utils.Tensor) take other arguments.
    Without one the torch.Tensor is returned; it has __dlpack__ itself."""
    namespace = x.__array_namespace__() if hasattr(x, "__array_namespace__") else None
    convert = getattr(namespace, "from_dlpack", None)
    if convert is None:
        convert = getattr(sys.modules.get(type(x).__module__.partition(".")[0]), "from_dlpack", None)
    return convert
