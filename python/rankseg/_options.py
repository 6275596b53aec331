"""Parsing and checking of RankSEG's arguments: every mistake becomes a TypeError or ValueError that names
the argument, what was given and what is expected."""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import warnings
from dataclasses import dataclass

import torch

METRICS = {"dice": "dice", "iou": "iou", "acc": "acc", "accuracy": "acc"}
OUTPUT_MODES = ("multiclass", "multilabel")
SOLVERS = ("RMA", "BA", "TRNA", "BA+TRNA", "exact", "argmax", "TR")

# Solvers per (metric, output_mode), in the order they are listed to the user.
SUPPORTED_SOLVERS = {
    ("dice", "multiclass"): ("RMA", "exact"),
    ("dice", "multilabel"): ("RMA", "BA", "TRNA", "BA+TRNA", "exact"),
    ("iou", "multiclass"): ("RMA",),
    ("iou", "multilabel"): ("RMA",),
    ("acc", "multiclass"): ("argmax",),
    ("acc", "multilabel"): ("argmax", "TR"),
}
SORTING_SOLVERS = ("exact", "BA", "TRNA", "BA+TRNA")
UNASSIGNED_POLICIES = ("max_score", "void", "argmax")
UNSELECTED = -1  # the compiled merge's label for pixels no class selects, under unassigned_policy="argmax"
# rankseg 0.0.x's choice of an inexact fast path; ours is always exact, so it is accepted, checked and ignored.
SAFE_SCREENING = (True, False, "auto")
PRUNING_RULES = ("max_prob", "argmax")
# How multiclass RMA and exact turn per-class masks into labels: "gain" (the compiled merge: a pixel claimed by
# several classes, or by none, goes to the largest incremental score) or "prob" (to the most probable class
# among those claiming it, and an unclaimed pixel to its argmax class).
MERGE_RULES = ("gain", "prob")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def _quoted(names) -> str:
    return ", ".join(repr(n) for n in names)


def _choice(name: str, value: object, choices) -> str:
    """Matches a string argument case-insensitively after stripping whitespace."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {_quoted(choices)}; got {_describe(value)}")
    key = value.strip().lower()
    for choice in choices:
        if choice.lower() == key:
            return choice
    raise ValueError(f"{name} must be one of {_quoted(choices)} (case-insensitive), got {value!r}")


def _real(name: str, value: object, low: float, high: float, *, open_low=False, open_high=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    x = float(value)
    too_low = x <= low if open_low else x < low
    too_high = x >= high if open_high else x > high
    if not math.isfinite(x) or too_low or too_high:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return x


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_describe(value)}")
    x = int(value)
    if not INT64_MIN <= x <= INT64_MAX:
        raise ValueError(f"{name} must fit in int64, got {x}")
    return x


@dataclass(frozen=True)
class Options:
    """Validated, normalised RankSEG settings."""

    metric: str
    smooth: float
    output_mode: str
    solver: str
    pruning_prob: float
    unassigned_policy: str = "max_score"
    void_index: int = 255
    eps: float = 1e-4
    pruning: str = "max_prob"
    safe_screening: bool | str = False
    merge: str = "gain"
    num_threads: int | None = None  # None: torch.get_num_threads() at each call

    def core_policy(self) -> tuple[str, int]:
        """The policy and void index the compiled merge receives: under "argmax" it labels the pixels no class
        selects UNSELECTED, and they take their argmax class afterwards."""
        if self.unassigned_policy == "argmax":
            return "void", UNSELECTED
        return self.unassigned_policy, self.void_index


def allowed_solver_params(solver: str, output_mode: str) -> tuple[str, ...]:
    if solver == "RMA" and output_mode == "multiclass":
        return ("unassigned_policy", "void_index", "pruning", "merge", "safe_screening")
    if solver == "exact" and output_mode == "multiclass":
        return ("unassigned_policy", "void_index", "pruning", "merge")
    if solver == "RMA":
        return ("safe_screening",)
    if solver in ("BA", "TRNA", "BA+TRNA"):
        return ("eps",)
    return ()


ARGUMENTS = ("metric", "smooth", "output_mode", "solver", "pruning_prob", "num_threads")
# Every solver parameter of some solver and mode, for suggestions when a name is misspelt.
ALL_SOLVER_PARAMS = tuple(dict.fromkeys(p for s in SOLVERS for m in OUTPUT_MODES for p in allowed_solver_params(s, m)))


def _closest(name: object, names) -> str:
    """ "; did you mean 'x'?" for a near miss of one of `names`, else nothing."""
    if name in names:  # a parameter of another solver or mode: the allowed list says enough
        return ""
    match = difflib.get_close_matches(str(name), names, n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def check_safe_screening(value) -> bool | str:
    """True, False or "auto" (any case); it selects nothing in this implementation."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    raise TypeError(f"safe_screening must be True, False or 'auto', got {_describe(value)}")


