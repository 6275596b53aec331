"""The compiled kernels as torch custom ops, so they work under torch.compile, export and fake tensors.

Each op views probs (B, C, *spatial) as (B, C, N), allocates the output (and, on CUDA, the workspace) with
torch and hands plain descriptors (pointer, dtype code, device, sizes, strides) and the current CUDA stream to
``rankseg._C``. Eager calls on plain CPU/CUDA tensors skip the dispatcher and run the same function directly:
a custom op's first call imports torch._dynamo, which takes about a second.
"""

from __future__ import annotations

import functools
import os
import typing
import warnings
from typing import Optional

import torch

from . import _C, _build
from ._options import with_value_range

_DTYPE_CODES = {
    torch.float32: 0,
    torch.float64: 1,
    torch.float16: 2,
    torch.bfloat16: 3,
    torch.bool: 4,
    torch.int64: 5,
    torch.uint8: 6,
}
_METRIC_CODES = {"dice": 0, "iou": 1}
_POLICY_CODES = {"max_score": 0, "void": 1}
_PRUNING_CODES = {"max_prob": 0, "argmax": 1}
_MERGE_CODES = {"gain": 0, "prob": 1}
_MULTILABEL, _MULTICLASS = 0, 1
_warned_host_fallback = False
# Calls on fewer probabilities than these run on the calling thread. Measured on two cores (test_threads in
# benchmarks/bench_small_calls.py), two threads first beat one at about 8k probabilities for multilabel RMA and
# 25k for multiclass RMA, and at about 512 for the sorting solvers (exact, BA), which spend far more on each; and
# a parallel region whose other thread waits for a busy core costs milliseconds, however small the call.
RMA_SERIAL_BELOW = 16384
SORTED_SERIAL_BELOW = 512


def _describe(t: torch.Tensor) -> tuple:
    if t.is_cpu:  # without building a torch.device (about 0.4 us, a tenth of a small call's Python)
        return (t.data_ptr(), _DTYPE_CODES[t.dtype], "cpu", 0, tuple(t.shape), tuple(t.stride()))
    index = t.device.index if t.device.index is not None else 0
    return (t.data_ptr(), _DTYPE_CODES[t.dtype], t.device.type, index, tuple(t.shape), tuple(t.stride()))


def _on_gpu(probs: torch.Tensor) -> bool:
    """Whether the CUDA kernels take this call; otherwise a CUDA tensor goes through the host, with one warning
    per process saying why (no CUDA kernels in this build, or a driver too old to run them)."""
    if not probs.is_cuda:
        return False
    if gpu_kernels_take(probs):
        return True
    reason = _build.cuda_unavailable_reason()
    global _warned_host_fallback
    if not _warned_host_fallback:
        _warned_host_fallback = True
        warnings.warn(
            "rankseg copies CUDA tensors to the host and solves them on the CPU (slow, and it synchronises the "
            f"stream): {reason}; see the README",
            RuntimeWarning,
            stacklevel=4,
        )
    return False


def _as_bcn(probs: torch.Tensor, gpu: bool) -> torch.Tensor:
    """(B, C, *spatial) -> (B, C, N): a view whenever the spatial dims allow one.

    The CUDA kernels read each class's pixels as one run, so other layouts are copied to class-major order on
    the device; without them the tensor goes to the host (the result goes back to the input's device).
    """
    x = probs.flatten(2)
    if not gpu:
        return x if x.is_cpu else x.cpu()
    return x if x.shape[2] == 1 or x.stride(2) == 1 else x.contiguous()


