"""Drop-in compatibility with rankseg 0.0.x: its names and signatures, and outputs in the forms production stacks
deliver them (subclasses, mappings, NumPy values, size dicts, 4-D SAM masks, float64, autograd), each compared
with the result of the canonical form."""

from __future__ import annotations

import dataclasses
import inspect
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

import rankseg
from rankseg import RankSEG

T = pytest.importorskip("transformers")
hf = pytest.importorskip("rankseg.integration.transformers")
from rankseg.integration import sam  # noqa: E402

PROBS = torch.softmax(torch.randn(2, 4, 9, 10, generator=torch.Generator().manual_seed(0)) * 2, dim=1)


def raises(exc, *parts):
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts))


# ---- names and signatures ----


def test_signatures_of_0_0_x():
    assert list(inspect.signature(rankseg.rankseg_rma).parameters) == [
        "probs",
        "metric",
        "smooth",
        "output_mode",
        "pruning_prob",
        "unassigned_policy",
        "void_index",
        "safe_screening",
    ]
    assert list(inspect.signature(rankseg.rankdice_ba).parameters) == [
        "probs",
        "solver",
        "smooth",
        "eps",
        "pruning_prob",
    ]
    assert list(inspect.signature(rankseg.functional.rankseg).parameters)[:6] == [
        "probs",
        "metric",
        "smooth",
        "output_mode",
        "solver",
        "pruning_prob",
    ]


@pytest.mark.parametrize("screening", [False, True, "auto", " AUTO "])
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_rankseg_rma_is_rma_and_screening_changes_nothing(screening, mode):
    got = rankseg.rankseg_rma(PROBS, "iou", 0.5, mode, 0.25, safe_screening=screening)
    assert torch.equal(got, rankseg.rankseg(PROBS, "iou", 0.5, mode, pruning_prob=0.25))
    assert torch.equal(RankSEG(output_mode=mode, safe_screening=screening)(PROBS), RankSEG(output_mode=mode)(PROBS))


def test_rankseg_rma_void_policy():
    got = rankseg.rankseg_rma(PROBS, unassigned_policy="void", void_index=99)
    assert torch.equal(got, rankseg.rankseg(PROBS, unassigned_policy="void", void_index=99))
    with raises(ValueError, "unassigned_policy", "multiclass"):
        rankseg.rankseg_rma(PROBS, output_mode="multilabel", unassigned_policy="void")
    with raises(ValueError, "void_index", "'void'"):
        rankseg.rankseg_rma(PROBS, void_index=7)
    with raises(TypeError, "safe_screening", "'auto'"):
        rankseg.rankseg_rma(PROBS, safe_screening="yes")


@pytest.mark.parametrize("solver", ["BA", "trna", "BA+TRNA"])
def test_rankdice_ba_is_the_multilabel_dice_solver(solver):
    got = rankseg.rankdice_ba(PROBS, solver=solver, smooth=1.0, eps=1e-3, pruning_prob=0.3)
    expected = RankSEG("dice", 1.0, "multilabel", solver, 0.3, eps=1e-3)(PROBS)
    assert torch.equal(got, expected)
    with raises(ValueError, "solver", "'BA'"):
        rankseg.rankdice_ba(PROBS, solver="RMA")


def test_attributes_are_normalised_and_read_only():
    r = RankSEG(
        metric=" IoU ",
        smooth=1,
        output_mode="MultiClass",
        solver="rma",
        pruning_prob=0,
        unassigned_policy="VOID",
        void_index=np.int64(300),
        safe_screening="Auto",
    )
    assert (r.metric, r.smooth, r.output_mode, r.solver, r.pruning_prob) == ("iou", 1.0, "multiclass", "RMA", 0.0)
    assert r.solver_params == {"unassigned_policy": "void", "void_index": 300, "safe_screening": "auto"}
    for name in ("metric", "smooth", "output_mode", "solver", "pruning_prob", "solver_params"):
        with pytest.raises(AttributeError):
            setattr(r, name, None)
    r.solver_params["void_index"] = 1  # a copy
    assert r.solver_params["void_index"] == 300


