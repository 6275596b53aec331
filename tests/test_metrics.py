"""rankseg.metrics against a plain NumPy implementation: label maps with an ignore index, multilabel masks,
classes absent from the prediction, the truth or both."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rankseg import _counting, metrics


def numpy_scores(pred, target, classes, metric, smooth, empty, ignore=None):
    """Per image and class, straight from the definitions, one pixel at a time."""
    out = np.zeros((pred.shape[0], classes))
    for b in range(pred.shape[0]):
        for c in range(classes):
            tp = fp = fn = 0
            for p, t in zip(pred[b].ravel(), target[b].ravel()):
                if ignore is not None and t == ignore:
                    continue
                tp += p == c and t == c
                fp += p == c and t != c
                fn += p != c and t == c
            num, den = (
                (2 * tp + smooth, 2 * tp + fp + fn + smooth)
                if metric == "dice"
                else (tp + smooth, tp + fp + fn + smooth)
            )
            out[b, c] = num / den if den > 0 else empty
    return out


label_maps = st.tuples(
    st.integers(1, 3), st.integers(2, 5), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31 - 1)
)


@settings(max_examples=80, deadline=None)
@given(
    shape=label_maps,
    metric=st.sampled_from(["dice", "iou"]),
    smooth=st.sampled_from([0.0, 1.0]),
    empty=st.sampled_from([math.nan, 0.0, 1.0]),
    ignore=st.sampled_from([None, 255, 0]),
)
def test_label_maps_match_numpy(shape, metric, smooth, empty, ignore):
    batch, classes, h, w, seed = shape
    rng = np.random.default_rng(seed)
    # Labels beyond the classes: void predictions and ignored truths; one class left out entirely.
    pred = rng.integers(0, classes + 1, (batch, h, w))
    target = rng.choice([*range(classes - 1), 255] if ignore == 255 else range(classes - 1), (batch, h, w))
    expected = numpy_scores(pred, target, classes, metric, smooth, empty, ignore)
    fn = getattr(metrics, metric)
    args = (torch.tensor(pred), torch.tensor(target))
    options = {"num_classes": classes, "ignore_index": ignore, "smooth": smooth, "empty_score": empty}
    np.testing.assert_allclose(fn(*args, **options).numpy(), expected, rtol=1e-12, equal_nan=True)
    class_means = np.array([np.nanmean(col) if not np.isnan(col).all() else np.nan for col in expected.T])
    got = fn(*args, **options, reduction="class").numpy()
    np.testing.assert_allclose(got, class_means, rtol=1e-12, equal_nan=True)


def test_multilabel_masks_match_numpy_per_class():
    rng = np.random.default_rng(1)
    pred = rng.random((2, 3, 5, 7)) < 0.5
    target = rng.random((2, 3, 5, 7)) < 0.4
    target[:, 2] = False
    pred[0, 2] = False  # image 0: class 2 absent in both
    got = metrics.iou(torch.tensor(pred), torch.tensor(target))
    for b in range(2):
        for c in range(3):
            tp, union = (pred[b, c] & target[b, c]).sum(), (pred[b, c] | target[b, c]).sum()
            assert (math.isnan(got[b, c]) and union == 0) or got[b, c] == pytest.approx(tp / union)
    assert math.isnan(got[0, 2]) and got[1, 2] == 0.0
    mean = metrics.iou(torch.tensor(pred), torch.tensor(target), reduction="mean")
    assert mean.item() == pytest.approx(np.nanmean(np.nanmean(got.numpy(), 0)))


@pytest.mark.parametrize(
    "call,exc,message",
    [
        (
            lambda: metrics.dice(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)),
            TypeError,
            "num_classes",
        ),
        (
            lambda: metrics.dice(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), num_classes=2),
            TypeError,
            "pred",
        ),
        (
            lambda: metrics.dice(
                torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long), num_classes=2
            ),
            ValueError,
            "shapes",
        ),
        (
            lambda: metrics.iou(
                torch.zeros(1, 2, 3, dtype=torch.bool), torch.zeros(1, 2, 3, dtype=torch.bool), ignore_index=0
            ),
            TypeError,
            "ignore_index",
        ),
        (
            lambda: metrics.dice(
                torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), num_classes=0
            ),
            ValueError,
            "num_classes",
        ),
        (
            lambda: metrics.dice(
                torch.zeros(1, 2, 3, dtype=torch.bool), torch.zeros(1, 2, 3, dtype=torch.bool), reduction="sum"
            ),
            ValueError,
            "reduction",
        ),
        (
            lambda: metrics.expected_dice(torch.rand(1, 2, 3), torch.zeros(1, 2, 4, dtype=torch.bool)),
            ValueError,
            "shape",
        ),
        (
            lambda: metrics.expected_dice(
                torch.rand(1, 2, 20), torch.zeros(1, 2, 20, dtype=torch.bool), method="enumerate"
            ),
            ValueError,
            "16 pixels",
        ),
        (
            lambda: metrics.expected_iou(torch.rand(1, 2, 3), torch.zeros(1, 2, 3, dtype=torch.bool), method="sample"),
            ValueError,
            "method",
        ),
        (
            lambda: metrics.expected_iou(torch.rand(1, 2, 3), torch.zeros(1, 2, 3, dtype=torch.bool), smooth=-1.0),
            ValueError,
            "smooth",
        ),
    ],
)
def test_bad_arguments(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_expected_scores_of_label_maps_are_those_of_their_one_hot_masks():
    probs = torch.softmax(torch.randn(2, 4, 6, 7, generator=torch.Generator().manual_seed(0)) * 2, dim=1)
    labels = probs.argmax(1)
    labels[0, 0, 0] = 255  # void: no class
    one_hot = labels.unsqueeze(1) == torch.arange(4).view(1, 4, 1, 1)
    assert torch.equal(metrics.expected_dice(probs, labels), metrics.expected_dice(probs, one_hot))
    assert torch.equal(metrics.expected_iou(probs, labels), metrics.expected_iou(probs, one_hot))


def numpy_counts(pred, target, classes, ignore=None):
    """(B, 3, C) true positives, predicted and truth pixels, one pixel at a time."""
    out = np.zeros((pred.shape[0], 3, classes), dtype=np.int64)
    for b in range(pred.shape[0]):
        for p, t in zip(pred[b].ravel(), target[b].ravel()):
            if ignore is not None and t == ignore:
                continue
            if 0 <= p < classes:
                out[b, 1, p] += 1
                out[b, 0, p] += p == t
            out[b, 2, t] += 1
    return out


@settings(max_examples=40, deadline=None)
@given(shape=label_maps, ignore=st.sampled_from([None, 255]), chunk=st.sampled_from([None, 7]))
def test_confusion_counts_match_numpy(shape, ignore, chunk):
    batch, classes, h, w, seed = shape
    rng = np.random.default_rng(seed)
    pred = rng.integers(-1, classes + 2, (batch, h, w))  # predictions outside [0, C) predict no class
    target = rng.choice([*range(classes), *([255] if ignore else [])], (batch, h, w))
    # A chunk of 7 pixels exercises the loop that bounds the memory of the pair index.
    with mock.patch.object(_counting, "_CHUNK", chunk or _counting._CHUNK):
        got = metrics.confusion_counts(
            torch.tensor(pred), torch.tensor(target), num_classes=classes, ignore_index=ignore
        )
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), numpy_counts(pred, target, classes, ignore))


def test_confusion_counts_of_labels_equal_those_of_their_masks():
    rng = np.random.default_rng(3)
    pred, target = (torch.tensor(rng.integers(0, 4, (2, 5, 6))) for _ in range(2))
    one_hot = [x.unsqueeze(1) == torch.arange(4).view(1, 4, 1, 1) for x in (pred, target)]
    assert torch.equal(metrics.confusion_counts(pred, target, num_classes=4), metrics.confusion_counts(*one_hot))
    mixed = metrics.confusion_counts(pred, one_hot[1], num_classes=4)  # labels against masks
    assert torch.equal(mixed, metrics.confusion_counts(*one_hot))


@pytest.mark.parametrize("ignore", [None, 0])
def test_truth_outside_the_classes_is_an_error_naming_the_value(ignore):
    pred = torch.zeros(1, 4, 4, dtype=torch.long)
    target = torch.full((1, 4, 4), 255)
    with pytest.raises(ValueError, match=r"label 255.*ignore_index=255"):
        metrics.dice(pred, target, num_classes=3, ignore_index=ignore)
    with pytest.raises(ValueError, match="label -1"):
        metrics.confusion_counts(pred, target - 256, num_classes=3)
    with pytest.raises(ValueError, match="label 255"):  # the masks path checks it too
        metrics.iou(pred.unsqueeze(1).expand(1, 3, 4, 4) == 0, target, num_classes=3)


def reference_summary(pred, target, classes, ignore=None, ignore_empty=True):
    """Both averages from numpy_counts: per image over the classes in its truth, and from summed counts."""
    counts = numpy_counts(pred, target, classes, ignore).astype(float)
    tp, predicted, positives = counts[:, 0], counts[:, 1], counts[:, 2]
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for metric in ("dice", "iou"):
            num = 2 * tp if metric == "dice" else tp
            den = predicted + positives if metric == "dice" else predicted + positives - tp
            scores = num / den
            if ignore_empty:
                scores[positives == 0] = np.nan
            else:
                scores[positives == 0] = (predicted[positives == 0] == 0).astype(float)
            image_means = [np.nanmean(row) if not np.isnan(row).all() else np.nan for row in scores]
            summed = num.sum(0) / den.sum(0)
            out[metric] = (np.nanmean(image_means), np.nanmean(summed), image_means, summed)
    return out


@pytest.mark.parametrize("ignore_empty", [True, False])
def test_accumulator_matches_reference_and_merges_in_any_order(ignore_empty):
    rng = np.random.default_rng(5)
    classes = 5
    batches = []
    for size in (3, 1, 4):
        target = rng.choice([0, 1, 2, 3, 255], (size, 6, 7))  # class 4 never in the truth
        pred = rng.integers(0, classes, (size, 6, 7))
        batches.append((pred, target))
    whole = metrics.Accumulator(num_classes=classes, ignore_index=255, ignore_empty=ignore_empty)
    for pred, target in batches:
        whole.update(torch.tensor(pred), torch.tensor(target))
    got = whole.compute()
    pred_all, target_all = (np.concatenate(x) for x in zip(*batches))
    ref = reference_summary(pred_all, target_all, classes, 255, ignore_empty)
    assert got["images"] == 8
    for metric in ("dice", "iou"):
        per_image, dataset, image_means, summed = ref[metric]
        assert got["per_image"][metric] == pytest.approx(per_image, rel=1e-12)
        assert got["dataset"][metric] == pytest.approx(dataset, rel=1e-12)
        np.testing.assert_allclose(got["per_class"]["dataset"][metric], summed, rtol=1e-12)
        np.testing.assert_allclose(whole.image_scores(metric).numpy(), image_means, rtol=1e-12)
    # Two workers, merged in the other order: the same summary (image order aside).
    a, b = (metrics.Accumulator(num_classes=classes, ignore_index=255, ignore_empty=ignore_empty) for _ in "ab")
    a.update(*map(torch.tensor, batches[0]))
    for pred, target in batches[1:]:
        b.update(torch.tensor(pred), torch.tensor(target))
    merged = b.merge(a).compute()
    for metric in ("dice", "iou"):
        assert merged["dataset"][metric] == pytest.approx(got["dataset"][metric], rel=1e-12)
        assert merged["per_image"][metric] == pytest.approx(got["per_image"][metric], rel=1e-12)
    # Counts from elsewhere (a Ray worker): update_counts takes NumPy arrays.
    c = metrics.Accumulator(ignore_index=255, ignore_empty=ignore_empty)
    for pred, target in batches:
        c.update_counts(numpy_counts(pred, target, classes, 255))
    assert c.compute()["dataset"] == got["dataset"]


def test_accumulator_rejects_what_it_cannot_merge():
    acc = metrics.Accumulator(num_classes=3)
    with pytest.raises(ValueError, match="no images"):
        acc.compute()
    with pytest.raises(ValueError, match=r"4 classes.*num_classes=3"):
        acc.update_counts(np.zeros((1, 3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(B, 3, C\)"):
        acc.update_counts(np.zeros((1, 2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="same ignore_index"):
        acc.merge(metrics.Accumulator(num_classes=3, ignore_index=255))
    with pytest.raises(TypeError, match="ignore_empty"):
        metrics.Accumulator(ignore_empty="yes")


def test_counts_of_a_thousand_classes_and_of_empty_batches():
    rng = np.random.default_rng(8)
    classes = 1100  # over a million confusion bins: the per-class bincounts
    pred, target = rng.integers(-2, classes + 3, (2, 9, 7)), rng.choice([*range(classes), 255], (2, 9, 7))
    got = metrics.confusion_counts(torch.tensor(pred), torch.tensor(target), num_classes=classes, ignore_index=255)
    np.testing.assert_array_equal(got.numpy(), numpy_counts(pred, target, classes, 255))
    empty = torch.zeros(0, 4, 4, dtype=torch.long)
    assert metrics.confusion_counts(empty, empty, num_classes=3).shape == (0, 3, 3)


def test_an_ignore_index_the_label_dtype_cannot_hold_ignores_nothing():
    """int8 labels cannot hold 255; comparing would wrap it to -1 and drop the pixels labelled -1."""
    pred = torch.tensor([[0, 1, 1], [0, 1, 0]], dtype=torch.int8)
    target = torch.tensor([[0, 1, 1], [1, 1, 0]], dtype=torch.int8)
    got = metrics.confusion_counts(pred, target, num_classes=2, ignore_index=255)
    assert torch.equal(got, metrics.confusion_counts(pred.long(), target.long(), num_classes=2))
    with pytest.raises(ValueError, match="label -1"):
        metrics.confusion_counts(pred, target - 2 * (target == 1).to(torch.int8), num_classes=2, ignore_index=255)


def test_accumulator_edge_cases():
    rng = np.random.default_rng(9)
    pred, target = (torch.tensor(rng.integers(0, 2, (3, 5, 5))) for _ in range(2))  # classes 2..4 never seen
    smoothed = metrics.Accumulator(num_classes=5, smooth=1.0)
    smoothed.update(pred, target)
    counts = numpy_counts(pred.numpy(), target.numpy(), 5).sum(0).astype(float)
    dice = (2 * counts[0] + 1) / (counts[1] + counts[2] + 1)
    result = smoothed.compute()["dataset"]
    assert result["dice"] == pytest.approx(dice[:2].mean(), rel=1e-12)  # unseen classes are not scored as 1
    with pytest.raises(ValueError, match="own images twice"):
        smoothed.merge(smoothed)
    other = metrics.Accumulator()
    other.update_counts(np.zeros((1, 3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"4 classes.*num_classes=5"):
        metrics.Accumulator(num_classes=5).merge(other)
    with pytest.raises(ValueError, match="true positives <= predicted"):
        metrics.Accumulator().update_counts(np.array([[[-5], [1], [1]]]))
    with pytest.raises(ValueError, match="no images"):
        empty = metrics.Accumulator()
        empty.update_counts(np.zeros((0, 3, 2), dtype=np.int64))
        empty.compute()
    with pytest.raises(TypeError, match="smooth"):
        metrics.Accumulator(smooth="1")
