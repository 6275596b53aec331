"""rankseg.calibration against float64 references written here: the NLL minimised over a grid, synthetic
miscalibrations with known parameters, scipy's isotonic regression, bin frequencies and ECE counted directly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from devices import DEVICES
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import isotonic_regression

from rankseg import calibration as cal

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- synthetic data: a known true model, labels sampled from it ----------------------------------------------


def sample_labels(p_true: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Label maps (B, *spatial) drawn pixel by pixel from p_true (B, C, *spatial)."""
    u = torch.rand(p_true.shape[:1] + p_true.shape[2:], generator=g, dtype=torch.float64).unsqueeze(1)
    return (p_true.double().cumsum(1) < u).sum(1).clamp(max=p_true.shape[1] - 1)


def sample_masks(p_true: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return torch.rand(p_true.shape, generator=g, dtype=torch.float64) < p_true


def true_logits(seed: int, shape=(30, 4, 32, 32), std=1.2, bound=2.6) -> tuple[torch.Tensor, torch.Generator]:
    """Per-pixel random logits. 30 x 32 x 32 = 30720 pixels: under the calibrators' per-batch sample of
    max_pixels / 8 = 31250, so every pixel is used and the fit minimises the NLL of exactly this data."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * std).clamp(-bound, bound), g


def nll_multiclass(probs: torch.Tensor, labels: torch.Tensor, scale, bias) -> float:
    """float64 mean NLL of softmax(scale * log probs + bias)."""
    c = probs.shape[1]
    view = (1, c) + (1,) * (probs.dim() - 2)
    z = probs.double().log() * torch.as_tensor(scale, dtype=torch.float64).reshape(-1).expand(c).reshape(view)
    z = z + torch.as_tensor(bias, dtype=torch.float64).reshape(-1).expand(c).reshape(view)
    logp = z.log_softmax(1)
    return float(-logp.gather(1, labels.unsqueeze(1).long()).mean())


def nll_multilabel(probs: torch.Tensor, masks: torch.Tensor, scale, bias) -> float:
    """float64 mean binary NLL of sigmoid(scale * logit probs + bias)."""
    c = probs.shape[1]
    view = (1, c) + (1,) * (probs.dim() - 2)
    p = probs.double()
    z = (p.log() - (-p).log1p()) * torch.as_tensor(scale, dtype=torch.float64).reshape(-1).expand(c).reshape(view)
    z = z + torch.as_tensor(bias, dtype=torch.float64).reshape(-1).expand(c).reshape(view)
    t = masks.double()
    return float(-(t * torch.nn.functional.logsigmoid(z) + (1 - t) * torch.nn.functional.logsigmoid(-z)).mean())


def multiclass_data(seed: int, k: float):
    """Network probs softmax(k z) of a true model softmax(z): the temperature that calibrates them is k."""
    z, g = true_logits(seed)
    labels = sample_labels(z.softmax(1), g)
    probs = (z * k).softmax(1).float()
    assert probs.min() > 2e-7 and probs.max() < 1 - 2e-7  # the calibrators clamp at 1e-7: none is clamped here
    return probs, labels


def multilabel_data(seed: int, k: float):
    z, g = true_logits(seed, std=2.0, bound=5.0)
    masks = sample_masks(z.sigmoid(), g)
    probs = (z * k).sigmoid().float()
    assert probs.min() > 2e-7 and probs.max() < 1 - 2e-7
    return probs, masks


# ---- Temperature ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0.4, 2.5])
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_temperature_minimises_nll_and_recovers_k(mode, k):
    probs, labels = (multiclass_data if mode == "multiclass" else multilabel_data)(3, k)
    t = cal.Temperature(mode).fit(probs, labels)
    nll = nll_multiclass if mode == "multiclass" else nll_multilabel
    fitted = nll(probs, labels, 1 / t.temperature, 0.0)
    # a coarse grid over the range, and a fine one around the fit
    grid = [*np.linspace(0.5 * k, 2 * k, 61), *(t.temperature * (1 + 0.002 * np.arange(-10, 11)))]
    best_on_grid = min(nll(probs, labels, 1 / temp, 0.0) for temp in grid)
    assert fitted <= best_on_grid * (1 + 1e-6)
    assert abs(t.temperature - k) < 0.1 * k
    assert float(t.scale) == pytest.approx(1 / t.temperature)
    assert float(t.bias) == 0.0  # a temperature has no bias


def test_temperature_apply_is_softmax_of_scaled_log_probs():
    probs, labels = multiclass_data(5, 2.0)
    t = cal.Temperature().fit(probs, labels)
    ref = (probs.double().log() / t.temperature).softmax(1)
    torch.testing.assert_close(t(probs).double(), ref, rtol=1e-5, atol=1e-6)
    probs, masks = multilabel_data(5, 2.0)
    t = cal.Temperature("multilabel").fit(probs, masks)
    p = probs.double()
    ref = ((p.log() - (-p).log1p()) / t.temperature).sigmoid()
    torch.testing.assert_close(t(probs).double(), ref, rtol=1e-5, atol=1e-6)


# ---- VectorScaling --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_vector_scaling_nll_at_most_temperatures(mode):
    probs, labels = (multiclass_data if mode == "multiclass" else multilabel_data)(7, 2.5)
    nll = nll_multiclass if mode == "multiclass" else nll_multilabel
    t = cal.Temperature(mode).fit(probs, labels)
    v = cal.VectorScaling(mode).fit(probs, labels)
    assert v.scale.shape == (probs.shape[1],) and v.bias.shape == (probs.shape[1],)
    after_t = nll(probs, labels, t.scale, 0.0)
    after_v = nll(probs, labels, v.scale, v.bias)
    assert after_v <= after_t * (1 + 1e-6)
    assert after_t < nll(probs, labels, 1.0, 0.0)  # and both improve on the miscalibrated input


def test_vector_scaling_recovers_scale_and_bias_multiclass():
    """True probabilities softmax(a * log p + b) of the network's p: the fit finds a, and b up to the constant
    softmax cannot see."""
    g = torch.Generator().manual_seed(11)
    shape = (30, 4, 32, 32)
    probs = (torch.randn(shape, generator=g, dtype=torch.float64) * 1.5).softmax(1)
    a = torch.tensor([0.6, 1.0, 1.5, 2.0], dtype=torch.float64)
    b = torch.tensor([0.5, -0.5, 0.0, 0.3], dtype=torch.float64)
    labels = sample_labels((probs.log() * a.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)).softmax(1), g)
    v = cal.VectorScaling().fit(probs.float(), labels)
    torch.testing.assert_close(v.scale.double(), a, rtol=0.1, atol=0.0)
    torch.testing.assert_close((v.bias - v.bias.mean()).double(), b - b.mean(), rtol=0.0, atol=0.15)


def test_vector_scaling_recovers_scale_and_bias_multilabel():
    z, g = true_logits(12, std=2.0, bound=5.0)
    a = torch.tensor([0.6, 1.0, 1.5, 2.0], dtype=torch.float64)
    b = torch.tensor([0.5, -0.5, 0.0, 0.3], dtype=torch.float64)
    masks = sample_masks((z * a.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)).sigmoid(), g)
    v = cal.VectorScaling("multilabel").fit(z.sigmoid().float(), masks)
    torch.testing.assert_close(v.scale.double(), a, rtol=0.1, atol=0.0)
    torch.testing.assert_close(v.bias.double(), b, rtol=0.0, atol=0.15)


# ---- isotonic -------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-10, 10, allow_nan=False), st.floats(0.01, 100, allow_nan=False)), min_size=1, max_size=40
    )
)
def test_isotonic_equals_scipy(pairs):
    values = torch.tensor([v for v, _ in pairs], dtype=torch.float64)
    weights = torch.tensor([w for _, w in pairs], dtype=torch.float64)
    got = cal.isotonic(values, weights)
    ref = isotonic_regression(values.numpy(), weights=weights.numpy(), increasing=True).x
    assert got.shape == values.shape
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-9, atol=1e-9)
    assert bool((got[1:] >= got[:-1]).all())


def test_isotonic_keeps_a_sorted_sequence_and_pools_a_reversed_one():
    x = torch.tensor([0.1, 0.2, 0.2, 0.7])
    assert torch.equal(cal.isotonic(x, torch.ones(4)), x.double())
    got = cal.isotonic(torch.tensor([3.0, 1.0]), torch.tensor([1.0, 3.0]))
    assert torch.equal(got, torch.tensor([1.5, 1.5], dtype=torch.float64))  # (3 + 3) / 4 for both


# ---- Binning --------------------------------------------------------------------------------------------------


def overconfident_multilabel(seed: int, n=20, c=3, side=16, k=2.5):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, side, side, generator=g, dtype=torch.float64) * 1.5
    return (z * k).sigmoid().float(), sample_masks(z.sigmoid(), g)


def bin_reference(probs: torch.Tensor, targets: torch.Tensor, bins: int):
    """Per class, over the filled bins only: (bin indices, mean probability, isotonic frequency by scipy)."""
    c = probs.shape[1]
    x = probs.double().movedim(1, -1).reshape(-1, c)
    t = targets.double().movedim(1, -1).reshape(-1, c)
    out = []
    for k in range(c):
        index = (x[:, k] * bins).floor().long().clamp(0, bins - 1)
        filled, means, freqs, counts = [], [], [], []
        for i in range(bins):
            sel = index == i
            if sel.any():
                filled.append(i)
                means.append(float(x[sel, k].mean()))
                freqs.append(float(t[sel, k].mean()))
                counts.append(float(sel.sum()))
        iso = isotonic_regression(np.array(freqs), weights=np.array(counts), increasing=True).x
        out.append((filled, means, iso))
    return out


@pytest.mark.parametrize("bins", [5, 15, 50])
def test_binning_at_bin_means_returns_isotonic_frequencies(bins):
    probs, masks = overconfident_multilabel(21)
    b = cal.Binning("multilabel", bins=bins).fit(probs, masks)
    for k, (filled, means, iso) in enumerate(bin_reference(probs, masks, bins)):
        x = torch.full((len(means), probs.shape[1], 1), 0.5)
        x[:, k, 0] = torch.tensor(means, dtype=torch.float32)
        got = b(x)[:, k, 0].double().numpy()
        np.testing.assert_allclose(got, iso, rtol=0, atol=1e-5, err_msg=f"class {k}, bins {filled}")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), bins=st.integers(2, 60), k=st.sampled_from([0.3, 1.0, 3.0]))
def test_binning_is_monotone_in_the_probability(seed, bins, k):
    probs, masks = overconfident_multilabel(seed, n=4, k=k)
    b = cal.Binning("multilabel", bins=bins).fit(probs, masks)
    grid = torch.linspace(0, 1, 2001)
    x = grid.view(-1, 1, 1).expand(-1, probs.shape[1], 1).contiguous()  # every class sees the same grid
    out = b(x)[..., 0]
    assert out.shape == x.shape[:2]
    assert bool((out[1:] >= out[:-1]).all()), "not non-decreasing along the probability"
    assert bool(((out >= 0) & (out <= 1)).all())


def test_binning_multiclass_sums_to_one():
    z, g = true_logits(31, shape=(20, 4, 16, 16))
    labels = sample_labels(z.softmax(1), g)
    probs = (z * 2.5).softmax(1).float()
    b = cal.Binning(bins=20).fit(probs, labels)
    out = b(probs)
    assert out.dtype == torch.float32 and out.shape == probs.shape
    torch.testing.assert_close(out.sum(1), torch.ones(out.shape[:1] + out.shape[2:]), rtol=0, atol=1e-5)
    assert bool((out >= 0).all())


def ece_reference(probs, labels, mode, bins, ignore_index=None) -> dict:
    """ECE bin by bin: sum over bins of |confidence sum - hit count|, over the pixel count."""
    c = probs.shape[1]
    x = probs.double().movedim(1, -1).reshape(-1, c)
    if mode == "multiclass":
        y = labels.reshape(-1).long()
        if ignore_index is not None:
            x, y = x[y != ignore_index], y[y != ignore_index]
        t = torch.zeros_like(x)
        t[torch.arange(len(y)), y] = 1.0
    else:
        t = labels.movedim(1, -1).reshape(-1, c).double()

    def one(conf, hit):
        index = [min(math.floor(v * bins), bins - 1) for v in conf.tolist()]
        total = 0.0
        for i in range(bins):
            sel = torch.tensor([j == i for j in index], dtype=torch.bool)
            total += abs(float(conf[sel].sum()) - float(hit[sel].sum()))
        return total / max(len(conf), 1)

    out = {"class_wise": sum(one(x[:, k], t[:, k]) for k in range(c)) / c}
    if mode == "multiclass":
        conf, pred = x.max(1)
        out["top_label"] = one(conf, (pred == y).double())
    return out


@pytest.mark.parametrize("bins", [10, 15])
def test_binning_lowers_ece_on_held_out_data(bins):
    g = torch.Generator().manual_seed(41)
    z = torch.randn(40, 4, 16, 16, generator=g, dtype=torch.float64) * 1.5
    labels = sample_labels(z.softmax(1), g)
    probs = (z * 3).softmax(1).float()  # overconfident
    fit, test = slice(0, 20), slice(20, 40)
    b = cal.Binning(bins=bins).fit(probs[fit], labels[fit])
    before = ece_reference(probs[test], labels[test], "multiclass", 15)
    after = ece_reference(b(probs[test]), labels[test], "multiclass", 15)
    assert after["top_label"] < 0.5 * before["top_label"]
    assert after["class_wise"] < 0.5 * before["class_wise"]


# ---- ece ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("bins", [1, 7, 15])
def test_ece_equals_a_loop_over_bins(seed, bins):
    g = torch.Generator().manual_seed(seed)
    probs = (torch.randn(3, 4, 8, 8, generator=g) * 2).softmax(1)
    labels = torch.randint(0, 4, (3, 8, 8), generator=g)
    got = cal.ece(probs, labels, bins=bins)
    ref = ece_reference(probs, labels, "multiclass", bins)
    assert got.keys() == ref.keys()
    for key in ref:
        assert got[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), key
    # ignored pixels are left out: the same as dropping them by hand
    labels[:, :3] = 255
    got = cal.ece(probs, labels, bins=bins, ignore_index=255)
    ref = ece_reference(probs, labels, "multiclass", bins, ignore_index=255)
    for key in ref:
        assert got[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), key
    # multilabel: class-wise only
    masks = torch.rand(probs.shape, generator=g) < probs
    got = cal.ece(probs, masks, mode="multilabel", bins=bins)
    ref = ece_reference(probs, masks, "multilabel", bins)
    assert set(got) == {"class_wise"}
    assert got["class_wise"] == pytest.approx(ref["class_wise"], rel=1e-9, abs=1e-12)


def test_ece_of_batches_equals_ece_of_tensors_and_is_zero_when_calibrated_exactly():
    g = torch.Generator().manual_seed(2)
    probs = torch.rand(4, 3, 8, 8, generator=g).softmax(1)
    labels = torch.randint(0, 3, (4, 8, 8), generator=g)
    whole = cal.ece(probs, labels)
    parts = cal.ece([(probs[:1], labels[:1]), (probs[1:], labels[1:])])
    assert whole == pytest.approx(parts, rel=1e-12)
    # one-hot probabilities of the true labels: every confidence is 1 and right
    exact = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).float()
    assert cal.ece(exact, labels) == {"class_wise": 0.0, "top_label": 0.0}


# ---- tensors vs batches, serialisation, shapes and devices ----------------------------------------------------


def as_batches(probs, labels, sizes=(7, 13, 10)):
    out, start = [], 0
    for n in sizes:
        out.append((probs[start : start + n], labels[start : start + n]))
        start += n
    assert start == len(probs)
    return out


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("kind", ["temperature", "vector", "binning"])
def test_batches_give_the_fit_of_tensors(mode, kind):
    probs, labels = (multiclass_data if mode == "multiclass" else multilabel_data)(51, 2.0)
    whole = cal.CALIBRATORS[kind](mode).fit(probs, labels)
    parts = cal.CALIBRATORS[kind](mode).fit(as_batches(probs, labels))
    if kind == "binning":
        assert torch.equal(whole.values, parts.values)
        torch.testing.assert_close(whole.knots, parts.knots, rtol=1e-6, atol=0)
    else:
        torch.testing.assert_close(whole.scale, parts.scale, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(whole.bias, parts.bias, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(whole(probs), parts(probs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("kind", ["temperature", "vector", "binning"])
def test_to_dict_json_roundtrip_gives_identical_outputs(mode, kind):
    probs, labels = (multiclass_data if mode == "multiclass" else multilabel_data)(52, 0.5)
    c = cal.CALIBRATORS[kind](mode).fit(probs[:10], labels[:10])
    loaded = cal.from_dict(json.loads(json.dumps(c.to_dict())))
    assert type(loaded) is type(c) and loaded.mode == mode
    assert torch.equal(loaded(probs), c(probs))
    with pytest.raises(ValueError, match="kind"):
        cal.from_dict({"kind": "platt"})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("kind", ["temperature", "vector", "binning"])
def test_apply_keeps_shape_device_and_input(mode, kind, device):
    probs, labels = (multiclass_data if mode == "multiclass" else multilabel_data)(53, 2.0)
    c = cal.CALIBRATORS[kind](mode).fit(probs[:8].to(device), labels[:8].to(device))
    # 3-D spatial, non-contiguous (classes last in memory), float16
    x = probs[:4].reshape(2, 2, 4, 32, 32).movedim(2, 1)[..., ::2]  # (2, C, 2, 32, 16), each pixel an original one
    x = x.to(device=device, dtype=torch.float16)
    assert not x.is_contiguous()
    before = x.clone()
    out = c(x)
    assert out.shape == x.shape and out.device == x.device and out.dtype == torch.float32
    assert torch.equal(x, before)
    ref = c(x.float().contiguous())
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    # 2-D: the same values, pixel by pixel, whatever the batch split
    flat = probs[8:12].to(device)
    torch.testing.assert_close(c(flat)[1:3], c(flat[1:3]), rtol=0, atol=1e-6)


def test_fit_does_not_modify_its_inputs():
    probs, labels = multiclass_data(54, 2.0)
    p0, y0 = probs.clone(), labels.clone()
    for kind in cal.CALIBRATORS:
        cal.CALIBRATORS[kind]().fit(probs, labels)
        cal.ece(probs, labels)
    assert torch.equal(probs, p0) and torch.equal(labels, y0)


# ---- errors ---------------------------------------------------------------------------------------------------

KINDS = ["temperature", "vector", "binning"]


@pytest.mark.parametrize("kind", KINDS)
def test_logits_instead_of_probs(kind):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=g) * 3
    labels = torch.randint(0, 3, (2, 4, 4), generator=g)
    lo, hi = float(logits.min()), float(logits.max())
    for mode, y in (("multiclass", labels), ("multilabel", logits > 0)):
        with pytest.raises(ValueError, match="softmax") as info:
            cal.CALIBRATORS[kind](mode).fit(logits, y)
        assert "sigmoid" in str(info.value)
        assert f"{lo:g}" in str(info.value) and f"{hi:g}" in str(info.value)
    with pytest.raises(ValueError, match="softmax"):
        cal.ece(logits, labels)


@pytest.mark.parametrize("kind", KINDS)
def test_labels_out_of_range_name_the_value(kind):
    probs = torch.full((2, 3, 4, 4), 1 / 3)
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    labels[1, 2, 3] = 7
    with pytest.raises(ValueError, match=r"found 7"):
        cal.CALIBRATORS[kind]().fit(probs, labels)
    labels[1, 2, 3] = -2
    with pytest.raises(ValueError, match=r"found -2"):
        cal.CALIBRATORS[kind]().fit(probs, labels)
    labels[1, 2, 3] = 255
    with pytest.raises(ValueError, match=r"found 255.*ignore_index"):
        cal.CALIBRATORS[kind]().fit(probs, labels)
    cal.CALIBRATORS[kind]().fit(probs, labels, ignore_index=255)  # fine once it is ignored
    with pytest.raises(ValueError, match=r"found 255"):
        cal.ece(probs, labels)


@pytest.mark.parametrize("kind", KINDS)
def test_labels_of_wrong_dtype_or_shape(kind):
    probs = torch.full((2, 3, 4, 4), 1 / 3)
    fit = cal.CALIBRATORS[kind]().fit
    fit_ml = cal.CALIBRATORS[kind]("multilabel").fit
    with pytest.raises(TypeError, match="integer label maps"):
        fit(probs, torch.zeros(2, 4, 4))  # float labels
    with pytest.raises(TypeError, match="integer label maps"):
        fit(probs, torch.zeros(2, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="shape"):
        fit(probs, torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        fit(probs, torch.zeros(2, 3, 4, 4, dtype=torch.long))  # one-hot-like masks given as label maps
    with pytest.raises(TypeError, match="bool masks"):
        fit_ml(probs, torch.zeros(2, 3, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        fit_ml(probs, torch.zeros(2, 3, 4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="ignore_index"):
        fit_ml(probs, torch.zeros(2, 3, 4, 4, dtype=torch.bool), ignore_index=255)
    with pytest.raises(TypeError, match="probs"):
        fit(probs.long(), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="probs"):
        fit(probs[:, :, 0, 0], torch.zeros(2, dtype=torch.long))  # no spatial dim
    with pytest.raises(TypeError, match="labels"):
        fit(probs)  # a tensor without labels
    with pytest.raises(TypeError, match="labels"):
        fit(probs, [0, 1])


@pytest.mark.parametrize("kind", KINDS)
def test_apply_before_fit_and_class_count_mismatch(kind):
    c = cal.CALIBRATORS[kind]()
    probs = torch.full((2, 3, 4, 4), 1 / 3)
    with pytest.raises(RuntimeError, match="fit"):
        c(probs)
    with pytest.raises(RuntimeError, match="fit"):
        c.to_dict()
    c.fit(probs, torch.randint(0, 3, (2, 4, 4)))
    other = torch.rand(2, 4, 4, 4).softmax(1)
    if kind == "temperature":  # one parameter for every class: it applies to any number of classes
        ref = (other.double().log() / c.temperature).softmax(1)
        torch.testing.assert_close(c(other).double(), ref, rtol=1e-5, atol=1e-6)
    else:
        with pytest.raises(ValueError, match="fitted on 3 classes, probs has 4"):
            c(other)
    with pytest.raises(ValueError, match="labelled pixel"):
        cal.CALIBRATORS[kind]().fit([])
    with pytest.raises(ValueError, match="labelled pixel"):
        cal.CALIBRATORS[kind]().fit(probs, torch.full((2, 4, 4), 255), ignore_index=255)


def test_binning_rejects_batches_with_different_class_counts():
    b3 = (torch.full((1, 3, 4, 4), 1 / 3), torch.zeros(1, 4, 4, dtype=torch.long))
    b4 = (torch.full((1, 4, 4, 4), 1 / 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="same number of classes"):
        cal.Binning().fit([b3, b4])


@pytest.mark.parametrize("kind", ["temperature", "vector"])
def test_logit_calibrators_reject_batches_with_different_class_counts(kind):
    b3 = (torch.full((1, 3, 4, 4), 1 / 3), torch.zeros(1, 4, 4, dtype=torch.long))
    b4 = (torch.full((1, 4, 4, 4), 1 / 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="classes"):
        cal.CALIBRATORS[kind]().fit([b3, b4])


def test_ece_rejects_batches_with_different_class_counts():
    b3 = (torch.full((1, 3, 4, 4), 1 / 3), torch.zeros(1, 4, 4, dtype=torch.long))
    b4 = (torch.full((1, 4, 4, 4), 1 / 4), torch.zeros(1, 4, 4, dtype=torch.long))
    for order in ([b4, b3], [b3, b4]):
        with pytest.raises(ValueError, match="classes"):
            cal.ece(order)


def test_bad_mode_and_bins():
    for kind in KINDS:
        with pytest.raises(ValueError, match="mode"):
            cal.CALIBRATORS[kind]("softmax")
    with pytest.raises(ValueError, match="mode"):
        cal.ece(torch.full((1, 2, 2, 2), 0.5), torch.zeros(1, 2, 2, dtype=torch.long), mode="binary")
    for bins in (1, 0, 10_001, 2.5, True, "50"):
        with pytest.raises(ValueError, match="bins"):
            cal.Binning(bins=bins)
