"""Shared input generators and checks for the kernel tests."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import reference
import torch
from hypothesis import strategies as st

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# The compiled incremental-score merge, which the multiclass tests check against the reference merge (the
# multiclass default merges by probability instead; tests/test_fitting.py checks that one).
GAIN_MERGE = {"merge": "gain", "pruning": "max_prob"}
KINDS = ["uniform", "softmax", "ties", "sparse", "fields", "clustered"]
LAYOUTS = ["contiguous", "channels_last", "strided"]


def rma_cases(max_side: int):
    """Hypothesis cases for the RMA kernels: shape (B, C, up to three spatial dims of at most max_side), input
    kind, seed, dtype, layout, metric, smooth and pruning_prob."""
    shapes = st.tuples(
        st.integers(0, 3),  # B
        st.integers(1, 5),  # C
        st.lists(st.integers(1, max_side), min_size=1, max_size=3),  # spatial
    ).map(lambda t: (t[0], t[1], *t[2]))
    return st.fixed_dictionaries(
        {
            "shape": shapes,
            "kind": st.sampled_from(KINDS),
            "seed": st.integers(0, 2**31 - 1),
            "dtype": st.sampled_from(DTYPES),
            "layout": st.sampled_from(LAYOUTS),
            "metric": st.sampled_from(["dice", "iou"]),
            "smooth": st.sampled_from([0.0, 0.0, 1e-6, 0.5, 1.0, 100.0]),
            "pruning_prob": st.sampled_from([0.0, 0.25, 0.5, 0.5, 1.0]),
        }
    )


def make_probs(kind: str, shape: tuple, seed: int, dtype=torch.float32, layout="contiguous") -> torch.Tensor:
    """Probabilities (B, C, *spatial) of a given flavour, laid out contiguously or not."""
    g = torch.Generator().manual_seed(seed)
    b, c, *spatial = shape
    n = math.prod(spatial)
    if kind == "uniform":
        x = torch.rand(b, c, n, generator=g, dtype=torch.float64)
    elif kind == "softmax":
        x = (torch.randn(b, c, n, generator=g, dtype=torch.float64) * 3).softmax(1)
    elif kind == "ties":  # few distinct dyadic values: exact ties everywhere, exact in every dtype
        x = torch.randint(0, 9, (b, c, n), generator=g).to(torch.float64) / 8
    elif kind == "sparse":  # mostly 0 and 1, some classes all-zero or all-one
        x = torch.randint(0, 2, (b, c, n), generator=g).to(torch.float64)
        x[:, ::3] = 0
        x[:, 1::4] = 1
        x = torch.where(
            torch.rand(x.shape, generator=g) < 0.1, torch.rand(x.shape, generator=g, dtype=torch.float64), x
        )
    elif kind == "fields":  # smooth logit fields: confident interiors, uncertain borders
        low = torch.randn(b, c, 1, max(1, n // 16 + 1), generator=g, dtype=torch.float64) * 4
        x = torch.nn.functional.interpolate(low, size=(1, n), mode="bilinear", align_corners=False)
        x = x.reshape(b, c, n).softmax(1)
    elif kind == "clustered":  # a few tight clusters: many pixels per histogram bin, refined exactly
        centers = torch.rand(b, c, 3, generator=g, dtype=torch.float64) * 0.9
        pick = torch.randint(0, 3, (b, c, n), generator=g)
        x = centers.gather(2, pick) + torch.rand(b, c, n, generator=g, dtype=torch.float64) * 1e-5
    else:
        raise ValueError(kind)
    return laid_out(x.to(dtype).reshape(shape), layout)


def laid_out(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values contiguous, channels_last (classes innermost), or strided (every other element)."""
    if layout == "channels_last":
        return x.movedim(1, -1).contiguous().movedim(-1, 1)
    if layout == "strided":
        wide = torch.zeros(*x.shape[:-1], x.shape[-1] * 2, dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    return x


def as_bcn(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], t.shape[1], -1) if t.shape[0] else t.reshape(0, t.shape[1], math.prod(t.shape[2:]))


def assert_masks_optimal(probs, masks, metric, smooth, pruning_prob):
    """Each class mask equals the sorted reference, or is a top set with the same optimal score (ties)."""
    p = as_bcn(probs).to(torch.float64)
    masks = as_bcn(masks)
    assert masks.dtype == torch.bool and masks.shape == p.shape
    for b in range(p.shape[0]):
        for c in range(p.shape[1]):
            ours, pc = masks[b, c], p[b, c]
            ref, active, best = reference.class_mask(pc, metric, smooth, pruning_prob)
            if torch.equal(ours, ref):
                continue
            where = f"image {b}, class {c}"
            assert active, f"{where}: pruned class got a non-empty mask"
            if ours.any() and (~ours).any():
                assert pc[ours].min() >= pc[~ours].max(), f"{where}: mask is not a top set"
            got = reference.mask_score(pc, ours, metric, smooth)
            assert torch.isclose(got, best, rtol=1e-12, atol=1e-15), f"{where}: score {got} < optimum {best}"


def assert_labels_optimal(probs, labels, masks, active, metric, smooth, policy="max_score", void_index=255):
    """Labels equal the reference merge of the given masks, except between classes whose gains tie."""
    p = as_bcn(probs)
    labels = labels.reshape(p.shape[0], p.shape[2])
    masks = as_bcn(masks)
    ref, g = reference.merge(p, masks, active, metric, smooth, policy, void_index)
    diff = (labels != ref).nonzero()
    for b, i in diff.tolist():
        ours, theirs = int(labels[b, i]), int(ref[b, i])
        where = f"image {b}, pixel {i}: label {ours}, reference {theirs}"
        assert 0 <= ours < p.shape[1] and 0 <= theirs < p.shape[1], where
        hits = masks[b, :, i]
        eligible = hits if hits.any() else (active[b] if active[b].any() else torch.ones_like(active[b]))
        assert eligible[ours], f"{where}: class {ours} is not eligible"
        assert torch.isclose(g[b, ours, i], g[b, theirs, i], rtol=1e-9, atol=1e-15), (
            f"{where}: gains {g[b, ours, i]} vs {g[b, theirs, i]}"
        )


@pytest.fixture
def threads():
    """Restores torch's thread count after a test changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread(threads):
    """One intra-op thread: the fits are tiny, and two threads on a busy two-core machine run them 20x slower."""
    torch.set_num_threads(1)


CUDA = [pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def load_benchmark(name: str):
    """The module benchmarks/<name>.py, for tests of what the benchmarks report."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module
