"""The public surface: argument parsing, error paths (type, and a message naming the argument), outputs."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import rankseg
from rankseg import _C, RankSEG

PROBS = torch.softmax(torch.randn(2, 3, 8, 9, generator=torch.Generator().manual_seed(0)), dim=1)


def test_public_names():
    assert rankseg.functional.rankseg is rankseg.rankseg
    assert isinstance(rankseg.__version__, str)
    assert _C.__file__.endswith((".so", ".pyd"))  # a native extension, not Python


def test_functional_equals_class():
    ours = RankSEG(metric="iou", smooth=0.5, pruning_prob=0.2)
    assert torch.equal(ours(PROBS), rankseg.rankseg(PROBS, metric="iou", smooth=0.5, pruning_prob=0.2))
    assert torch.equal(ours.predict(PROBS), ours(PROBS))


def test_strings_are_case_insensitive_and_stripped():
    a = RankSEG(metric=" DICE ", output_mode="MultiLabel", solver="rma ")
    b = RankSEG(metric="dice", output_mode="multilabel", solver="RMA")
    assert a.options == b.options
    assert RankSEG(metric="Accuracy", solver="ARGMAX").options.metric == "acc"


def test_repr_shows_settings():
    text = repr(RankSEG(metric="iou", unassigned_policy="void", void_index=-1))
    assert "metric='iou'" in text and "void_index=-1" in text


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_accuracy_solvers(mode):
    if mode == "multilabel":
        with pytest.warns(UserWarning, match="one-hot"):
            out = rankseg.rankseg(PROBS, metric="acc", output_mode=mode, solver="argmax")
        assert torch.equal(out, torch.nn.functional.one_hot(PROBS.argmax(1), 3).movedim(-1, 1).bool())
        assert torch.equal(rankseg.rankseg(PROBS, metric="acc", output_mode=mode, solver="TR"), PROBS > 0.5)
    else:
        assert torch.equal(rankseg.rankseg(PROBS, metric="acc", solver="argmax"), PROBS.argmax(1))


def test_no_gradient_is_recorded():
    probs = PROBS.clone().requires_grad_(True)
    out = rankseg.rankseg(probs)
    assert not out.requires_grad and probs.grad is None


def test_inference_mode():
    with torch.inference_mode():
        probs = PROBS.clone()
        assert torch.equal(rankseg.rankseg(probs), rankseg.rankseg(PROBS))


def raises(exc, *names):
    """pytest.raises whose message must mention every name."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(n)})" for n in names))


@pytest.mark.parametrize(
    "probs,exc,names",
    [
        (PROBS.numpy().astype(np.int64), TypeError, ["probs", "int64"]),
        ([[[0.5]]], TypeError, ["probs"]),
        (PROBS.to(torch.int64), TypeError, ["probs", "int64"]),
        (PROBS.to(torch.complex64), TypeError, ["probs", "complex64"]),
        (torch.rand(3, 4), ValueError, ["probs", "(3, 4)"]),
        (torch.rand(2, 0, 4), ValueError, ["probs", "C >= 1"]),
        (torch.rand(2, 3, 0, 4), ValueError, ["probs", "spatial"]),
    ],
)
def test_probs_type_and_shape_errors(probs, exc, names):
    with raises(exc, *names):
        rankseg.rankseg(probs, output_mode="multilabel")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -0.1, 1.5])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"output_mode": "multilabel"},
        {"metric": "iou"},
        {"metric": "acc", "solver": "argmax"},
        {"metric": "acc", "solver": "TR", "output_mode": "multilabel"},
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_probs_value_errors(bad, kwargs, dtype):
    probs = PROBS.clone().to(dtype)
    probs[1, 2, 3, 4] = bad
    before = probs.clone()
    with raises(ValueError, "probs", "[0, 1]"):
        rankseg.rankseg(probs, **kwargs)
    assert torch.equal(probs.nan_to_num(), before.nan_to_num())