class _GpuCall:
    """Workspace, stream and the invalid-value report of one CUDA call."""

    def __init__(self, x: torch.Tensor, output: int, check_values: bool):
        if check_values and torch.cuda.is_current_stream_capturing():
            raise ValueError(
                "checking probs for NaN or values outside [0, 1] reads a flag back from the GPU, which CUDA graph "
                "capture does not allow; pass check_values=False when capturing"
            )
        self.workspace = torch.empty(_C.workspace_bytes(_describe(x), output), dtype=torch.uint8, device=x.device)
        self.first_invalid = torch.empty(1, dtype=torch.int64, device=x.device) if check_values else None
        self.stream = torch.cuda.current_stream(x.device).cuda_stream

    def kwargs(self) -> dict:
        invalid = None if self.first_invalid is None else _describe(self.first_invalid)
        return {"stream": self.stream, "workspace": _describe(self.workspace), "first_invalid": invalid}

    def raise_if_invalid(self, classes: int) -> None:
        if self.first_invalid is None:
            return
        slab = int(self.first_invalid.item())  # waits for the kernels: the one host synchronisation
        if slab >= 0:
            image, cls = divmod(slab, classes)
            raise ValueError(
                f"probs must contain only finite values in [0, 1]; image {image}, class {cls} has NaN, "
                "infinity or a value outside [0, 1]"
            )


def argmax_labels(probs: torch.Tensor) -> torch.Tensor:
    """probs.argmax(1), the same labels (the first maximum on ties). On the CPU torch reduces over a strided dim
    3-4x slower than over the last one, so there the classes are moved last first."""
    if probs.device.type != "cpu" or probs.shape[1] > 64:  # many classes: the copy costs more than it saves
        return probs.argmax(dim=1)
    return probs.movedim(1, -1).contiguous().argmax(dim=-1)


def fill_unselected(probs: torch.Tensor, labels: torch.Tensor, unselected: int) -> torch.Tensor:
    """Gives the pixels labelled `unselected` their argmax class. Eager CPU calls read only those pixels' classes;
    elsewhere (CUDA, tracing, compiling) one argmax pass and a select keep it free of data-dependent shapes."""
    if probs.device.type == "cpu" and not through_dispatcher(probs):
        flat = labels.view(labels.shape[0], -1)  # the merge's own contiguous output, safe to write
        image, pixel = torch.nonzero(flat == unselected, as_tuple=True)
        if len(image):
            flat[image, pixel] = probs.reshape(*probs.shape[:2], -1)[image, :, pixel].argmax(dim=1)
        return labels
    return torch.where(labels == unselected, argmax_labels(probs), labels)


def gpu_kernels_take(probs: torch.Tensor) -> bool:
    """Whether a CUDA tensor would be solved by the CUDA kernels (this build has them, and they can run)."""
    return probs.is_cuda and _C.cuda_compiled() and _build._kernels_unusable() is None


