"""A fuzz run of the public API: more than 10,000 hypothesis cases (run with `pytest -m fuzz`).

Valid inputs of every shape, dtype, layout and edge value against the float64 reference; invalid inputs
against the documented exception and message; the compiled core called directly with inconsistent
descriptors; and the input never modified. The last test checks how many cases ran."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optimality import GAIN_MERGE, active_flags, assert_labels_optimal, assert_masks_optimal
from probability_inputs import DTYPES, LAYOUTS, laid_out, make_probs

import rankseg
from rankseg import _C
from rankseg._solvers import merged_by_probability

pytestmark = pytest.mark.fuzz
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
RAN: dict[str, int] = {}

EDGE_VALUES = [0.0, -0.0, 1.0, 0.5, 0.5 + 2**-11, 0.5 - 2**-12, 2**-24, 1e-30, 1 - 2**-11, 0.25]


def with_edges(probs: torch.Tensor, seed: int) -> torch.Tensor:
    """Some pixels set to exact 0, -0, 1, 1/2 and its neighbours, subnormal-scale values."""
    g = torch.Generator().manual_seed(seed)
    flat = probs.clone().reshape(-1)
    if flat.numel():
        picks = torch.randint(0, flat.numel(), (max(1, flat.numel() // 4),), generator=g)
        values = torch.tensor(EDGE_VALUES, dtype=torch.float64)[
            torch.randint(0, len(EDGE_VALUES), picks.shape, generator=g)
        ]
        flat[picks] = values.to(flat.dtype)
    return flat.reshape(probs.shape)


valid_cases = st.fixed_dictionaries(
    {
        "shape": st.tuples(
            st.integers(0, 3), st.integers(1, 5), st.lists(st.integers(1, 9), min_size=1, max_size=3)
        ).map(lambda t: (t[0], t[1], *t[2])),
        "kind": st.sampled_from(["uniform", "softmax", "ties", "sparse", "fields", "clustered"]),
        "edges": st.booleans(),
        "seed": st.integers(0, 2**31 - 1),
        "dtype": st.sampled_from(DTYPES),
        "layout": st.sampled_from(LAYOUTS),
        "metric": st.sampled_from(["dice", "iou"]),
        "smooth": st.sampled_from([0.0, 1e-6, 0.5, 1.0, 100.0]),
        "pruning_prob": st.sampled_from([0.0, 0.25, 0.5, 1.0]),
        "mode": st.sampled_from(["multilabel", "multiclass"]),
        "policy": st.sampled_from(["max_score", "void"]),
    }
)


@settings(FUZZ, max_examples=6000)
@given(valid_cases)
def test_valid_inputs_match_the_reference(case):
    RAN["valid"] = RAN.get("valid", 0) + 1
    probs = make_probs(case["kind"], case["shape"], case["seed"], torch.float64)
    if case["edges"]:
        probs = with_edges(probs, case["seed"])
    probs = laid_out(probs.to(case["dtype"]), case["layout"])
    before, strides = probs.clone(), probs.stride()
    common = {"metric": case["metric"], "smooth": case["smooth"], "pruning_prob": case["pruning_prob"]}
    masks = rankseg.rankseg(probs, output_mode="multilabel", **common)
    assert_masks_optimal(probs, masks, case["metric"], case["smooth"], case["pruning_prob"])
    if case["mode"] == "multiclass" and probs.shape[1] >= 2:
        extra = {"unassigned_policy": "void", "void_index": 255} if case["policy"] == "void" else {}
        labels = rankseg.rankseg(probs, output_mode="multiclass", **common, **extra, **GAIN_MERGE)
        assert labels.shape == (probs.shape[0], *probs.shape[2:]) and labels.dtype == torch.int64
        active = active_flags(probs, case["pruning_prob"])
        assert_labels_optimal(probs, labels, masks, active, case["metric"], case["smooth"], case["policy"], 255)
        # The merge by probability (the default merge): the core's against its composition from the masks.
        by_probability = rankseg.RankSEG(**common, **extra, merge="prob", pruning="max_prob")
        assert torch.equal(by_probability(probs), merged_by_probability(by_probability.options, probs, True))
    assert torch.equal(probs, before) and probs.stride() == strides


BAD_VALUES = [math.nan, math.inf, -math.inf, -0.25, 1.0 + 2**-7, -1e-30, 2.0]


@settings(FUZZ, max_examples=2500)
@given(
    st.tuples(st.integers(1, 3), st.integers(2, 4), st.integers(1, 6), st.integers(1, 6)),
    st.sampled_from(DTYPES),
    st.sampled_from(LAYOUTS),
    st.sampled_from(BAD_VALUES),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["multilabel", "multiclass"]),
)
def test_invalid_values_name_the_first_bad_image_and_class(shape, dtype, layout, bad, seed, mode):
    RAN["invalid values"] = RAN.get("invalid values", 0) + 1
    g = torch.Generator().manual_seed(seed)
    probs = laid_out(torch.rand(shape, generator=g).to(dtype), layout)
    b, c = int(torch.randint(0, shape[0], (1,), generator=g)), int(torch.randint(0, shape[1], (1,), generator=g))
    probs[b, c, int(torch.randint(0, shape[2], (1,), generator=g)), 0] = bad
    if torch.isfinite(torch.tensor(bad)) and 0 <= float(torch.tensor(bad).to(dtype)) <= 1:
        return  # rounded into [0, 1] by the dtype (e.g. 1 + 2^-7 in bfloat16 stays above 1, -1e-30 becomes -0)
    before = probs.clone()
    with pytest.raises(ValueError, match=rf"probs must contain only finite values in \[0, 1\]; image {b}, class {c} "):
        rankseg.rankseg(probs, output_mode=mode)
    assert torch.equal(probs.nan_to_num(), before.nan_to_num())


BAD_OPTIONS = [
    ({"metric": "f1"}, ValueError, "metric"),
    ({"metric": 1}, TypeError, "metric"),
    ({"output_mode": "binary"}, ValueError, "output_mode"),
    ({"smooth": -1.0}, ValueError, "smooth"),
    ({"smooth": math.nan}, ValueError, "smooth"),
    ({"smooth": "0"}, TypeError, "smooth"),
    ({"pruning_prob": 1.01}, ValueError, "pruning_prob"),
    ({"pruning_prob": None}, TypeError, "pruning_prob"),
    ({"unassigned_policy": "drop"}, ValueError, "unassigned_policy"),
    ({"unassigned_policy": "void", "void_index": 1.5}, TypeError, "void_index"),
    ({"solver": "sort"}, ValueError, "solver"),
    ({"check_values": 1}, TypeError, "check_values"),
]
BAD_PROBS = [
    (lambda p: p.to(torch.int32), TypeError, "probs"),
    (lambda p: p.to(torch.bool), TypeError, "probs"),
    (lambda p: p.to(torch.complex64), TypeError, "probs"),
    (lambda p: p[0, 0], ValueError, "probs"),
    (lambda p: p.float().numpy().astype(np.int32), TypeError, "probs"),
    (lambda p: p[:, :0], ValueError, "probs"),
]


@settings(FUZZ, max_examples=1000)
@given(st.integers(0, len(BAD_OPTIONS) + len(BAD_PROBS) - 1), st.integers(0, 2**31 - 1), st.sampled_from(DTYPES))
def test_invalid_arguments_raise_the_documented_error(which, seed, dtype):
    RAN["invalid arguments"] = RAN.get("invalid arguments", 0) + 1
    probs = make_probs("softmax", (2, 3, 5, 4), seed, dtype)
    before = probs.clone()
    if which < len(BAD_OPTIONS):
        kwargs, exc, name = BAD_OPTIONS[which]
        with pytest.raises(exc, match=name):
            rankseg.rankseg(probs, **kwargs)
    else:
        change, exc, name = BAD_PROBS[which - len(BAD_OPTIONS)]
        with pytest.raises(exc, match=name):
            rankseg.rankseg(change(probs))
    assert torch.equal(probs, before)


@settings(FUZZ, max_examples=1500)
@given(
    st.fixed_dictionaries(
        {
            "dtype": st.integers(-2, 8),
            "device": st.sampled_from(["cpu", "cpu", "cuda", "mps", "", "cpu:0"]),
            "index": st.integers(-2, 3),
            "ndim": st.integers(1, 4),
            "shrink": st.lists(st.integers(0, 3), min_size=3, max_size=3),  # sizes only shrink: memory-safe
            "stride_sign": st.lists(st.sampled_from([1, 1, 1, -1, 0]), min_size=3, max_size=3),
            "out_dtype": st.integers(-1, 7),
            "out_shape_delta": st.integers(-1, 1),
            "metric": st.integers(-1, 2),
            "smooth": st.sampled_from([0.0, 1.0, -1.0, math.nan, math.inf]),
            "pruning_prob": st.sampled_from([0.0, 0.5, 1.0, -0.5, 1.5, math.nan]),
            "threads": st.integers(-1, 3),
            "multiclass": st.booleans(),
            "policy": st.integers(-1, 2),
        }
    )
)
def test_compiled_core_rejects_inconsistent_calls(case):
    """Calls to rankseg._C with descriptors that do not fit together either work or raise; never crash."""
    RAN["compiled core"] = RAN.get("compiled core", 0) + 1
    x = torch.rand(2, 3, 12)
    before = x.clone()
    sizes = tuple(max(0, s - d) for s, d in zip(x.shape, case["shrink"]))[: case["ndim"]]
    strides = tuple(st_ * sign for st_, sign in zip(x.stride(), case["stride_sign"]))[: case["ndim"]]
    device = {"cpu": _C.DeviceType.cpu, "cuda": _C.DeviceType.cuda}.get(case["device"], _C.DeviceType(2))
    probs = (x.data_ptr(), _C.ScalarType(case["dtype"]), device, case["index"], sizes, strides)
    multiclass = case["multiclass"]
    out = torch.zeros(2, 12, dtype=torch.int64) if multiclass else torch.zeros(2, 3, 12, dtype=torch.bool)
    out_sizes = tuple(s + case["out_shape_delta"] if i == 0 else s for i, s in enumerate(out.shape))
    out_sizes = tuple(min(s, t) for s, t in zip(out_sizes, out.shape))  # never larger than the allocation
    out_d = (out.data_ptr(), _C.ScalarType(case["out_dtype"]), _C.DeviceType.cpu, 0, out_sizes, tuple(out.stride()))
    options = (_C.Metric(case["metric"]), case["smooth"], case["pruning_prob"])
    try:
        if multiclass:
            merge = (_C.Pruning.max_prob, _C.Merge.gain, _C.Unassigned(case["policy"]))
            _C.rma_multiclass(probs, out_d, *options, *merge, 255, case["threads"])
        else:
            _C.rma_multilabel(probs, out_d, *options, case["threads"])
    except (ValueError, TypeError, RuntimeError) as error:
        assert str(error)
    assert torch.equal(x, before)


def test_zz_more_than_ten_thousand_cases_ran():
    total = sum(RAN.values())
    print(f"fuzz cases run: {RAN} = {total}")
    if len(RAN) < 4:
        pytest.skip("run the whole file to count the cases")
    assert total >= 10_000, RAN
