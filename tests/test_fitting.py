"""RankSEG.fit and FittedRankSEG against an independent judge (rankseg.metrics per image, classes present in the
truth), and merge="prob" against a float64 reference merge of the multilabel masks."""

from __future__ import annotations

import json

import pytest
import torch
from devices import DEVICES
from hypothesis import given, settings
from hypothesis import strategies as st

from rankseg import RankSEG, metrics
from rankseg import calibration as cal
from rankseg._solvers import merged_by_probability
from rankseg.fitting import ClassReport, FittedRankSEG, load

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- data: smooth random logit fields, labels sampled from a known model --------------------------------------


def logit_fields(n, c, side, scale, seed, bias=None, low=4):
    """Smooth logits (n, c, side, side): a low x low normal field, bilinearly upsampled, plus a per-class bias."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, low, low, generator=g, dtype=torch.float64) * scale
    if bias is not None:
        z = z + torch.tensor(bias, dtype=torch.float64).view(1, -1, 1, 1)
    z = torch.nn.functional.interpolate(z, size=(side, side), mode="bilinear", align_corners=False)
    return z, g


def multiclass_split(n, seed, scale=1.5, bias=(1.5, 0, 0, 0), side=16, k=1.0):
    """Probs softmax(k z) of a true model softmax(z) (calibrated for k = 1), and labels drawn from the model."""
    z, g = logit_fields(n, len(bias), side, scale, seed, bias)
    u = torch.rand(n, 1, side, side, generator=g, dtype=torch.float64)
    labels = (z.softmax(1).cumsum(1) < u).sum(1).clamp(max=len(bias) - 1)
    return (z * k).softmax(1).float(), labels


def multilabel_split(n, seed, scale=2.0, bias=(-1.5, -1.0, -2.0), side=16, k=1.0):
    z, g = logit_fields(n, len(bias), side, scale, seed, bias)
    masks = torch.rand(z.shape, generator=g, dtype=torch.float64) < z.sigmoid()
    return (z * k).sigmoid().float(), masks


# ---- the judge --------------------------------------------------------------------------------------------------


def class_scores(pred, truth, classes=None, metric="dice", ignore_index=None):
    """(images, C) Dice or IoU by rankseg.metrics, NaN where the class is absent from the (valid) truth."""
    score = metrics.dice if metric == "dice" else metrics.iou
    if truth.dtype == torch.bool:  # multilabel masks
        s = score(pred, truth)
        present = truth.flatten(2).any(2)
    else:
        s = score(pred, truth, num_classes=classes, ignore_index=ignore_index)
        valid = truth != ignore_index if ignore_index is not None else torch.ones_like(truth, dtype=torch.bool)
        present = torch.stack([((truth == k) & valid).flatten(1).any(1) for k in range(classes)], 1)
    return torch.where(present, s, torch.full_like(s, float("nan")))


def per_image(scores):
    return scores.nanmean(1)  # NaN for an image with no class present


def baseline(probs, multiclass=True):
    return probs.argmax(1) if multiclass else probs > 0.5


def mean_se(x):
    x = x[~x.isnan()]
    return float(x.mean()), float(x.std() / len(x) ** 0.5)


def check_gains(fitted, probs, truth, metric, ignore_index=None):
    """fitted.gain, gain_se, baseline_score and every ClassReport against the judge on this split."""
    multiclass = truth.dtype != torch.bool
    c = probs.shape[1]
    ours = class_scores(fitted(probs), truth, c, metric, ignore_index)
    base = class_scores(baseline(probs, multiclass), truth, c, metric, ignore_index)
    gain, se = mean_se(per_image(ours) - per_image(base))
    assert fitted.gain == pytest.approx(gain, abs=1e-12)
    assert fitted.gain_se == pytest.approx(se, rel=1e-9, abs=1e-12)
    assert fitted.baseline_score == pytest.approx(float(per_image(base).nanmean()), abs=1e-12)
    assert len(fitted.classes) == c
    for k, r in enumerate(fitted.classes):
        g, s = mean_se(ours[:, k] - base[:, k])
        assert isinstance(r, ClassReport) and r.index == k and r.rankseg == bool(fitted.rankseg_classes[k])
        assert r.images == int((~base[:, k].isnan()).sum())
        assert r.gain == pytest.approx(g, abs=1e-12), f"class {k}"
        assert r.se == pytest.approx(s, rel=1e-9, abs=1e-12), f"class {k}"
        if not r.rankseg and not multiclass:  # a multilabel class left to the threshold keeps its score
            assert torch.equal(ours[:, k].nan_to_num(-1), base[:, k].nan_to_num(-1))
    return gain


# ---- 8. the reported gains are the judge's ------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["dice", "iou"])
def test_multiclass_gain_is_the_judges(metric):
    probs, labels = multiclass_split(40, 1)
    fitted = RankSEG(metric=metric).fit(probs, labels)
    assert fitted.rankseg_classes.any()  # the weak-signal data: a fit that does choose classes
    assert check_gains(fitted, probs, labels, metric) > 0


@pytest.mark.parametrize("metric", ["dice", "iou"])
def test_multilabel_gain_is_the_judges(metric):
    probs, masks = multilabel_split(40, 2)
    fitted = RankSEG(metric=metric, output_mode="multilabel").fit(probs, masks)
    assert fitted.rankseg_classes.any()
    assert check_gains(fitted, probs, masks, metric) > 0


def test_gain_with_ignore_index_is_the_judges():
    probs, labels = multiclass_split(40, 3)
    g = torch.Generator().manual_seed(4)
    labels[torch.rand(labels.shape, generator=g) < 0.2] = 255
    labels[5] = 255  # an image with nothing to score: left out of every mean
    labels[6, :8] = 255
    fitted = RankSEG().fit(probs, labels, ignore_index=255)
    assert fitted.rankseg_classes.any()
    assert check_gains(fitted, probs, labels, "dice", ignore_index=255) > 0
    # the ignored pixels really are left out: ignoring them is not the same as calling them background
    other = RankSEG().fit(probs, labels.where(labels != 255, 0), calibrations=("none",))
    assert other.gain != fitted.gain


# ---- 9. never below the baseline on the validation split --------------------------------------------------------

SETTINGS = {
    "calibrated": {"k": 1.0},
    "overconfident": {"k": 3.0},
    "underconfident": {"k": 0.4},
    "sharp": {"scale": 4.0, "bias": (0, 0, 0)},
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("metric", ["dice", "iou"])
def test_never_below_the_baseline_on_validation(setting, metric):
    probs, labels = multiclass_split(30, 10, **SETTINGS[setting])
    fitted = RankSEG(metric=metric).fit(probs, labels, calibrations=("none", "temperature"))
    c = probs.shape[1]
    ours = per_image(class_scores(fitted(probs), labels, c, metric))
    base = per_image(class_scores(probs.argmax(1), labels, c, metric))
    assert fitted.gain >= 0 and fitted.gain_se >= 0
    assert float(ours.nanmean()) >= float(base.nanmean()) - 1e-12
    if not fitted.rankseg_classes.any():
        assert fitted.gain == 0.0 and fitted.calibrator is None
        assert torch.equal(fitted(probs), probs.argmax(1))


@pytest.mark.parametrize("k", [0.4, 3.0])
def test_multilabel_never_below_the_threshold_on_validation(k):
    probs, masks = multilabel_split(30, 11, k=k)
    fitted = RankSEG(output_mode="multilabel").fit(probs, masks, calibrations=("none", "temperature"))
    ours = per_image(class_scores(fitted(probs), masks))
    base = per_image(class_scores(probs > 0.5, masks))
    assert fitted.gain >= 0
    assert float(ours.nanmean()) >= float(base.nanmean()) - 1e-12


@pytest.mark.parametrize("multiclass", [True, False])
def test_one_hot_probabilities_of_the_truth_keep_the_baseline(multiclass):
    """argmax (threshold) of one-hot probabilities of the truth is perfect: nothing can gain, whatever the
    calibration."""
    _, labels = multiclass_split(20, 12)
    onehot = torch.nn.functional.one_hot(labels, 4).movedim(-1, 1)
    probs, truth = (onehot.float(), labels) if multiclass else (onehot.float(), onehot.bool())
    seg = RankSEG() if multiclass else RankSEG(output_mode="multilabel")
    fitted = seg.fit(probs, truth)
    assert not fitted.rankseg_classes.any() and fitted.calibrator is None
    assert fitted.gain == 0.0 and fitted.gain_se == 0.0
    assert all(r.gain == 0.0 and not r.rankseg for r in fitted.classes)
    assert torch.equal(fitted(probs), baseline(probs, multiclass))
    assert fitted.baseline_score == 1.0


def test_one_hot_probabilities_and_independent_labels_keep_argmax():
    """Uncalibrated one-hot probabilities: RankSEG's masks are argmax's, so no candidate differs from it."""
    probs, _ = multiclass_split(30, 13)
    probs = torch.nn.functional.one_hot(probs.argmax(1), 4).movedim(-1, 1).float()
    labels = torch.randint(0, 4, (30, 16, 16), generator=torch.Generator().manual_seed(14))
    fitted = RankSEG().fit(probs, labels, calibrations=("none",))
    assert not fitted.rankseg_classes.any() and fitted.gain == 0.0
    assert torch.equal(fitted(probs), probs.argmax(1))


def test_independent_labels_gain_is_real_not_noise():
    """Labels drawn independently of the probabilities do NOT make the baseline optimal: with labels uniform over
    C classes, the expected per-image Dice of a class predicted on V pixels is about 2 V / C / (V + N / C), concave
    in V, so volumes more even than argmax's score better (temperature -> flat probabilities does that). The fit
    finds this; the gain it reports holds on an independent split. (40 and 100 images: the held-out gain is about
    0.05 with a standard error under 0.005 for these seeds.)"""
    probs, _ = multiclass_split(40, 15)
    g = torch.Generator().manual_seed(16)
    labels = torch.randint(0, 4, (40, 16, 16), generator=g)
    fitted = RankSEG().fit(probs, labels, calibrations=("none", "temperature"))
    check_gains(fitted, probs, labels, "dice")
    test_probs, _ = multiclass_split(100, 17)
    test_labels = torch.randint(0, 4, (100, 16, 16), generator=g)
    gain, se = mean_se(
        per_image(class_scores(fitted(test_probs), test_labels, 4))
        - per_image(class_scores(test_probs.argmax(1), test_labels, 4))
    )
    assert fitted.gain > 0 and gain > 3 * se


# ---- 10. where RankSEG helps, the fit keeps it, and it helps on a held-out split -------------------------------


@pytest.mark.parametrize("seed", [20, 21])
@pytest.mark.parametrize("metric", ["dice", "iou"])
def test_fit_gains_on_a_held_out_split(metric, seed):
    """Calibrated probabilities of a weak-signal model (smooth fields, background favoured by 1.5 logits): argmax
    rarely predicts the weak classes, RankSEG does. 40 validation and 150 test images: over seeds 20-29 the
    held-out gain is 0.023-0.035 Dice (0.013-0.021 IoU), 6 to 12 standard errors above zero, so the sign is robust."""
    probs, labels = multiclass_split(40, seed)
    fitted = RankSEG(metric=metric).fit(probs, labels, calibrations=("none", "temperature"))
    assert fitted.rankseg_classes.any() and fitted.gain > fitted.gain_se
    test_probs, test_labels = multiclass_split(150, 1000 + seed)
    gain, se = mean_se(
        per_image(class_scores(fitted(test_probs), test_labels, 4, metric))
        - per_image(class_scores(test_probs.argmax(1), test_labels, 4, metric))
    )
    assert gain > 3 * se


def test_multilabel_fit_gains_on_a_held_out_split():
    """The multilabel counterpart: sparse calibrated sigmoid fields, where the 0.5 threshold under-segments.
    40 validation and 150 test images; over seeds 22-29 the held-out gain is about 0.10, 20 standard errors above 0."""
    probs, masks = multilabel_split(40, 22)
    fitted = RankSEG(output_mode="multilabel").fit(probs, masks, calibrations=("none", "temperature"))
    assert fitted.rankseg_classes.any()
    test_probs, test_masks = multilabel_split(150, 1022)
    gain, se = mean_se(
        per_image(class_scores(fitted(test_probs), test_masks)) - per_image(class_scores(test_probs > 0.5, test_masks))
    )
    assert gain > 3 * se


# ---- 11. predict mixes RankSEG's labels of the chosen classes with argmax's ------------------------------------


def mixed_reference(fitted, probs):
    """R where R is a chosen class, else argmax (multilabel: each chosen class's RankSEG mask, else p > 0.5)."""
    p = fitted.calibrator(probs) if fitted.calibrator is not None else probs
    decided = fitted.segmenter(p)
    chosen = fitted.rankseg_classes.tolist()
    if fitted.mode == "multilabel":
        out = probs > 0.5
        for k, use in enumerate(chosen):
            if use:
                out[:, k] = decided[:, k]
        return out
    out = probs.double().argmax(1)
    for k, use in enumerate(chosen):
        if use:
            out[decided == k] = k
    return out


def fitted_by_hand(segmenter, calibrator, chosen):
    chosen = torch.tensor(chosen)
    reports = [ClassReport(k, bool(chosen[k]), 0.0, 0.0, 0) for k in range(len(chosen))]
    return FittedRankSEG(segmenter, calibrator, chosen, 0.0, 0.0, reports, 0.0)


@pytest.mark.parametrize("calibration", [None, "temperature", "binning"])
@pytest.mark.parametrize(
    "params",
    [{}, {"merge": "prob"}, {"pruning": "argmax"}, {"unassigned_policy": "void", "void_index": 255}],
    ids=["gain", "prob", "argmax-pruning", "void"],
)
def test_predict_mixes_chosen_classes_with_argmax(params, calibration):
    probs, labels = multiclass_split(12, 30, k=2.0)
    calibrator = None if calibration is None else cal.CALIBRATORS[calibration]().fit(probs, labels)
    seg = RankSEG(**params)
    decided = seg(probs if calibrator is None else calibrator(probs))
    mixed = 0
    for chosen in ([True, False, True, False], [False, True, True, True], [True, True, False, False], [False] * 4):
        fitted = fitted_by_hand(seg, calibrator, chosen)
        got = fitted(probs)
        ref = mixed_reference(fitted, probs)
        assert got.dtype == torch.int64 and torch.equal(got, ref), chosen
        mixed += not torch.equal(got, probs.argmax(1)) and not torch.equal(got, decided)
    assert mixed >= 1  # some mix differs from both of its parts, so the test sees the mixing


def test_predict_with_every_class_chosen_and_void_labels():
    probs, _ = multiclass_split(12, 30, k=2.0)
    seg = RankSEG(unassigned_policy="void", void_index=255)
    assert (seg(probs) == 255).any()
    fitted = fitted_by_hand(seg, None, [True] * 4)
    assert torch.equal(fitted(probs), mixed_reference(fitted, probs))


def test_void_policy_gain_is_the_judges():
    probs, labels = multiclass_split(40, 5, scale=2.0, bias=(0, 0, 0, 0))  # a split where all 4 classes are chosen
    fitted = RankSEG(unassigned_policy="void").fit(probs, labels, calibrations=("none",))
    # the segmenter leaves void pixels, which the fitted predictor (and its scoring) give their argmax label
    assert fitted.rankseg_classes.all() and (fitted.segmenter(probs) == 255).any()
    assert not (fitted(probs) == 255).any()
    check_gains(fitted, probs, labels, "dice")


def test_predict_multilabel_mixes_masks_with_threshold():
    probs, masks = multilabel_split(12, 31)
    calibrator = cal.Temperature("multilabel").fit(probs, masks)
    for chosen in ([True, False, True], [False, True, False]):
        fitted = fitted_by_hand(RankSEG(output_mode="multilabel"), calibrator, chosen)
        got = fitted(probs)
        assert got.dtype == torch.bool and torch.equal(got, mixed_reference(fitted, probs))
        assert not torch.equal(got, probs > 0.5)


def test_predict_checks_the_class_count_and_keeps_its_input():
    probs, labels = multiclass_split(6, 32)
    fitted = fitted_by_hand(RankSEG(), cal.Temperature().fit(probs, labels), [True, False, True, False])
    before = probs.clone()
    fitted(probs)
    assert torch.equal(probs, before)
    with pytest.raises(ValueError, match="fitted on 4 classes, probs has 3"):
        fitted(probs[:, :3])
    with pytest.raises(ValueError, match="fitted on 4 classes"):
        fitted_by_hand(RankSEG(), None, [False] * 4)(probs[:, :3])


# ---- 12. save/load, batches, argument errors --------------------------------------------------------------------


@pytest.mark.parametrize("calibration", ["temperature", "vector", "binning"])
@pytest.mark.parametrize("params", [{}, {"merge": "prob", "pruning": "argmax"}, {"unassigned_policy": "void"}])
def test_save_load_roundtrip_by_hand(tmp_path, calibration, params):
    probs, labels = multiclass_split(12, 40, k=2.0)
    fitted = fitted_by_hand(RankSEG("iou", 0.5, pruning_prob=0.3, **params), None, [True, False, True, False])
    fitted.calibrator = cal.CALIBRATORS[calibration]().fit(probs, labels)
    path = tmp_path / "fitted.json"
    fitted.save(path)
    json.loads(path.read_text())  # plain JSON
    loaded = load(path)
    assert torch.equal(loaded(probs), fitted(probs))
    assert loaded.report() == fitted.report() and repr(loaded) == repr(fitted)
    assert loaded.segmenter.options == fitted.segmenter.options


@pytest.mark.parametrize("multiclass", [True, False])
def test_save_load_roundtrip_of_a_fit(tmp_path, multiclass):
    if multiclass:
        probs, truth = multiclass_split(30, 41)
        fitted = RankSEG().fit(probs, truth)
    else:
        probs, truth = multilabel_split(30, 41)
        fitted = RankSEG(output_mode="multilabel").fit(probs, truth)
    assert fitted.rankseg_classes.any()
    fitted.save(tmp_path / "f.json")
    loaded = load(tmp_path / "f.json")
    assert torch.equal(loaded(probs), fitted(probs))
    assert loaded.report() == fitted.report()
    assert (loaded.gain, loaded.gain_se, loaded.baseline_score) == (fitted.gain, fitted.gain_se, fitted.baseline_score)
    assert loaded.classes == fitted.classes
    assert torch.equal(loaded.rankseg_classes, fitted.rankseg_classes)
    report = fitted.report()
    assert f"{100 * fitted.gain:+.2f}" in report and len(report.splitlines()) == 3 + probs.shape[1]


def test_fit_keeps_the_segmenters_eps(tmp_path):
    probs, masks = multilabel_split(20, 42)
    fitted = RankSEG(output_mode="multilabel", solver="BA", eps=1e-2).fit(probs, masks, calibrations=("none",))
    assert fitted.segmenter.options.eps == 1e-2
    fitted.save(tmp_path / "f.json")
    assert load(tmp_path / "f.json").segmenter.options.eps == 1e-2


def test_batches_give_the_fit_of_tensors():
    probs, labels = multiclass_split(30, 43)
    whole = RankSEG().fit(probs, labels)
    batches = [(probs[i : i + 8], labels[i : i + 8]) for i in range(0, 30, 8)]
    parts = RankSEG().fit(batches)
    assert whole.rankseg_classes.any()
    assert torch.equal(whole.rankseg_classes, parts.rankseg_classes)
    assert type(whole.calibrator) is type(parts.calibrator)
    assert whole.segmenter.options == parts.segmenter.options
    assert parts.gain == pytest.approx(whole.gain, abs=1e-9)
    assert torch.equal(whole(probs), parts(probs))


def test_one_shot_iterators_are_refused():
    probs, labels = multiclass_split(8, 44)
    pairs = [(probs[:4], labels[:4]), (probs[4:], labels[4:])]
    with pytest.raises(TypeError, match="re-iterable"):
        RankSEG().fit(pair for pair in pairs)
    with pytest.raises(TypeError, match="re-iterable"):
        RankSEG().fit(iter(pairs))


def test_argument_errors():
    probs, labels = multiclass_split(8, 45)
    with pytest.raises(ValueError, match="Dice or IoU"):
        RankSEG(metric="acc", solver="argmax").fit(probs, labels)
    with pytest.raises(ValueError, match="'platt'"):
        RankSEG().fit(probs, labels, calibrations=("none", "platt"))
    with pytest.raises(ValueError, match="found 9"):
        RankSEG().fit(probs, labels.where(labels != 1, 9))
    with pytest.raises(TypeError, match="labels"):
        RankSEG().fit(probs)
    with pytest.raises(TypeError, match="bool masks"):
        RankSEG(output_mode="multilabel").fit(probs, labels)
    with pytest.raises(ValueError, match="softmax"):
        RankSEG().fit(probs * 3, labels)
    with pytest.raises(ValueError, match="at least one batch"):
        RankSEG().fit([], calibrations=("none",))
    with pytest.raises(ValueError, match="at least one labelled pixel"):
        RankSEG().fit([])


def test_calibrations_none_only():
    probs, labels = multiclass_split(30, 46)
    fitted = RankSEG().fit(probs, labels, calibrations=("none",))
    assert fitted.calibrator is None and fitted.rankseg_classes.any()
    check_gains(fitted, probs, labels, "dice")
    assert RankSEG().fit(probs, labels, calibrations=()).calibrator is None


def test_fit_rejects_batches_with_different_class_counts():
    p4, y4 = multiclass_split(4, 47)
    p3, y3 = multiclass_split(4, 48, bias=(1.0, 0, 0))
    with pytest.raises(ValueError, match="classes"):
        RankSEG().fit([(p3, y3), (p4, y4)], calibrations=("none",))


# ---- 13. merge="prob" against a float64 reference ---------------------------------------------------------------


def merge_prob_reference(probs, metric, solver, pruning_prob, pruning, policy, void_index=255):
    """Each class's own mask (the multilabel solve); several claimants -> the most probable (lowest index on ties),
    none -> argmax or void. pruning="argmax": masks at pruning_prob 0, kept for the classes argmax predicts."""
    cut = 0.0 if pruning == "argmax" else pruning_prob
    masks = RankSEG(metric, output_mode="multilabel", solver=solver, pruning_prob=cut)(probs)
    p = probs.double()
    b, c = p.shape[:2]
    winners = p.argmax(1)  # first maximum
    if pruning == "argmax":
        for i in range(b):
            for k in range(c):
                if not (winners[i] == k).any():
                    masks[i, k] = False
    claimed = torch.where(masks, p, torch.full_like(p, -torch.inf)).argmax(1)
    fill = winners if policy == "max_score" else torch.full_like(winners, void_index)
    return torch.where(masks.any(1), claimed, fill)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from([(2, 3, 9, 7), (1, 4, 16, 16), (3, 2, 5, 4, 6), (2, 5, 3, 3, 3), (2, 3, 1, 1)]),
    seed=st.integers(0, 2**31 - 1),
    solver_metric=st.sampled_from([("RMA", "dice"), ("RMA", "iou"), ("exact", "dice")]),
    pruning=st.sampled_from(["max_prob", "argmax"]),
    pruning_prob=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    policy=st.sampled_from(["max_score", "void"]),
    dtype=st.sampled_from([torch.float32, torch.float16]),
    ties=st.booleans(),
)
def test_merge_prob_equals_the_reference(shape, seed, solver_metric, pruning, pruning_prob, policy, dtype, ties):
    solver, metric = solver_metric
    g = torch.Generator().manual_seed(seed)
    probs = (torch.randn(shape, generator=g) * 2).softmax(1)
    if ties:  # few distinct values: equal probabilities between claimants and within classes
        probs = (probs * 4).round() / 4
    probs = probs.to(dtype)
    extra = {"void_index": 255} if policy == "void" else {}
    seg = RankSEG(metric, 0.0, "multiclass", solver, pruning_prob, merge="prob", pruning=pruning,
                  unassigned_policy=policy, **extra)  # fmt: skip
    before = probs.clone()
    got = seg(probs)
    ref = merge_prob_reference(probs, metric, solver, pruning_prob, pruning, policy)
    assert got.dtype == torch.int64 and got.shape == probs.shape[:1] + probs.shape[2:]
    assert torch.equal(got, ref)
    assert torch.equal(probs, before)


