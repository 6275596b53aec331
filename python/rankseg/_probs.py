"""What RankSEG accepts as probabilities: the checks of type, dtype, device and shape every solver needs, and
the invalid-value error, with the range of the values that tells logits from a stray NaN."""

from __future__ import annotations

import warnings
from typing import Callable

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# How every invalid-value error begins, whoever finds the value: the CPU kernels (csrc/cpu/invalid_values.h),
# the CUDA kernels' report (_ops.CoreCall) and the solvers written in torch (check_value_range).
INVALID_VALUES = "probs must contain only finite values in [0, 1]"


def check_probs(probs: object) -> None:
    """Checks type, dtype, device and shape; values are checked where they are read."""
    if not isinstance(probs, torch.Tensor):
        raise TypeError(f"probs must be a torch.Tensor of shape (B, C, *spatial), got {type(probs).__name__}")
    if probs.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"probs must be float16, bfloat16, float32 or float64, got {probs.dtype}; pass softmax or sigmoid "
            "probabilities"
        )
    if not (probs.is_cpu or probs.is_cuda or probs.is_meta):  # flags: probs.device builds an object each time
        raise ValueError(f"probs must be on a CPU or CUDA device, got {probs.device}")
    shape = probs.shape
    if len(shape) < 3:
        raise ValueError(
            f"probs must have shape (B, C, *spatial) with at least one spatial dim, got shape {tuple(shape)}"
        )
    if min(shape[1:]) < 1:
        raise ValueError(f"probs must have C >= 1 and every spatial size >= 1, got shape {tuple(shape)}")


def shape_check(check: Callable[..., None], *args) -> None:
    """check(*args). Under torch.jit.trace sizes are the example's, so a shape check holds for the example only
    and torch warns that it will not run again; the check is meant for the call being traced, so the warning is
    silenced (the compiled core checks the shape of every call of a traced graph again)."""
    if not torch.jit.is_tracing():
        return check(*args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return check(*args)


def check_value_range(probs: torch.Tensor) -> None:
    """Values must be finite and in [0, 1] (for solvers that do not check them in the compiled core)."""
    if probs.numel() and not bool(((probs >= 0) & (probs <= 1)).all()):
        error = ValueError(f"{INVALID_VALUES}; found NaN, infinity or a value outside")
        raise with_value_range(error, probs)


def with_value_range(error: ValueError, x: torch.Tensor) -> ValueError:
    """The core's invalid-value error with the range of the values, which tells logits from a stray NaN (read
    only on this error path)."""
    message = str(error)
    if not message.startswith(INVALID_VALUES):
        return error
    finite = x[torch.isfinite(x)]
    if finite.numel():
        lo, hi = float(finite.min()), float(finite.max())
        message += f"; the finite values span [{lo:g}, {hi:g}]"
        if lo < 0 or hi > 1:
            message += ", which looks like logits: apply softmax (multiclass) or sigmoid (multilabel) first"
    if finite.numel() < x.numel():
        message += f"; {x.numel() - finite.numel()} values are NaN or infinite"
    return ValueError(message)