def test_version_comes_from_the_distribution():
    assert rankseg.__version__ == metadata.version("rankseg")


# ---- the refined normal approximation ----


def test_refined_normal_matches_its_definition():
    from rankseg.distribution import RefinedNormal, RefinedNormalPB

    loc, scale, skew = torch.tensor([40.0, 3.0]), torch.tensor([4.0, 1.5]), torch.tensor([0.1, -0.3])
    count = RefinedNormalPB(dim=100, loc=loc, scale=scale, skew=skew)
    assert isinstance(count, torch.distributions.Distribution) and count.batch_shape == (2,)
    k = torch.arange(0, 60, dtype=torch.float64)
    for i in range(2):
        z = ((k + 0.5 - loc[i]) / scale[i]).numpy()
        g = scipy.stats.norm.cdf(z) + skew[i].item() * (1 - z * z) * scipy.stats.norm.pdf(z) / 6
        np.testing.assert_allclose(count.cdf(k.unsqueeze(0))[i].numpy(), np.clip(g, 0, 1), atol=1e-6)
        np.testing.assert_allclose(RefinedNormal().cdf(z, skew[i].item()), np.clip(g, 0, 1), atol=1e-12)
    pmf = count.pmf(k.unsqueeze(0))  # telescopes: the mass between -1 (excluded) and 59
    edges = count.cdf(torch.tensor([[-1.0, 59.0]]).expand(2, 2))
    assert torch.allclose(pmf.sum(-1), edges[:, 1] - edges[:, 0], atol=1e-6)
    lo, hi = count.interval(1e-4)
    assert lo.dtype == torch.int32 and (lo >= 0).all() and (hi <= 100).all()
    within = count.cdf(torch.tensor([[100.0]])) - count.cdf(torch.tensor([[-1.0]]))  # the mass on [0, dim]
    for i in range(2):
        inside = count.pmf(torch.arange(int(lo[i]), int(hi[i]) + 1).unsqueeze(0).float())[i].sum()
        assert inside >= within[i, 0] - 1e-4 - 1e-6
    p = torch.tensor([[0.1, 0.5, 0.9], [0.1, 0.5, 0.9]])
    assert torch.allclose(count.cdf(count.icdf(p)), p, atol=1e-5)


def test_importing_rankseg_does_not_import_scipy():
    import subprocess
    import sys

    code = "import sys, rankseg; print('scipy' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


# ---- outputs as production stacks deliver them ----


def segformer_outputs(dtype=torch.float32, requires_grad=False):
    logits = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1), dtype=dtype) * 3
    return T.modeling_outputs.SemanticSegmenterOutput(logits=logits.requires_grad_(requires_grad))


SIZES = [(24, 20), (16, 16)]


@dataclasses.dataclass
class WrappedOutput(T.modeling_outputs.SemanticSegmenterOutput):
    """An output class of a wrapping model, defined outside transformers."""

    extra: torch.Tensor | None = None


@pytest.mark.parametrize(
    "convert",
    [
        lambda o: WrappedOutput(logits=o.logits, extra=torch.zeros(1)),
        lambda o: {"logits": o.logits},
        lambda o: {"logits": o.logits.numpy()},
    ],
    ids=["subclass", "dict", "dict-numpy"],
)
@pytest.mark.parametrize(
    "sizes",
    [SIZES, [{"height": h, "width": w} for h, w in SIZES], np.array(SIZES), torch.tensor(SIZES)],
    ids=["pairs", "dicts", "numpy", "tensor"],
)
def test_logits_outputs_in_other_forms(convert, sizes):
    canonical = segformer_outputs()
    expected = hf.postprocess(canonical, target_sizes=SIZES)
    got = hf.postprocess(convert(canonical), target_sizes=sizes)
    assert all(torch.equal(a, b) for a, b in zip(got, expected))


