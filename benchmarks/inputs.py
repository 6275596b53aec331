"""Benchmark inputs: what segmenters really output, and the worst case for pruning-free work."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def logit_fields(shape: tuple, present: int = 6, seed: int = 0) -> torch.Tensor:
    """Smooth random logits: a handful of classes present per image, confident interiors, uncertain borders."""
    g = torch.Generator().manual_seed(seed)
    b, c, *spatial = shape
    low = torch.randn(b, c, *[max(2, s // 32) for s in spatial], generator=g) * 4 - 8
    for i in range(b):
        low[i, torch.randperm(c, generator=g)[:present]] += 8
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
    return F.interpolate(low, size=tuple(spatial), mode=mode, align_corners=False)


def softmax_fields(shape: tuple, seed: int = 0) -> torch.Tensor:
    return logit_fields(shape, seed=seed).softmax(1)


def softmax_noise(shape: tuple, seed: int = 0) -> torch.Tensor:
    """Softmax of iid noise x 3: many weak classes, most of them pruned."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 3).softmax(1)


def sigmoid_fields(shape: tuple, seed: int = 0) -> torch.Tensor:
    return torch.sigmoid(logit_fields(shape, present=shape[1], seed=seed) / 2)


def sigmoid_noise(shape: tuple, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.sigmoid(torch.randn(shape, generator=g) * 2)


INPUTS = {
    "softmax-fields": softmax_fields,
    "softmax-noise": softmax_noise,
    "sigmoid-fields": sigmoid_fields,
    "sigmoid-noise": sigmoid_noise,
}