def test_merge_prob_differs_from_merge_gain_and_resolves_overlaps():
    """A setting where masks overlap and leave pixels unclaimed, so both rules of the merge are exercised."""
    probs, _ = multiclass_split(6, 50, scale=1.0, bias=(0, 0, 0, 0))
    masks = RankSEG(output_mode="multilabel")(probs)
    hits = masks.sum(1)
    assert (hits > 1).any() and (hits == 0).any()
    got = RankSEG(merge="prob", pruning="max_prob")(probs)
    assert torch.equal(got, merge_prob_reference(probs, "dice", "RMA", 0.5, "max_prob", "max_score"))
    assert not torch.equal(got, RankSEG(merge="gain", pruning="max_prob")(probs))
    unclaimed = hits == 0
    assert torch.equal(got[unclaimed], probs.argmax(1)[unclaimed])


@pytest.mark.parametrize("device", DEVICES)
def test_merge_prob_on_the_device_of_its_input(device):
    probs, _ = multiclass_split(4, 51)
    seg = RankSEG(merge="prob", pruning="argmax")
    got = seg(probs.to(device))
    assert got.device.type == device
    assert torch.equal(got.cpu(), merge_prob_reference(probs, "dice", "RMA", 0.5, "argmax", "max_score"))
    x = probs.movedim(1, -1).contiguous().movedim(-1, 1)  # channels last: the same labels
    assert torch.equal(seg(x), got.cpu())