def check_num_threads(value: object) -> int | None:
    """None (torch's thread count at each call) or an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"num_threads must be an int >= 1 or None (torch.get_num_threads()), got {_describe(value)}")
    threads = int(value)
    if not 1 <= threads <= INT32_MAX:
        raise ValueError(
            f"num_threads must be at least 1 (and fit in int32), or None for torch.get_num_threads(); got {value!r}"
        )
    return threads


def parse_options(
    metric, smooth, output_mode, solver, pruning_prob, solver_params: dict, num_threads: object = None
) -> Options:
    """The checked, normalised settings. Settings seen before are looked up, not parsed again: parsing costs as
    much as a small call's solve, and rankseg.rankseg makes a RankSEG per call."""
    args = (metric, smooth, output_mode, solver, pruning_prob, num_threads)
    args += tuple(x for item in sorted(solver_params.items()) for x in item)  # name, value, name, value, ...
    try:
        hash(args)
    except TypeError:  # an unhashable value: parse it, and let the checks say what is wrong with it
        options, notes = _parse(*args)
    else:
        options, notes = _parse_seen(*args)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=4)
    return options


def _parse(metric, smooth, output_mode, solver, pruning_prob, num_threads, *params) -> tuple[Options, tuple[str, ...]]:
    """parse_options' work: the settings, and the warnings to give each time they are asked for."""
    solver_params = dict(zip(params[::2], params[1::2]))
    notes: tuple[str, ...] = ()
    metric = METRICS[_choice("metric", metric, ("dice", "iou", "acc", "accuracy"))]
    output_mode = _choice("output_mode", output_mode, OUTPUT_MODES)
    solver = _choice("solver", solver, SOLVERS)
    smooth = _real("smooth", smooth, 0.0, math.inf, open_high=True)
    pruning_prob = _real("pruning_prob", pruning_prob, 0.0, 1.0)

    supported = SUPPORTED_SOLVERS[(metric, output_mode)]
    if solver not in supported:
        raise ValueError(
            f"solver={solver!r} does not support metric={metric!r} with output_mode={output_mode!r}; "
            f"supported solvers: {_quoted(supported)}"
        )

    allowed = allowed_solver_params(solver, output_mode)
    unknown = sorted(set(solver_params) - set(allowed))
    if unknown:
        raise TypeError(
            f"unexpected solver parameter(s) {_quoted(unknown)} for solver={solver!r} with "
            f"output_mode={output_mode!r}; allowed: {_quoted(allowed) if allowed else 'none'}, beside RankSEG's "
            f"own arguments {_quoted(ARGUMENTS)}{_closest(unknown[0], (*ARGUMENTS, *ALL_SOLVER_PARAMS))}"
        )

    extra: dict[str, object] = {"num_threads": check_num_threads(num_threads)}
    if "unassigned_policy" in solver_params:
        extra["unassigned_policy"] = _choice(
            "unassigned_policy", solver_params["unassigned_policy"], UNASSIGNED_POLICIES
        )
    if "void_index" in solver_params:
        if extra.get("unassigned_policy", "max_score") != "void":
            raise ValueError("void_index is only used with unassigned_policy='void'; pass both or neither")
        extra["void_index"] = _integer("void_index", solver_params["void_index"])
    if "pruning" in solver_params:
        extra["pruning"] = _choice("pruning", solver_params["pruning"], PRUNING_RULES)
    if "merge" in solver_params:
        extra["merge"] = _choice("merge", solver_params["merge"], MERGE_RULES)
    if "safe_screening" in solver_params:
        extra["safe_screening"] = check_safe_screening(solver_params["safe_screening"])
    if "eps" in solver_params:
        extra["eps"] = _real("eps", solver_params["eps"], 0.0, 1.0, open_low=True, open_high=True)

    if output_mode == "multiclass" and solver in ("RMA", "exact"):
        # The multiclass defaults, chosen on trained networks (docs/quality.md): keep every class argmax predicts,
        # and settle pixels claimed by several classes (or none) by probability. They never lost more than 0.2
        # Dice points to argmax there; the incremental-score merge gains more where probabilities are calibrated
        # and lost up to 0.7 where they were not. RankSEG.fit chooses between them on labelled data.
        if "pruning" not in extra and pruning_prob != 0.5:
            notes += (
                f"pruning_prob={pruning_prob:g} has no effect with the multiclass default pruning='argmax'; pass "
                "pruning='max_prob' to prune by the largest probability",
            )
        extra.setdefault("pruning", "argmax")
        extra.setdefault("merge", "prob")
    return Options(metric, smooth, output_mode, solver, pruning_prob, **extra), notes  # type: ignore[arg-type]


# typed: 1, 1.0 and True are equal keys, but not equally valid values (void_index=True is refused).
_parse_seen = functools.lru_cache(maxsize=64, typed=True)(_parse)


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


def check_value_range(probs: torch.Tensor) -> None:
    """Values must be finite and in [0, 1] (for solvers that do not check them in the compiled core)."""
    if probs.numel() and not bool(((probs >= 0) & (probs <= 1)).all()):
        error = ValueError("probs must contain only finite values in [0, 1]; found NaN, infinity or a value outside")
        raise with_value_range(error, probs)


def with_value_range(error: ValueError, x: torch.Tensor) -> ValueError:
    """The core's invalid-value error with the range of the values, which tells logits from a stray NaN (read
    only on this error path)."""
    message = str(error)
    if "finite values in [0, 1]" not in message:
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