@pytest.mark.parametrize(
    "kwargs,exc,names",
    [
        ({"metric": 3}, TypeError, ["metric", "int"]),
        ({"metric": "f1"}, ValueError, ["metric", "'f1'", "'dice'"]),
        ({"output_mode": None}, TypeError, ["output_mode"]),
        ({"output_mode": "binary"}, ValueError, ["output_mode", "'multilabel'"]),
        ({"solver": ["RMA"]}, TypeError, ["solver"]),
        ({"solver": "sort"}, ValueError, ["solver", "'RMA'"]),
        ({"smooth": -1.0}, ValueError, ["smooth", "-1.0"]),
        ({"smooth": math.nan}, ValueError, ["smooth"]),
        ({"smooth": math.inf}, ValueError, ["smooth"]),
        ({"smooth": "1"}, TypeError, ["smooth", "str"]),
        ({"smooth": True}, TypeError, ["smooth", "bool"]),
        ({"pruning_prob": 1.5}, ValueError, ["pruning_prob", "[0, 1]"]),
        ({"pruning_prob": -0.1}, ValueError, ["pruning_prob"]),
        ({"pruning_prob": math.nan}, ValueError, ["pruning_prob"]),
        ({"pruning_prob": torch.tensor(0.5)}, TypeError, ["pruning_prob", "Tensor"]),
        ({"metric": "dice", "solver": "TR"}, ValueError, ["'TR'", "supported solvers", "'RMA'"]),
        ({"metric": "iou", "output_mode": "multilabel", "solver": "BA"}, ValueError, ["'BA'", "'RMA'"]),
        ({"metric": "acc"}, ValueError, ["'RMA'", "'argmax'"]),
        ({"metric": "acc", "solver": "TR"}, ValueError, ["'TR'", "multiclass", "'argmax'"]),
        ({"solver": "BA"}, ValueError, ["'BA'", "multiclass", "'RMA'"]),
        ({"foo": 1}, TypeError, ["'foo'", "'unassigned_policy'", "'void_index'"]),
        (
            {"output_mode": "multilabel", "unassigned_policy": "void"},
            TypeError,
            ["'unassigned_policy'", "'safe_screening'"],
        ),
        ({"metric": "acc", "solver": "argmax", "eps": 1e-3}, TypeError, ["'eps'", "none"]),
        ({"safe_screening": "sometimes"}, TypeError, ["safe_screening", "'auto'"]),
        ({"unassigned_policy": "drop"}, ValueError, ["unassigned_policy", "'void'"]),
        ({"unassigned_policy": 0}, TypeError, ["unassigned_policy"]),
        ({"void_index": 3}, ValueError, ["void_index", "unassigned_policy='void'"]),
        ({"unassigned_policy": "void", "void_index": 2.0}, TypeError, ["void_index", "float"]),
        ({"unassigned_policy": "void", "void_index": True}, TypeError, ["void_index", "bool"]),
        ({"unassigned_policy": "void", "void_index": 2**63}, ValueError, ["void_index", "int64"]),
        ({"output_mode": "multilabel", "solver": "BA", "eps": 0.0}, ValueError, ["eps", "(0, 1)"]),
        ({"output_mode": "multilabel", "solver": "BA", "eps": "x"}, TypeError, ["eps"]),
        ({"output_mode": "multilabel", "solver": "TRNA", "void_index": 1}, TypeError, ["'void_index'", "'eps'"]),
        ({"metric": "iou", "solver": "exact"}, ValueError, ["'exact'", "'RMA'"]),
        ({"solver": "exact", "eps": 0.1}, TypeError, ["'eps'", "'unassigned_policy'"]),
    ],
)
def test_argument_errors(kwargs, exc, names):
    with raises(exc, *names):
        RankSEG(**kwargs)


@pytest.mark.parametrize("solver", ["BA", "TRNA", "BA+TRNA", "exact"])
def test_sorting_solvers_are_case_insensitive_and_return_masks(solver):
    masks = RankSEG(output_mode="multilabel", solver=f" {solver.lower()} ")(PROBS)
    assert masks.shape == PROBS.shape and masks.dtype == torch.bool