def through_dispatcher(probs: torch.Tensor) -> bool:
    """Whether this call must go through the registered op rather than straight to ``_C``.

    Fake or meta tensors and tensor subclasses need the op, and so does every kind of tracing: torch.compile
    and export see only what passes the dispatcher, and torch.jit.trace records dispatcher ops, so a direct
    ``_C`` call would leave a traced graph holding only the output's allocation (uninitialised memory).
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing():  # first: dynamo cannot trace the functorch test
        return True
    plain = type(probs) is torch.Tensor and (probs.is_cpu or probs.is_cuda)
    return not plain or _functorch_wrapped(probs)


_is_functorch_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)


def _functorch_wrapped(t: torch.Tensor) -> bool:
    """Tensors inside torch.vmap (and other torch.func transforms) have no storage of their own."""
    return bool(_is_functorch_wrapped is not None and _is_functorch_wrapped(t))


def refuse_tracing(name: str) -> None:
    """For entry points with no registered op: refuse torch.jit.trace rather than record a wrong graph."""
    if torch.jit.is_tracing():
        raise RuntimeError(
            f"{name} cannot be recorded by torch.jit.trace (it calls the compiled core directly, which a trace "
            "would drop); compute it outside the traced function"
        )


def rma_multilabel(
    probs: torch.Tensor,
    metric: str,
    smooth: float,
    pruning_prob: float,
    check_values: bool = True,
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    """RMA masks, bool of the same shape as probs (B, C, *spatial)."""
    op = multilabel_op if through_dispatcher(probs) else _multilabel
    return op(probs, metric, smooth, pruning_prob, check_values, num_threads)


def rma_multiclass(
    probs: torch.Tensor,
    metric: str,
    smooth: float,
    pruning_prob: float,
    unassigned_policy: str,
    void_index: int,
    check_values: bool = True,
    pruning: str = "max_prob",
    merge: str = "gain",
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    """RMA label map, int64 of shape (B, *spatial)."""
    op = multiclass_op if through_dispatcher(probs) else _multiclass
    return op(
        probs, metric, smooth, pruning_prob, unassigned_policy, void_index, check_values, pruning, merge, num_threads
    )


# A process forked from one that ran OpenMP inherits none of its threads, and OpenMP work there waits forever
# (datasets' num_proc, multiprocessing's default start on Linux): forked children solve on the calling thread.
_forked = False


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def threads_for(elements: int, num_threads: Optional[int], serial_below: int) -> int:
    """The CPU threads a call on `elements` probabilities uses: one below `serial_below` or in a forked child,
    else `num_threads` (None: torch.get_num_threads()). Results never depend on it."""
    if elements < serial_below or _forked:
        return 1
    return torch.get_num_threads() if num_threads is None else num_threads


def _solve(
    probs: torch.Tensor,
    output: int,
    kernel,
    options: tuple,
    check_values: bool,
    host_only: bool,
    num_threads: Optional[int],
    serial_below: int,
    cpu_tail: tuple = (),
) -> torch.Tensor:
    """Runs kernel(probs as (B, C, N), out, *options, threads) on the device that takes the call (the CPU for a
    host-only kernel), the CPU call followed by the arguments `cpu_tail`. Returns out on the device of probs:
    int64 labels (B, *spatial) for _MULTICLASS output, which the kernel sees as (B, N), or bool masks
    (B, C, *spatial), seen as (B, C, N)."""
    gpu = not host_only and _on_gpu(probs)
    x = _as_bcn(probs, gpu)
    b, c, n = x.shape
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    if output == _MULTICLASS:
        out = x.new_empty(probs.shape[:1] + probs.shape[2:], dtype=torch.int64)
        sizes, strides = (b, n), (n, 1)
    else:
        out = x.new_empty(probs.shape, dtype=torch.bool)
        sizes, strides = (b, c, n), (c * n, n, 1)
    if b > 0:
        probs_arg = _describe(x)
        # out is fresh and contiguous: its descriptor is written directly, which saves a view op per call
        out_arg = (out.data_ptr(), _DTYPE_CODES[out.dtype], probs_arg[2], probs_arg[3], sizes, strides)
        args = (probs_arg, out_arg, *options, threads_for(x.numel(), num_threads, serial_below))
        try:
            if gpu:
                call = _GpuCall(x, output, check_values)
                kernel(*args, **call.kwargs())
                call.raise_if_invalid(c)
            else:
                kernel(*args, *cpu_tail)
        except ValueError as e:
            raise with_value_range(e, x) from None
    return out.to(probs.device) if probs.is_cuda and not gpu else out


def _multilabel(
    probs: torch.Tensor,
    metric: str,
    smooth: float,
    pruning_prob: float,
    check_values: bool,
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    options = (_METRIC_CODES[metric], smooth, pruning_prob)
    return _solve(probs, _MULTILABEL, _C.rma_multilabel, options, check_values, False, num_threads, RMA_SERIAL_BELOW)


def _multiclass(
    probs: torch.Tensor,
    metric: str,
    smooth: float,
    pruning_prob: float,
    unassigned_policy: str,
    void_index: int,
    check_values: bool,
    pruning: str,
    merge: str,  # no default: torch 2.4 custom ops take defaults of int, float, bool and None only
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    options = (_METRIC_CODES[metric], smooth, pruning_prob, _POLICY_CODES[unassigned_policy], void_index)
    host_only = pruning != "max_prob" or merge != "gain"  # computed by the CPU kernels only
    # pruning and merge come after stream, workspace, first_invalid (and trace), by position: matching keywords
    # costs pybind11 about 1.5 us a call. Elsewhere they are the defaults, (0, 0).
    tail = (0, None, None, _PRUNING_CODES[pruning], None, _MERGE_CODES[merge]) if host_only else ()
    return _solve(
        probs, _MULTICLASS, _C.rma_multiclass, options, check_values, host_only, num_threads, RMA_SERIAL_BELOW, tail
    )


_SOLVER_CODES = {"exact": 0, "BA": 1, "TRNA": 2, "BA+TRNA": 3}


def sorted_multilabel(
    probs: torch.Tensor,
    solver: str,
    smooth: float,
    pruning_prob: float,
    eps: float,
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    """Masks of a solver that sorts each class (exact, BA, TRNA, BA+TRNA), bool (B, C, *spatial); on the CPU."""
    op = sorted_multilabel_op if through_dispatcher(probs) else _sorted_multilabel
    return op(probs, solver, smooth, pruning_prob, eps, num_threads)


def sorted_multiclass(
    probs: torch.Tensor,
    solver: str,
    smooth: float,
    pruning_prob: float,
    unassigned_policy: str,
    void_index: int,
    pruning: str = "max_prob",
    merge: str = "gain",
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    """Labels (B, *spatial) from a sorting solver's masks merged as RMA merges its own; on the CPU."""
    op = sorted_multiclass_op if through_dispatcher(probs) else _sorted_multiclass
    return op(probs, solver, smooth, pruning_prob, unassigned_policy, void_index, pruning, merge, num_threads)


