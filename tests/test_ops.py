"""The custom ops: registration checks (opcheck) and torch.compile(fullgraph=True)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from probability_inputs import make_probs

import rankseg
from rankseg import _ops

SAMPLES = [
    make_probs("fields", (2, 4, 16, 20), seed=0),
    make_probs("softmax", (1, 3, 5, 6, 7), seed=1, dtype=torch.float64, layout="channels_last"),
    make_probs("ties", (3, 2, 33), seed=2, dtype=torch.float16, layout="strided"),
]


@pytest.mark.parametrize("probs", SAMPLES)
def test_opcheck_multilabel(probs):
    torch.library.opcheck(_ops.multilabel_op, (probs, "dice", 0.0, 0.5, True))


@pytest.mark.parametrize("probs", SAMPLES)
@pytest.mark.parametrize("pruning", ["max_prob", "argmax"])
@pytest.mark.parametrize("merge", ["gain", "prob"])
def test_opcheck_multiclass(probs, pruning, merge):
    torch.library.opcheck(_ops.multiclass_op, (probs, "iou", 1.0, 0.25, "void", 255, True, pruning, merge))


@pytest.mark.parametrize("probs", SAMPLES)
def test_opcheck_sorting_solvers(probs):
    torch.library.opcheck(_ops.sorted_multilabel_op, (probs, "TRNA", 0.0, 0.5, 1e-4))
    torch.library.opcheck(_ops.sorted_multiclass_op, (probs, "exact", 1.0, 0.25, "max_score", 255, "argmax", "prob"))


def test_torch_compile_fullgraph():
    model = rankseg.RankSEG(metric="dice")

    @torch.compile(fullgraph=True, backend="eager")
    def segment(logits):
        return model(torch.softmax(logits, dim=1))

    logits = torch.randn(2, 5, 24, 24, generator=torch.Generator().manual_seed(0)) * 3
    assert torch.equal(segment(logits), model(torch.softmax(logits, dim=1)))


def test_fake_and_meta_tensors_go_through_the_op():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        labels = rankseg.rankseg(torch.rand(2, 3, 4, 5))
    assert labels.shape == (2, 4, 5) and labels.dtype == torch.int64
    masks = rankseg.rankseg(torch.rand(2, 3, 4, 5, device="meta"), output_mode="multilabel")
    assert masks.shape == (2, 3, 4, 5) and masks.device.type == "meta"


def test_eager_calls_do_not_import_dynamo():
    """A custom op's first call imports torch._dynamo (about a second); eager calls do not go through it."""
    code = (
        "import sys, torch, rankseg\n"
        "p = torch.rand(1, 3, 4, 4).softmax(1)\n"
        "rankseg.rankseg(p); rankseg.rankseg(p, output_mode='multilabel')\n"
        "print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
