"""Probability inputs for the kernel tests: their kinds, dtypes and memory layouts, and hypothesis cases of them."""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
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
        wide = torch.zeros(*x.shape[:-1], x.shape[-1] * 2, dtype=x.dtype, device=x.device)
        wide[..., ::2] = x
        return wide[..., ::2]
    return x