def test_exact_multiclass_takes_the_merge_options():
    labels = RankSEG(solver="exact", unassigned_policy="void", void_index=255)(PROBS)
    assert labels.shape == (2, 8, 9) and labels.dtype == torch.int64


def test_multiclass_needs_two_classes():
    with raises(ValueError, "output_mode='multiclass'", "C = 1", "multilabel"):
        rankseg.rankseg(torch.rand(2, 1, 5, 5))


@pytest.mark.parametrize("void_index", [0, 2])
def test_void_index_inside_classes(void_index):
    with raises(ValueError, "void_index", "[0, 3)"):
        rankseg.rankseg(PROBS, unassigned_policy="void", void_index=void_index)


def test_numpy_scalars_are_accepted():
    a = rankseg.rankseg(PROBS, smooth=np.float32(0.5), pruning_prob=np.float64(0.25))
    assert torch.equal(a, rankseg.rankseg(PROBS, smooth=0.5, pruning_prob=0.25))


DEVICE_TYPES = {"cpu": _C.DeviceType.cpu, "cuda": _C.DeviceType.cuda}


def describe(t, **override):
    """A reference to t for rankseg._C, with fields overridden: dtype by its code, device by its name (a name of
    no device type the core knows becomes an unknown code)."""
    d = {
        "ptr": t.data_ptr(),
        "dtype": 0,
        "device": "cpu",
        "index": 0,
        "sizes": tuple(t.shape),
        "strides": tuple(t.stride()),
    }
    d.update(override)
    d["dtype"] = _C.ScalarType(d["dtype"])
    d["device"] = DEVICE_TYPES.get(d["device"], _C.DeviceType(len(DEVICE_TYPES)))
    return tuple(d.values())


def multiclass(probs, out, metric=0, smooth=0.0, pruning_prob=0.5, unassigned=0, void_index=255, num_threads=1):
    """rankseg._C.rma_multiclass with codes given as integers (an unknown one included)."""
    pruning, merge = _C.Pruning.max_prob, _C.Merge.gain
    metric, unassigned = _C.Metric(metric), _C.Unassigned(unassigned)
    _C.rma_multiclass(probs, out, metric, smooth, pruning_prob, pruning, merge, unassigned, void_index, num_threads)


@pytest.mark.parametrize(
    "probs_override,out_override,message",
    [
        ({"device": "cuda"}, {}, "same device"),
        ({"device": "mps"}, {"device": "mps"}, "CPU or CUDA"),
        ({"sizes": (2, 3, 8, 9), "strides": (216, 72, 9, 1)}, {}, "3-D"),
        ({"dtype": 9}, {}, "float16"),
        ({"strides": (216, 72, -1)}, {}, "non-negative"),
        ({"sizes": (2, 0, 72), "strides": (0, 72, 1)}, {}, "C >= 1"),
        ({}, {"dtype": 5}, "dtype"),
        ({}, {"sizes": (2, 3, 71)}, "shape"),
        ({}, {"strides": (1, 2, 6)}, "contiguous"),
        ({}, {"ptr": 0}, "null"),
    ],
)
def test_compiled_core_checks_what_it_is_given(probs_override, out_override, message):
    x = PROBS.reshape(2, 3, 72).contiguous()
    out = torch.empty(2, 3, 72, dtype=torch.bool)
    out_d = describe(out, **{"dtype": 4, **out_override})
    with pytest.raises(ValueError, match=message):
        _C.rma_multilabel(describe(x, **probs_override), out_d, _C.Metric.dice, 0.0, 0.5, 1)


