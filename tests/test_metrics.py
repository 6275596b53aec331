"""rankseg.metrics against a plain NumPy implementation: label maps with an ignore index, multilabel masks,
classes absent from the prediction, the truth or both."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rankseg import metrics


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
    target = rng.choice([*range(classes - 1), 255], (batch, h, w))
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
