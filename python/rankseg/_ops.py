"""The compiled kernels as torch custom ops, so they work under torch.compile, export and fake tensors.

Each op's implementation makes one ``rankseg._C`` call: a :class:`CoreCall` views probs (B, C, *spatial) as
(B, C, N), allocates the output (and, on CUDA, the workspace) with torch and hands over named references to
them (``_boundary.TensorRef``) with the current CUDA stream. Eager calls on plain CPU/CUDA tensors skip the
dispatcher and run the same function directly: a custom op's first call imports torch._dynamo, which takes
about a second.
"""

from __future__ import annotations

import functools
import os
import typing
import warnings
from typing import Optional

import torch

from . import _C, _build
from ._boundary import (
    MERGES,
    METRICS,
    PRUNING,
    SORTING_SOLVERS,
    UNASSIGNED,
    CudaArgs,
    make_ref,
    tensor_ref,
)
from ._probs import INVALID_VALUES, with_value_range

_warned_host_fallback = False
# Calls on fewer probabilities than these run on the calling thread. Measured on two cores (test_threads in
# benchmarks/bench_small_calls.py), two threads first beat one at about 8k probabilities for multilabel RMA and
# 25k for multiclass RMA, and at about 512 for the sorting solvers (exact, BA), which spend far more on each; and
# a parallel region whose other thread waits for a busy core costs milliseconds, however small the call.
RMA_SERIAL_BELOW = 16384
SORTED_SERIAL_BELOW = 512


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


_INT64, _BOOLEAN = _C.ScalarType.int64, _C.ScalarType.boolean


class CoreCall:
    """One call of the compiled core, used as ``with CoreCall(...) as call: _C.kernel(call.probs, call.out, ...,
    call.cuda)``: probs as (B, C, N) on the device that solves it (the host for host-only kernels, or when the
    CUDA kernels cannot take it), the output, and on CUDA the workspace, stream and invalid-value report. An
    invalid-value error gains the range of the values; ``result`` is the output on the device of probs."""

    # Slots: a small call's Python is a few microseconds, and each attribute set of a plain object counts.
    __slots__ = ("_first_invalid", "_input_device", "_out", "_workspace", "_x", "cuda", "out", "probs")

    def __init__(self, probs: torch.Tensor, *, labels: bool, host_only: bool, check_values: bool = True):
        gpu = not host_only and _on_gpu(probs)
        x = self._x = _as_bcn(probs, gpu)
        b, c, n = x.shape
        self._input_device = probs.device if probs.is_cuda and not gpu else None
        ref = self.probs = tensor_ref(x)
        # (The output's kind is a bool, not a _C.Output: comparing or hashing a pybind11 enum costs 0.4 us.)
        fields: tuple
        if labels:  # int64 labels (B, *spatial), seen as (B, N)
            out = self._out = x.new_empty(probs.shape[:1] + probs.shape[2:], dtype=torch.int64)
            fields = (out.data_ptr(), _INT64, ref.device, ref.device_index, (b, n), (n, 1))
        else:  # bool masks (B, C, *spatial), seen as (B, C, N)
            out = self._out = x.new_empty(probs.shape, dtype=torch.bool)
            fields = (out.data_ptr(), _BOOLEAN, ref.device, ref.device_index, (b, c, n), (c * n, n, 1))
        self.out = make_ref(fields)  # out is fresh and contiguous: its reference is written directly
        self.cuda: Optional[CudaArgs] = None
        self._first_invalid: Optional[torch.Tensor] = None
        if gpu:
            self._prepare_cuda(labels, check_values)

    def _prepare_cuda(self, labels: bool, check_values: bool) -> None:
        x = self._x
        if check_values and torch.cuda.is_current_stream_capturing():
            raise ValueError(
                "checking probs for NaN or values outside [0, 1] reads a flag back from the GPU, which CUDA "
                "graph capture does not allow; pass check_values=False when capturing"
            )
        output = _C.Output.multiclass if labels else _C.Output.multilabel
        self._workspace = torch.empty(_C.workspace_bytes(self.probs, output), dtype=torch.uint8, device=x.device)
        if check_values and x.shape[0] > 0:  # with no image the kernels write no report
            self._first_invalid = torch.empty(1, dtype=torch.int64, device=x.device)
        invalid = None if self._first_invalid is None else tensor_ref(self._first_invalid)
        self.cuda = CudaArgs(torch.cuda.current_stream(x.device).cuda_stream, tensor_ref(self._workspace), invalid)

    def threads(self, num_threads: Optional[int], serial_below: int) -> int:
        """The CPU threads this call uses (see threads_for)."""
        return threads_for(self._x.numel(), num_threads, serial_below)

    def __enter__(self) -> CoreCall:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, ValueError):
            raise with_value_range(error, self._x) from None
        if error is None and self._first_invalid is not None:
            index = int(self._first_invalid.item())  # waits for the kernels: the one host synchronisation
            if index >= 0:
                image, cls = divmod(index, self._x.shape[1])
                raise ValueError(
                    f"{INVALID_VALUES}; image {image}, class {cls} has NaN, infinity or a value outside [0, 1]"
                )

    @property
    def result(self) -> torch.Tensor:
        return self._out if self._input_device is None else self._out.to(self._input_device)


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


