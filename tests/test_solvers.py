"""The exact expected-Dice solver and RankDice's BA/TRNA against enumeration over all label vectors, Monte
Carlo, and each other."""

from __future__ import annotations

import numpy as np
import pytest
import reference
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optimality import GAIN_MERGE, as_bcn, assert_labels_optimal
from probability_inputs import make_probs

import rankseg
from rankseg import metrics

# Probabilities that stress the expectation: near 0, near 1, exact ties, anything in between.
probability = st.one_of(
    st.floats(0, 1),
    st.sampled_from([0.0, 1.0, 0.5, 0.25, 1e-9, 1 - 1e-9]),
    st.floats(0, 1e-3),
    st.floats(1 - 1e-3, 1),
)
small_classes = st.lists(probability, min_size=1, max_size=12)
smooths = st.sampled_from([0.0, 0.0, 1e-3, 0.5, 1.0, 7.0])


@settings(max_examples=150, deadline=None)
@given(p=small_classes, smooth=smooths)
def test_exact_solver_reaches_the_enumerated_optimum(p, smooth):
    probs = torch.tensor(p, dtype=torch.float64).reshape(1, 1, -1)
    mask = rankseg.rankseg(probs, "dice", smooth, "multilabel", "exact", pruning_prob=0.0)
    chosen = reference.enumerated_expectation(p, mask.reshape(-1).tolist(), "dice", smooth, 0.0)
    assert chosen >= reference.best_top_set_value(p, smooth) - 1e-12
    values = probs.reshape(-1)
    if mask.any() and (~mask).any():  # a top set that keeps equal probabilities together
        assert values[mask.reshape(-1)].min() > values[~mask.reshape(-1)].max()


@settings(max_examples=150, deadline=None)
@given(
    p=small_classes,
    data=st.data(),
    metric=st.sampled_from(["dice", "iou"]),
    smooth=smooths,
    empty=st.sampled_from([0.0, 1.0]),
)
def test_expected_scores_equal_enumeration(p, data, metric, smooth, empty):
    mask = data.draw(st.lists(st.booleans(), min_size=len(p), max_size=len(p)))
    probs = torch.tensor(p, dtype=torch.float64).reshape(1, 1, -1)
    pred = torch.tensor(mask).reshape(1, 1, -1)
    score = getattr(metrics, f"expected_{metric}")
    expected = reference.enumerated_expectation(p, mask, metric, smooth, empty)
    assert score(probs, pred, smooth=smooth, empty_score=empty).item() == pytest.approx(expected, rel=1e-12, abs=1e-14)
    enumerated = score(probs, pred, smooth=smooth, empty_score=empty, method="enumerate").item()
    assert enumerated == pytest.approx(expected, rel=1e-12, abs=1e-14)


def poisson_binomial(p: np.ndarray) -> np.ndarray:
    """P(sum of independent Bernoulli(p_i) = k), k = 0 .. n, by the textbook recursion in float64."""
    pmf = np.zeros(len(p) + 1)
    pmf[0] = 1.0
    for i, q in enumerate(p):
        pmf[1 : i + 2] = pmf[1 : i + 2] * (1 - q) + pmf[: i + 1] * q
        pmf[0] *= 1 - q
    return pmf


def distribution_expectation(p: np.ndarray, mask: np.ndarray, metric: str, smooth: float) -> float:
    """E[score] from the exact distributions of the positives inside (T) and outside (R) the mask."""
    t, r = poisson_binomial(p[mask]), poisson_binomial(p[~mask])
    inside, outside = np.arange(len(t))[:, None], np.arange(len(r))[None, :]
    volume = mask.sum()
    if metric == "dice":
        score = (2 * inside + smooth) / (volume + inside + outside + smooth)
    else:
        score = (inside + smooth) / (volume + outside + smooth)
    return float((t[:, None] * r[None, :] * score).sum())


