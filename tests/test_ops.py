"""The custom ops: registration checks (opcheck) and torch.compile(fullgraph=True)."""

from __future__ import annotations

import pytest
import torch
from conftest import make_probs

import rankseg
from rankseg import _ops

SAMPLES = [
    make_probs("fields", (2, 4, 16, 20), seed=0),
    make_probs("softmax", (1, 3, 5, 6, 7), seed=1, dtype=torch.float64, layout="channels_last"),
    make_probs("ties", (3, 2, 33), seed=2, dtype=torch.float16, layout="strided"),
]


@pytest.mark.parametrize("probs", SAMPLES)
def test_opcheck_multilabel(probs):
    torch.library.opcheck(_ops.rma_multilabel, (probs, "dice", 0.0, 0.5))


@pytest.mark.parametrize("probs", SAMPLES)
def test_opcheck_multiclass(probs):
    torch.library.opcheck(_ops.rma_multiclass, (probs, "iou", 1.0, 0.25, "void", 255))


def test_torch_compile_fullgraph():
    model = rankseg.RankSEG(metric="dice")

    @torch.compile(fullgraph=True, backend="eager")
    def segment(logits):
        return model(torch.softmax(logits, dim=1))

    logits = torch.randn(2, 5, 24, 24, generator=torch.Generator().manual_seed(0)) * 3
    assert torch.equal(segment(logits), model(torch.softmax(logits, dim=1)))