def test_compiled_core_checks_options():
    x = PROBS.reshape(2, 3, 72).contiguous()
    out = torch.empty(2, 72, dtype=torch.int64)
    args = (describe(x), describe(out, dtype=5))
    with pytest.raises(ValueError, match="smooth"):
        multiclass(*args, smooth=-1.0)
    with pytest.raises(ValueError, match="pruning_prob"):
        multiclass(*args, pruning_prob=2.0)
    with pytest.raises(ValueError, match="void_index"):
        multiclass(*args, unassigned=1, void_index=1)
    with pytest.raises(ValueError, match="metric"):
        multiclass(*args, metric=7)
    with pytest.raises(ValueError, match="num_threads"):
        multiclass(*args, num_threads=0)
    many = describe(x, sizes=(1, 2**31, 1), strides=(0, 0, 0))  # one value seen as 2^31 classes
    with pytest.raises(ValueError, match=r"C < 2\^31"):
        multiclass(many, describe(torch.empty(1, 1, dtype=torch.int64), dtype=5))


def test_compiled_core_checks_the_cuda_call_before_launching():
    """A CUDA call without enough workspace (or a build without CUDA kernels) is refused before any launch;
    no GPU is touched, so this runs anywhere."""
    x = PROBS.reshape(2, 3, 72).contiguous()
    out = torch.empty(2, 3, 72, dtype=torch.bool)
    args = (describe(x, device="cuda"), describe(out, dtype=4, device="cuda"), _C.Metric.dice, 0.0, 0.5, 1)
    message = "workspace needs" if _C.cuda_compiled() else "no CUDA kernels"
    with pytest.raises(ValueError, match=message):
        _C.rma_multilabel(*args)
    strided = describe(x, device="cuda", strides=(216, 1, 3))
    with pytest.raises(ValueError, match="adjacent pixels" if _C.cuda_compiled() else "no CUDA kernels"):
        _C.rma_multilabel(strided, *args[1:])


def test_build_info_describes_the_build():
    info = rankseg.build_info()
    assert info["version"] == rankseg.__version__
    assert info["cuda_compiled"] == _C.cuda_compiled()
    assert bool(info["cuda_archs"]) == info["cuda_compiled"]
    assert (info["cuda_runtime"] is None) != info["cuda_compiled"]
    assert info["cuda_devices"] >= 0 and info["openmp_threads"] >= 1
    assert info["torch"] == torch.__version__
    usable = info["cuda_compiled"] and info["cuda_devices"] > 0 and torch.cuda.is_available()
    assert rankseg.cuda_available() == usable == info["cuda_available"]


def test_check_values_must_be_a_bool():
    with raises(TypeError, "check_values", "bool"):
        rankseg.rankseg(PROBS, check_values=1)


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_cpu_kernels_check_values_always(mode):
    """Unchecked is a GPU option: the CPU kernels see every value anyway and still refuse NaN."""
    bad = PROBS.clone()
    bad[0, 1, 2, 3] = float("nan")
    with raises(ValueError, "image 0, class 1"):
        rankseg.rankseg(bad, output_mode=mode, check_values=False)


def test_unchecked_argmax_skips_the_value_check():
    bad = PROBS.clone()
    bad[0, 0, 0, 0] = 2.0
    with raises(ValueError, "finite values in [0, 1]"):
        rankseg.rankseg(bad, metric="acc", solver="argmax")
    assert rankseg.rankseg(bad, metric="acc", solver="argmax", check_values=False)[0, 0, 0] == 0


def test_unknown_parameter_lists_everything_accepted_and_the_closest():
    with pytest.raises(TypeError) as info:
        RankSEG(metrc="dice")
    message = str(info.value)
    for name in ("'metric'", "'smooth'", "'pruning_prob'", "'unassigned_policy'", "'merge'"):
        assert name in message
    assert message.endswith("did you mean 'metric'?")
    with pytest.raises(TypeError) as info:  # a parameter of another solver: named as not allowed, no guess
        RankSEG(eps=0.1)
    assert "'eps'" in str(info.value) and "did you mean" not in str(info.value)