@pytest.mark.parametrize("metric", ["dice", "iou"])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
@pytest.mark.parametrize("kind", ["mostly small", "all small", "at the series limit"])
def test_expected_scores_of_thousands_of_pixels_equal_the_exact_distribution(metric, smooth, kind):
    """Thousands of pixels, most of them far below 1/16: where the core sums powers of the probabilities instead of
    multiplying one factor per quadrature node."""
    rng = np.random.default_rng(11)
    n = 3000
    if kind == "mostly small":
        p = np.where(rng.random(n) < 0.9, rng.random(n) * 0.05, rng.random(n))
    elif kind == "all small":
        p = rng.random(n) * 0.02
    else:
        p = np.concatenate([np.full(n // 3, 1 / 16), np.nextafter(np.full(n // 3, 1 / 16), 1), rng.random(n // 3)])
    mask = p > np.quantile(p, 0.9)
    got = getattr(metrics, f"expected_{metric}")(
        torch.tensor(p).reshape(1, 1, -1), torch.tensor(mask).reshape(1, 1, -1), smooth=smooth
    )
    assert got.item() == pytest.approx(distribution_expectation(p, mask, metric, smooth), rel=1e-12)


@pytest.mark.parametrize("metric", ["dice", "iou"])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_expected_scores_agree_with_monte_carlo(metric, smooth):
    """N = 10^4 pixels: the exact value lies within 3 standard errors of a plain NumPy Monte Carlo estimate."""
    rng = np.random.default_rng(5)
    p = 1 / (1 + np.exp(-3 * rng.standard_normal(10_000) - 1))
    mask = p > 0.4
    draws = rng.random((4000, p.size)) < p
    tp, positives, volume = (draws & mask).sum(1), draws.sum(1), mask.sum()
    if metric == "dice":
        samples = (2 * tp + smooth) / (volume + positives + smooth)
    else:
        samples = (tp + smooth) / (volume + positives - tp + smooth)
    mean, error = samples.mean(), samples.std(ddof=1) / np.sqrt(samples.size)
    exact = getattr(metrics, f"expected_{metric}")(
        torch.tensor(p).reshape(1, 1, -1), torch.tensor(mask).reshape(1, 1, -1), smooth=smooth
    ).item()
    assert abs(exact - mean) < 3 * error
    ours, ours_error = getattr(metrics, f"expected_{metric}")(
        torch.tensor(p).reshape(1, 1, -1),
        torch.tensor(mask).reshape(1, 1, -1),
        smooth=smooth,
        method="monte_carlo",
        samples=500,
        generator=torch.Generator().manual_seed(1),
    )
    assert abs(exact - ours.item()) < 4 * ours_error.item()


# Sigmoid maps of many pixels, with a class-wide shift: what BA/TRNA's normal approximations are made for.
@settings(max_examples=25, deadline=None)
@given(
    pixels=st.integers(100, 3000),
    scale=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
    seed=st.integers(0, 2**31 - 1),
    smooth=st.sampled_from([0.0, 1.0]),
)
def test_approximate_solvers_come_close_to_the_exact_optimum(pixels, scale, seed, smooth):
    """Never above the exact solver's expected Dice, and close to it, relatively: BA and BA+TRNA within 1e-3,
    TRNA within 1e-4, RMA within 3e-3 (worst cases measured over 480 such inputs: 1.8e-4, 4e-5, 0, 9e-4)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, 3, pixels, generator=g, dtype=torch.float64) * scale
    probs = torch.sigmoid(logits + torch.randn(1, 3, 1, generator=g, dtype=torch.float64))
    best = metrics.expected_dice(
        probs, rankseg.rankseg(probs, "dice", smooth, "multilabel", "exact", pruning_prob=0.0), smooth=smooth
    )
    for solver, tolerance in [("BA", 1e-3), ("BA+TRNA", 1e-3), ("TRNA", 1e-4), ("RMA", 3e-3)]:
        masks = rankseg.rankseg(probs, "dice", smooth, "multilabel", solver, pruning_prob=0.0)
        score = metrics.expected_dice(probs, masks, smooth=smooth)
        assert (score <= best + 1e-12).all(), solver
        assert ((best - score) <= tolerance * best).all(), f"{solver}: {((best - score) / best).max():.2e}"


@pytest.mark.parametrize("solver", ["exact", "BA", "TRNA", "BA+TRNA"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_sorting_solvers_take_every_dtype_and_layout(solver, dtype, layout):
    probs = make_probs("fields", (2, 3, 12, 14), seed=4, dtype=dtype, layout=layout)
    masks = rankseg.rankseg(probs, output_mode="multilabel", solver=solver)
    assert torch.equal(masks, rankseg.rankseg(probs.contiguous().double(), output_mode="multilabel", solver=solver))


def test_exact_multiclass_merges_the_exact_masks():
    """Multiclass exact labels are the RMA merge (each pixel to the eligible class whose score it raises most;
    tests/reference.py's merge) of the exact solver's per-class masks."""
    probs = make_probs("softmax", (2, 4, 9, 11), seed=3, dtype=torch.float64)
    masks = rankseg.rankseg(probs, output_mode="multilabel", solver="exact", pruning_prob=0.2)
    active = as_bcn(probs).amax(2) > 0.2
    for policy in ("max_score", "void"):
        extra = {"unassigned_policy": policy, "void_index": 255} if policy == "void" else {}
        labels = rankseg.rankseg(probs, solver="exact", pruning_prob=0.2, **extra, **GAIN_MERGE)
        assert_labels_optimal(probs, labels, masks, active, "dice", 0.0, policy, 255)


def test_sorting_solvers_prune_and_refuse_bad_values():
    probs = torch.full((1, 2, 10), 0.3, dtype=torch.float64)
    assert not rankseg.rankseg(probs, output_mode="multilabel", solver="exact").any()  # max <= 0.5: pruned
    probs[0, 1, 4] = float("nan")
    with pytest.raises(ValueError, match="image 0, class 1 has NaN"):
        rankseg.rankseg(probs, output_mode="multilabel", solver="TRNA")
