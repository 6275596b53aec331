"""Parsing and checking of RankSEG's arguments: every mistake becomes a TypeError or ValueError that names
the argument, what was given and what is expected."""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import get_args

from . import _solvers, _types

# The public spellings, from the types of the public API; "accuracy" is another name of "acc".
METRICS = {name: "acc" if name == "accuracy" else name for name in get_args(_types.Metric)}
OUTPUT_MODES = get_args(_types.OutputMode)
SOLVERS = tuple(solver.name for solver in _solvers.SOLVERS)
UNASSIGNED_POLICIES = get_args(_types.UnassignedPolicy)
PRUNING_RULES = get_args(_types.Pruning)
# How multiclass RMA and exact turn per-class masks into labels: "gain" (the compiled merge: a pixel claimed by
# several classes, or by none, goes to the largest incremental score) or "prob" (to the most probable class
# among those claiming it, and an unclaimed pixel to its argmax class).
MERGE_RULES = get_args(_types.Merge)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1


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


ARGUMENTS = ("metric", "smooth", "output_mode", "solver", "pruning_prob", "num_threads")
# Every solver parameter of some solver and mode, for suggestions when a name is misspelt.
ALL_SOLVER_PARAMS = tuple(dict.fromkeys(p for s in _solvers.SOLVERS for r in s.routes.values() for p in r.params))


def _closest(name: object, names) -> str:
    """ "; did you mean 'x'?" for a near miss of one of `names`, else nothing."""
    if name in names:  # a parameter of another solver or mode: the allowed list says enough
        return ""
    match = difflib.get_close_matches(str(name), names, n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def check_safe_screening(value) -> bool | str:
    """True, False or "auto" (any case): rankseg 0.0.x's choice of an inexact fast path. This RMA is always exact,
    so it is accepted, checked and changes nothing."""
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
    metric = METRICS[_choice("metric", metric, tuple(METRICS))]
    output_mode = _choice("output_mode", output_mode, OUTPUT_MODES)
    solver = _choice("solver", solver, SOLVERS)
    smooth = _real("smooth", smooth, 0.0, math.inf, open_high=True)
    pruning_prob = _real("pruning_prob", pruning_prob, 0.0, 1.0)

    supported = _solvers.supported(metric, output_mode)
    if solver not in supported:
        raise ValueError(
            f"solver={solver!r} does not support metric={metric!r} with output_mode={output_mode!r}; "
            f"supported solvers: {_quoted(supported)}"
        )

    route = _solvers.BY_NAME[solver].routes[output_mode]
    allowed = route.params
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

    defaults = route.defaults
    if "pruning" in defaults and "pruning" not in extra and pruning_prob != 0.5:
        notes += (
            f"pruning_prob={pruning_prob:g} has no effect with the multiclass default pruning="
            f"{defaults['pruning']!r}; pass pruning='max_prob' to prune by the largest probability",
        )
    extra = {**defaults, **extra}
    return Options(metric, smooth, output_mode, solver, pruning_prob, **extra), notes  # type: ignore[arg-type]


# typed: 1, 1.0 and True are equal keys, but not equally valid values (void_index=True is refused).
_parse_seen = functools.lru_cache(maxsize=64, typed=True)(_parse)