def test_detr_mapping_needs_the_model_type_which_a_config_or_dict_gives():
    from tiny_transformers import model_run

    model, outputs = model_run("detr")
    expected = hf.restore_semantic_probs(outputs, target_sizes=[(30, 30)] * 3)
    mapping = {"logits": outputs.logits.numpy(), "pred_masks": outputs.pred_masks}
    with raises(ValueError, "model="):
        hf.restore_semantic_probs(mapping)
    for given in (model, model.config, {"model_type": "detr"}):
        got = hf.restore_semantic_probs(mapping, model=given, target_sizes=[(30, 30)] * 3)
        assert all(torch.equal(a, b) for a, b in zip(got, expected))


def test_float64_outputs_stay_float64():
    outputs = segformer_outputs(torch.float64)
    probs = hf.restore_semantic_probs(outputs, target_sizes=SIZES)
    assert all(p.dtype == torch.float64 for p in probs)
    expected = torch.nn.functional.interpolate(outputs.logits[:1], SIZES[0], mode="bilinear").softmax(1)[0]
    assert torch.equal(probs[0], expected)


def test_restored_probabilities_carry_gradients_and_postprocess_records_none():
    outputs = segformer_outputs(requires_grad=True)
    probs = hf.restore_semantic_probs(outputs, target_sizes=SIZES)
    loss = sum(p[0].mean() for p in probs)
    loss.backward()
    assert outputs.logits.grad is not None and outputs.logits.grad.abs().sum() > 0
    masks = hf.postprocess(outputs, target_sizes=SIZES)
    assert not any(m.requires_grad or m.grad_fn is not None for m in masks)
    with torch.no_grad():
        assert not any(p.requires_grad for p in hf.restore_semantic_probs(outputs))


def test_sam_4d_pred_masks_are_one_prompt_per_image():
    from tiny_sam import sam1_outputs, sam2_outputs

    kwargs = {
        "original_sizes": [(100, 120), (80, 60), (100, 120)],
        "reshaped_input_sizes": [(64, 54), (64, 48), (64, 54)],
    }
    five = sam1_outputs()
    four = {"pred_masks": five.pred_masks[:, 0]}  # (batch, masks, h, w), as the Transformers docs describe it
    adapter = sam.Sam1(pad_size={"height": 64, "width": 64})
    for got, canonical in zip(
        adapter.restore_mask_probs(four, **kwargs),
        adapter.restore_mask_probs({"pred_masks": five.pred_masks[:, :1]}, **kwargs),
    ):
        assert torch.equal(got, canonical[0])
    for got, canonical in zip(
        adapter.postprocess(four, **kwargs), adapter.postprocess({"pred_masks": five.pred_masks[:, :1]}, **kwargs)
    ):
        assert torch.equal(got, canonical[0])
    sizes = {"original_sizes": [(100, 120), (80, 60), (100, 120)]}
    two = sam.Sam2()
    five = sam2_outputs().pred_masks
    for got, canonical in zip(
        two.postprocess({"pred_masks": five[:, 0].numpy()}, **sizes),
        two.postprocess({"pred_masks": five[:, :1]}, **sizes),
    ):
        assert torch.equal(got, canonical[0])


def test_sam3_empty_batch():
    from tiny_sam import sam3_outputs

    outputs = sam3_outputs()
    empty = type(outputs)(**{k: v[:0] if isinstance(v, torch.Tensor) else v for k, v in outputs.items()})
    assert sam.Sam3().restore_instance_mask_probs(empty, target_sizes=[]) == []
    assert sam.Sam3().postprocess_instance(empty, target_sizes=[]) == []


@pytest.mark.parametrize("solver,mode", [("argmax", "multiclass"), ("TR", "multilabel")])
def test_accuracy_solvers_on_meta_and_fake_tensors(solver, mode):
    from torch._subclasses.fake_tensor import FakeTensorMode

    segmenter = RankSEG(metric="acc", solver=solver, output_mode=mode)
    out = segmenter(torch.rand(2, 3, 4, 5, device="meta"))
    assert out.device.type == "meta" and out.shape[0] == 2
    with FakeTensorMode():
        assert segmenter(torch.rand(2, 3, 4, 5)).shape[0] == 2


def test_upgrade_page_examples_run():
    text = (Path(__file__).resolve().parents[1] / "docs" / "upgrading.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/upgrading.md", "exec"), namespace)
    assert namespace["labels"][0].shape == (32, 32)