def _multilabel(
    probs: torch.Tensor,
    metric: str,
    smooth: float,
    pruning_prob: float,
    check_values: bool,
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    """RMA masks, bool of the same shape as probs (B, C, *spatial)."""
    with CoreCall(probs, labels=False, host_only=False, check_values=check_values) as call:
        threads = call.threads(num_threads, RMA_SERIAL_BELOW)
        _C.rma_multilabel(call.probs, call.out, METRICS[metric], smooth, pruning_prob, threads, call.cuda)
    return call.result


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
    """RMA labels, int64 (B, *spatial)."""
    host_only = pruning != "max_prob" or merge != "gain"  # computed by the CPU kernels only
    with CoreCall(probs, labels=True, host_only=host_only, check_values=check_values) as call:
        threads = call.threads(num_threads, RMA_SERIAL_BELOW)
        _C.rma_multiclass(
            call.probs,
            call.out,
            METRICS[metric],
            smooth,
            pruning_prob,
            PRUNING[pruning],
            MERGES[merge],
            UNASSIGNED[unassigned_policy],
            void_index,
            threads,
            call.cuda,
        )
    return call.result


def _sorted_multilabel(
    probs: torch.Tensor,
    solver: str,
    smooth: float,
    pruning_prob: float,
    eps: float,
    num_threads: Optional[int] = None,
) -> torch.Tensor:
    """Masks of a solver that sorts each class (exact, BA, TRNA, BA+TRNA), bool (B, C, *spatial); on the CPU."""
    with CoreCall(probs, labels=False, host_only=True) as call:
        threads = call.threads(num_threads, SORTED_SERIAL_BELOW)
        _C.sorted_multilabel(call.probs, call.out, SORTING_SOLVERS[solver], smooth, pruning_prob, eps, threads)
    return call.result


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
    """Labels (B, *spatial) from the exact solver's masks merged as RMA merges its own; on the CPU."""
    if solver != "exact":
        raise ValueError(f"multiclass output of the sorting solvers is the exact solver's only, got {solver!r}")
    with CoreCall(probs, labels=True, host_only=True) as call:
        threads = call.threads(num_threads, SORTED_SERIAL_BELOW)
        _C.exact_multiclass(
            call.probs,
            call.out,
            smooth,
            pruning_prob,
            PRUNING[pruning],
            MERGES[merge],
            UNASSIGNED[unassigned_policy],
            void_index,
            threads,
        )
    return call.result


def _expected_scores(
    probs: torch.Tensor, masks: torch.Tensor, metric: str, smooth: float, empty: float
) -> torch.Tensor:
    """The exact expected Dice or IoU, float64 (B, C), of bool masks (B, C, N) under probs (B, C, N) on the CPU."""
    x, m = probs.contiguous(), masks.contiguous()
    out = torch.empty(x.shape[:2], dtype=torch.float64)
    if x.shape[0] and x.shape[2]:
        threads = threads_for(x.numel(), None, SORTED_SERIAL_BELOW)
        _C.expected_scores(tensor_ref(x), tensor_ref(m), tensor_ref(out), METRICS[metric], smooth, empty, threads)
    return out


def _custom_op(name: str, impl, fake, vmap: bool = True):
    """The registered op for impl, with a fake that gives only the output's shape (torch.compile, export, meta)."""
    # Resolved annotations: torch < 2.5 cannot read the strings that `from __future__ import annotations` leaves.
    impl.__annotations__ = typing.get_type_hints(impl)
    op = torch.library.custom_op(f"rankseg::{name}", impl, mutates_args=())
    op.register_fake(fake)
    if vmap and hasattr(op, "register_vmap"):  # torch >= 2.5
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


def _fake_masks(probs, *args):
    return probs.new_empty(probs.shape, dtype=torch.bool)


def _fake_labels(probs, *args):
    return probs.new_empty((probs.shape[0], *probs.shape[2:]), dtype=torch.int64)


def _fake_scores(probs, *args):
    return probs.new_empty(probs.shape[:2], dtype=torch.float64)


multilabel_op = _custom_op("rma_multilabel", _multilabel, _fake_masks)
multiclass_op = _custom_op("rma_multiclass", _multiclass, _fake_labels)
sorted_multilabel_op = _custom_op("sorted_multilabel", _sorted_multilabel, _fake_masks)
sorted_multiclass_op = _custom_op("sorted_multiclass", _sorted_multiclass, _fake_labels)
# Two tensor inputs: the batching rule above folds probs' dim only.
expected_scores_op = _custom_op("expected_scores", _expected_scores, _fake_scores, vmap=False)


def _dispatched(op, impl):
    """The entry point of one op: the registered op where the call must pass the dispatcher, else impl itself."""

    def call(probs: torch.Tensor, *args):
        return (op if through_dispatcher(probs) else impl)(probs, *args)

    call.__doc__ = impl.__doc__
    return call


# Every argument is given, by position, in the op's order (see the implementations above).
rma_multilabel = _dispatched(multilabel_op, _multilabel)
rma_multiclass = _dispatched(multiclass_op, _multiclass)
sorted_multilabel = _dispatched(sorted_multilabel_op, _sorted_multilabel)
sorted_multiclass = _dispatched(sorted_multiclass_op, _sorted_multiclass)
expected_scores = _dispatched(expected_scores_op, _expected_scores)