def _sorted_multilabel(
    probs: torch.Tensor,
    solver: str,
    smooth: float,
    pruning_prob: float,
    eps: float,
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    options = (_SOLVER_CODES[solver], smooth, pruning_prob, eps)
    return _solve(probs, _MULTILABEL, _C.sorted_multilabel, options, True, True, num_threads, SORTED_SERIAL_BELOW)


def _sorted_multiclass(
    probs: torch.Tensor,
    solver: str,
    smooth: float,
    pruning_prob: float,
    unassigned_policy: str,
    void_index: int,
    pruning: str,
    merge: str,
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    eps = 0.5  # BA/TRNA's tail mass, checked by the core but unused: only the exact solver is multiclass
    options = (_SOLVER_CODES[solver], smooth, pruning_prob, eps, _POLICY_CODES[unassigned_policy], void_index)
    tail = (_PRUNING_CODES[pruning], _MERGE_CODES[merge])  # by position, as in _multiclass
    return _solve(probs, _MULTICLASS, _C.sorted_multiclass, options, True, True, num_threads, SORTED_SERIAL_BELOW, tail)


def _custom_op(name: str, impl, out_shape, out_dtype):
    """The registered op for impl, with a fake that gives only the output's shape (torch.compile, export, meta)."""
    # Resolved annotations: torch < 2.5 cannot read the strings that `from __future__ import annotations` leaves.
    impl.__annotations__ = typing.get_type_hints(impl)
    op = torch.library.custom_op(f"rankseg::{name}", impl, mutates_args=())
    op.register_fake(lambda probs, *args: probs.new_empty(out_shape(probs), dtype=out_dtype))
    if hasattr(op, "register_vmap"):  # torch >= 2.5
        op.register_vmap(functools.partial(_fold_vmapped_dim, op))
    return op


def _fold_vmapped_dim(op, info, in_dims, probs, *args):
    """torch.vmap's batching rule for every op: the vmapped dim of probs joins the batch dim B, one call solves
    all, and the output is split back. Each image is solved on its own, so this equals a loop over the dim."""
    dim = in_dims[0]
    if dim is None:  # only non-tensor arguments were vmapped: nothing to fold
        return op(probs, *args), None
    x = probs.movedim(dim, 0)
    v, b = x.shape[:2]
    out = op(x.reshape(v * b, *x.shape[2:]), *args)
    return out.reshape(v, b, *out.shape[1:]), 0


def _masks_shape(probs):
    return probs.shape


def _labels_shape(probs):
    return (probs.shape[0], *probs.shape[2:])


multilabel_op = _custom_op("rma_multilabel", _multilabel, _masks_shape, torch.bool)
multiclass_op = _custom_op("rma_multiclass", _multiclass, _labels_shape, torch.int64)
sorted_multilabel_op = _custom_op("sorted_multilabel", _sorted_multilabel, _masks_shape, torch.bool)
sorted_multiclass_op = _custom_op("sorted_multiclass", _sorted_multiclass, _labels_shape, torch.int64)
