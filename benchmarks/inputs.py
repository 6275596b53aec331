"""Benchmark inputs: what segmenters really output (the *fields*, shared with `rankseg bench`), and the worst
case for pruning-free work (*noise*)."""

from __future__ import annotations

import torch

from rankseg._bench import sigmoid_fields, softmax_fields


def softmax_noise(shape: tuple, seed: int = 0) -> torch.Tensor:
    """Softmax of iid noise x 3: many weak classes, most of them pruned."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 3).softmax(1)


def sigmoid_noise(shape: tuple, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.sigmoid(torch.randn(shape, generator=g) * 2)


INPUTS = {
    "softmax-fields": softmax_fields,
    "softmax-noise": softmax_noise,
    "sigmoid-fields": sigmoid_fields,
    "sigmoid-noise": sigmoid_noise,
}