@settings(max_examples=80, deadline=None)
@given(
    st.integers(2, 7),
    st.integers(0, 2**31 - 1),
    st.sampled_from([torch.float32, torch.float16, torch.float64]),
    st.sampled_from([{}, {"pruning": "max_prob"}, {"unassigned_policy": "void", "void_index": 99}, {"metric": "iou"}]),
    st.sampled_from(["RMA", "exact"]),
)
def test_compiled_merge_by_probability_equals_its_composition(classes, seed, dtype, kwargs, solver):
    """The CPU core's merge by probability and the composition from per-class masks that CUDA tensors use are
    two implementations of one rule: they must agree label for label."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(2, classes, 4, 4, generator=g) * float(torch.rand(1, generator=g) * 4)
    probs = torch.nn.functional.interpolate(low, size=(13, 11), mode="bilinear").softmax(1).to(dtype)
    if solver == "exact" and kwargs.get("metric") == "iou":
        kwargs = {}
    segmenter = RankSEG(solver=solver, merge="prob", **kwargs)
    assert torch.equal(segmenter(probs), merged_by_probability(segmenter.options, probs, True))


def dataset_score(pred, truth, classes, metric):
    """The benchmark convention, counted here: per class, Dice (IoU) of counts summed over the split, averaged
    over the classes present in the split."""
    as_masks = (lambda x: x) if truth.dtype == torch.bool else (lambda x: torch.nn.functional.one_hot(x, classes))
    p, t = as_masks(pred).double(), as_masks(truth).double()
    if truth.dtype != torch.bool:
        p, t = p.movedim(-1, 1), t.movedim(-1, 1)
    dims = (0, *range(2, t.dim()))
    tp, volume, positives = (p * t).sum(dims), p.sum(dims), t.sum(dims)
    score = 2 * tp / (volume + positives) if metric == "dice" else tp / (volume + positives - tp)
    return float(score[positives > 0].mean())


@pytest.mark.parametrize("metric", ["dice", "iou"])
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_dataset_aggregation_gain_is_the_judges(metric, mode):
    probs, truth = multiclass_split(40, 61) if mode == "multiclass" else multilabel_split(40, 62)
    fitted = RankSEG(metric=metric, output_mode=mode).fit(probs, truth, aggregation="dataset")
    c = probs.shape[1]
    base = dataset_score(baseline(probs, mode == "multiclass"), truth, c, metric)
    ours = dataset_score(fitted(probs), truth, c, metric)
    assert fitted.aggregation == "dataset" and fitted.baseline_score == pytest.approx(base, abs=1e-12)
    assert fitted.gain == pytest.approx(ours - base, abs=1e-12)
    assert fitted.gain >= 0 and (fitted.gain == 0 or fitted.gain > fitted.gain_se)
    assert "dataset score" in fitted.report()
    with pytest.raises(ValueError, match="aggregation"):
        RankSEG().fit(probs[:2], truth[:2], aggregation="mean")