@pytest.mark.parametrize("kwargs", [{}, {"output_mode": "multilabel"}, {"metric": "acc", "solver": "argmax"}])
def test_logits_are_named_with_their_range(kwargs):
    logits = torch.linspace(-3.5, 2.25, 2 * 3 * 16).view(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"span \[-3\.5, 2\.25\].*apply softmax \(multiclass\) or sigmoid"):
        rankseg.rankseg(logits, **kwargs)
    nan = PROBS.clone()
    nan[1, 2, 3, 4] = math.nan
    with pytest.raises(ValueError, match="1 values are NaN or infinite") as info:
        rankseg.rankseg(nan, **kwargs)
    assert "logits" not in str(info.value)


@pytest.mark.parametrize("solver", ["RMA", "exact"])
def test_unassigned_policy_argmax_gives_unselected_pixels_their_argmax_class(solver):
    g = torch.Generator().manual_seed(3)
    low = torch.randn(3, 6, 5, 5, generator=g)  # smooth, weak fields: many pixels that no class selects
    probs = torch.nn.functional.interpolate(low, size=(20, 17), mode="bilinear").softmax(1)
    void = rankseg.rankseg(
        probs, solver=solver, merge="gain", pruning="max_prob", unassigned_policy="void", void_index=-7
    )
    assert (void == -7).sum() > 10
    filled = rankseg.rankseg(probs, solver=solver, merge="gain", pruning="max_prob", unassigned_policy="argmax")
    assert torch.equal(filled, torch.where(void == -7, probs.argmax(1), void))
    strided = probs.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert torch.equal(
        rankseg.rankseg(strided, solver=solver, merge="gain", pruning="max_prob", unassigned_policy="argmax"), filled
    )
    scripted = torch.jit.script(
        RankSEG(solver=solver, merge="gain", pruning="max_prob", unassigned_policy="argmax").as_module()
    )
    assert torch.equal(scripted(probs), filled)
    with pytest.raises(ValueError, match="void_index is only used"):
        RankSEG(unassigned_policy="argmax", void_index=-1)


def test_pruning_prob_without_pruning_warns_and_the_old_name_keeps_it():
    with pytest.warns(UserWarning, match="pruning_prob=0.3 has no effect"):
        RankSEG(pruning_prob=0.3)
    old = rankseg.rankseg_rma(PROBS, pruning_prob=0.3)  # 0.0.x: pruning by the largest probability, no warning
    assert torch.equal(old, RankSEG(pruning_prob=0.3, pruning="max_prob")(PROBS))


def test_a_driver_too_old_for_the_kernels_is_reported_not_crashed(monkeypatch):
    """A CUDA 13 build on a driver below 580: the runtime finds no device though torch sees one. cuda_available()
    says False with the reason, and CUDA tensors go to the host with one warning naming the driver."""
    from rankseg import _build, _ops

    monkeypatch.setattr(_C, "cuda_compiled", lambda: True)
    monkeypatch.setattr(_C, "cuda_device_count", lambda: 0)
    monkeypatch.setattr(_C, "cuda_runtime_version", lambda: 13000)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(_ops, "_warned_host_fallback", False)
    _build._kernels_unusable.cache_clear()
    try:
        assert not rankseg.cuda_available()
        reason = rankseg.build_info()["cuda_unavailable_reason"]
        assert "CUDA 13.0" in reason and "driver >= 580" in reason

        class CudaTensor:  # what the routing reads of a CUDA tensor (no GPU here to make one)
            is_cuda = True

        with pytest.warns(RuntimeWarning, match="driver >= 580") as caught:
            assert not _ops._on_gpu(CudaTensor())
            assert not _ops._on_gpu(CudaTensor())  # once per process
        assert len(caught) == 1
        assert not _ops.gpu_kernels_take(CudaTensor())
    finally:
        _build._kernels_unusable.cache_clear()


def test_without_kernels_the_reason_is_the_build(monkeypatch):
    from rankseg import _build

    monkeypatch.setattr(_C, "cuda_compiled", lambda: False)
    assert "no CUDA kernels" in _build.cuda_unavailable_reason()
