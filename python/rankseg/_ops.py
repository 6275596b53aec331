"""The compiled kernels as torch custom ops, so they work under torch.compile, export and fake tensors.

Each op views probs (B, C, *spatial) as (B, C, N), allocates the output and hands plain descriptors
(pointer, dtype code, device, sizes, strides) to ``rankseg._C``. Eager calls on plain CPU/CUDA tensors skip
the dispatcher and run the same function directly: a custom op's first call imports torch._dynamo, which
takes about a second.
"""

from __future__ import annotations

import math

import torch

from . import _C

_DTYPE_CODES = {
    torch.float32: 0,
    torch.float64: 1,
    torch.float16: 2,
    torch.bfloat16: 3,
    torch.bool: 4,
    torch.int64: 5,
}
_METRIC_CODES = {"dice": 0, "iou": 1}
_POLICY_CODES = {"max_score": 0, "void": 1}


def _describe(t: torch.Tensor) -> tuple:
    return (t.data_ptr(), _DTYPE_CODES[t.dtype], t.device.type, tuple(t.shape), tuple(t.stride()))


def _as_bcn(probs: torch.Tensor) -> torch.Tensor:
    """(B, C, *spatial) -> (B, C, N) on the CPU: a view whenever the spatial dims allow one.

    Builds without CUDA kernels compute CUDA inputs on the CPU; the result goes back to the input's device.
    """
    b, c = probs.shape[:2]
    x = probs.reshape(b, c, math.prod(probs.shape[2:]))
    return x.cpu()


def _through_dispatcher(probs: torch.Tensor) -> bool:
    """Tracing, fake or meta tensors and tensor subclasses need the registered op; plain tensors do not."""
    plain = type(probs) is torch.Tensor and probs.device.type in ("cpu", "cuda")
    return torch.compiler.is_compiling() or not plain


def rma_multilabel(probs: torch.Tensor, metric: str, smooth: float, pruning_prob: float) -> torch.Tensor:
    """RMA masks, bool of the same shape as probs (B, C, *spatial)."""
    op = multilabel_op if _through_dispatcher(probs) else _multilabel
    return op(probs, metric, smooth, pruning_prob)


def rma_multiclass(
    probs: torch.Tensor, metric: str, smooth: float, pruning_prob: float, unassigned_policy: str, void_index: int
) -> torch.Tensor:
    """RMA label map, int64 of shape (B, *spatial)."""
    op = multiclass_op if _through_dispatcher(probs) else _multiclass
    return op(probs, metric, smooth, pruning_prob, unassigned_policy, void_index)


def _multilabel(probs: torch.Tensor, metric: str, smooth: float, pruning_prob: float) -> torch.Tensor:
    x = _as_bcn(probs)
    out = torch.empty(x.shape, dtype=torch.bool)
    if x.shape[0] > 0:
        _C.rma_multilabel(
            _describe(x), _describe(out), _METRIC_CODES[metric], smooth, pruning_prob, torch.get_num_threads()
        )
    return out.view(probs.shape).to(probs.device)


def _multiclass(
    probs: torch.Tensor, metric: str, smooth: float, pruning_prob: float, unassigned_policy: str, void_index: int
) -> torch.Tensor:
    x = _as_bcn(probs)
    out = torch.empty((x.shape[0], x.shape[2]), dtype=torch.int64)
    if x.shape[0] > 0:
        _C.rma_multiclass(
            _describe(x),
            _describe(out),
            _METRIC_CODES[metric],
            smooth,
            pruning_prob,
            _POLICY_CODES[unassigned_policy],
            void_index,
            torch.get_num_threads(),
        )
    return out.view((probs.shape[0], *probs.shape[2:])).to(probs.device)


multilabel_op = torch.library.custom_op("rankseg::rma_multilabel", _multilabel, mutates_args=())
multiclass_op = torch.library.custom_op("rankseg::rma_multiclass", _multiclass, mutates_args=())


@multilabel_op.register_fake
def _(probs, metric, smooth, pruning_prob):
    return probs.new_empty(probs.shape, dtype=torch.bool)


@multiclass_op.register_fake
def _(probs, metric, smooth, pruning_prob, unassigned_policy, void_index):
    return probs.new_empty((probs.shape[0], *probs.shape[2:]), dtype=torch.int64)
