"""rankseg.integration.sam against tiny random SAM models and the processors' own post-processing."""

from __future__ import annotations

import re

import pytest
import torch

T = pytest.importorskip("transformers")
pytest.importorskip("PIL")

from tiny_sam import decisive, sam1_outputs, sam2_outputs, sam3_fields, sam3_outputs  # noqa: E402

import rankseg  # noqa: E402
from rankseg.integration import sam  # noqa: E402

ORIGINAL = [(100, 120), (80, 60), (100, 120)]
RESHAPED = [(64, 54), (64, 48), (64, 54)]


def raises(exc, *parts):
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts))


def processor(name):
    """The processor class, or a skip where this install cannot build it (SAM2/SAM3 need torchvision)."""
    try:
        return getattr(T, name)()
    except (ImportError, AttributeError) as e:
        pytest.skip(f"{name} is not available in this install: {e}")


def assert_same_masks(probs, expected):
    """Probabilities thresholded at 0.5 equal the processor's masks except at measured near-ties."""
    if expected.shape[0] == 0:  # no instance kept; the processor leaves empty sets at model resolution
        assert probs.shape[0] == 0
        return
    assert probs.shape == expected.shape
    ours = probs > 0.5
    differ = (ours != expected.bool()).double().mean().item()
    assert differ <= 1e-3, f"{differ:.4%} of pixels differ"
    if differ:
        assert (probs[ours != expected.bool()] - 0.5).abs().max() < 1e-6


@pytest.mark.parametrize("pad", [(64, 64), (1024, 1024)])
def test_sam1_matches_post_process_masks(pad):
    outputs = sam1_outputs()
    adapter = sam.Sam1(pad_size=pad)
    probs = adapter.restore_mask_probs(outputs, original_sizes=ORIGINAL, reshaped_input_sizes=RESHAPED)
    expected = processor("SamImageProcessorPil").post_process_masks(
        outputs.pred_masks, ORIGINAL, RESHAPED, pad_size={"height": pad[0], "width": pad[1]}
    )
    for p, e in zip(probs, expected):
        assert_same_masks(p, e)


def test_sam_hq_outputs_go_through_sam1():
    from transformers.models.sam_hq.modeling_sam_hq import SamHQImageSegmentationOutput

    outputs = decisive(SamHQImageSegmentationOutput(pred_masks=torch.zeros(2, 2, 3, 16, 16)), "pred_masks")
    probs = sam.Sam1(pad_size=(64, 64)).restore_mask_probs(
        outputs, original_sizes=(90, 70), reshaped_input_sizes=(64, 50)
    )
    expected = processor("SamImageProcessorPil").post_process_masks(
        outputs.pred_masks, [(90, 70)] * 2, [(64, 50)] * 2, pad_size={"height": 64, "width": 64}
    )
    for p, e in zip(probs, expected):
        assert_same_masks(p, e)


def test_sam1_postprocess_is_rankseg_on_restored_probs():
    outputs = sam1_outputs()
    adapter = sam.Sam1(rankseg_kwargs={"metric": "iou"}, pad_size=(64, 64))
    masks = adapter.postprocess(outputs, original_sizes=ORIGINAL, reshaped_input_sizes=torch.tensor(RESHAPED))
    probs = adapter.restore_mask_probs(outputs, original_sizes=ORIGINAL, reshaped_input_sizes=RESHAPED)
    for m, p in zip(masks, probs):
        assert m.dtype == torch.bool and m.shape == p.shape
        assert torch.equal(m, rankseg.RankSEG(metric="iou", output_mode="multilabel")(p))


@pytest.mark.parametrize("constraint", [False, True])
def test_sam2_matches_post_process_masks(constraint):
    outputs = sam2_outputs()
    adapter = sam.Sam2(apply_non_overlapping_constraints=constraint)
    probs = adapter.restore_mask_probs(outputs, original_sizes=ORIGINAL)
    expected = processor("Sam2ImageProcessor").post_process_masks(
        outputs.pred_masks, ORIGINAL, apply_non_overlapping_constraints=constraint
    )
    for p, e in zip(probs, expected):
        assert_same_masks(p, e)


def test_sam2_constraint_changes_overlapping_masks():
    outputs = sam2_outputs()
    free = sam.Sam2().restore_mask_probs(outputs, original_sizes=ORIGINAL)[0]
    kept = sam.Sam2(apply_non_overlapping_constraints=True).restore_mask_probs(outputs, original_sizes=ORIGINAL)[0]
    assert ((free > 0.5).sum(0) > 1).any() and not ((kept > 0.5).sum(0) > 1).any()


def test_sam2_postprocess_is_rankseg_on_restored_probs():
    outputs = sam2_outputs()
    masks = sam.Sam2().postprocess(outputs, original_sizes=(50, 40))
    probs = sam.Sam2().restore_mask_probs(outputs, original_sizes=[(50, 40)] * 3)
    for m, p in zip(masks, probs):
        assert m.shape == (3, 3, 50, 40) and torch.equal(m, rankseg.RankSEG(output_mode="multilabel")(p))


@pytest.mark.parametrize("presence", [True, False])
@pytest.mark.parametrize("sizes", [[(40, 50), (30, 30), (40, 50)], None])
def test_sam3_instances_match_post_process_instance_segmentation(presence, sizes):
    outputs = sam3_outputs(presence=presence)
    ours = sam.Sam3(threshold=0.3).restore_instance_mask_probs(outputs, target_sizes=sizes)
    expected = processor("Sam3ImageProcessor").post_process_instance_segmentation(
        outputs, threshold=0.3, target_sizes=sizes
    )
    assert any(len(r["scores"]) for r in ours)
    for r, e in zip(ours, expected):
        assert torch.allclose(r["scores"], e["scores"]) and torch.allclose(r["boxes"], e["boxes"])
        assert_same_masks(r["mask_probs"], e["masks"])


def test_sam3_postprocess_instance_and_empty_sets():
    outputs = sam3_outputs()
    results = sam.Sam3(threshold=0.3).postprocess_instance(outputs, target_sizes=(40, 50))
    probs = sam.Sam3(threshold=0.3).restore_instance_mask_probs(outputs, target_sizes=(40, 50))
    for r, p in zip(results, probs):
        assert r["masks"].dtype == torch.bool and r["masks"].shape == p["mask_probs"].shape
        if len(p["mask_probs"]):
            assert torch.equal(r["masks"], rankseg.RankSEG(output_mode="multilabel")(p["mask_probs"][None])[0])
    nothing = sam.Sam3(threshold=1.0).postprocess_instance(outputs, target_sizes=(40, 50))
    assert all(
        r["masks"].shape == (0, 40, 50) and r["scores"].shape == (0,) and r["boxes"].shape == (0, 4) for r in nothing
    )


@pytest.mark.parametrize("sizes", [[(40, 50), (30, 30), (40, 50)], None])
def test_sam3_semantic_matches_post_process_semantic_segmentation(sizes):
    outputs = sam3_outputs()
    probs = sam.Sam3().restore_semantic_mask_probs(outputs, target_sizes=sizes)
    expected = processor("Sam3ImageProcessor").post_process_semantic_segmentation(outputs, target_sizes=sizes)
    for p, e in zip(probs, expected):
        assert_same_masks(p[0], e)
    masks = sam.Sam3().postprocess_semantic(outputs, target_sizes=sizes)
    for m, p in zip(masks, probs):
        assert m.shape == p.shape and torch.equal(m, rankseg.RankSEG(output_mode="multilabel")(p[None])[0])


def test_adapters_reject_other_families():
    with raises(ValueError, "Sam2", "not Sam1"):
        sam.Sam1().restore_mask_probs(sam2_outputs(), original_sizes=ORIGINAL, reshaped_input_sizes=RESHAPED)
    with raises(ValueError, "Sam1", "not Sam2"):
        sam.Sam2().postprocess(sam1_outputs(), original_sizes=ORIGINAL)
    with raises(ValueError, "Sam1", "not Sam3"):
        sam.Sam3().postprocess_semantic(sam1_outputs())
    semantic = T.modeling_outputs.SemanticSegmenterOutput(logits=torch.randn(1, 3, 8, 8))
    with raises(TypeError, "not a SAM-family output", "rankseg.integration.transformers"):
        sam.Sam1().postprocess(semantic, original_sizes=(8, 8), reshaped_input_sizes=(8, 8))
    with raises(TypeError, "tuple", "return_dict=True"):
        sam.Sam2().postprocess((torch.randn(1, 1, 1, 8, 8),), original_sizes=(8, 8))


@pytest.mark.parametrize(
    "kwargs,exc,parts",
    [
        ({"original_sizes": ORIGINAL[:2], "reshaped_input_sizes": RESHAPED}, ValueError, ["original_sizes", "2", "3"]),
        ({"original_sizes": (0, 10), "reshaped_input_sizes": RESHAPED}, ValueError, ["original_sizes[0]", "positive"]),
        (
            {"original_sizes": ORIGINAL, "reshaped_input_sizes": (2000, 10)},
            ValueError,
            ["reshaped_input_sizes[0]", "pad_size"],
        ),
        ({"original_sizes": "100x120", "reshaped_input_sizes": RESHAPED}, TypeError, ["original_sizes"]),
        (
            {"original_sizes": torch.tensor([[1.5, 2.0]] * 3), "reshaped_input_sizes": RESHAPED},
            TypeError,
            ["original_sizes", "integers"],
        ),
        ({"original_sizes": [(100, 120.0)] * 3, "reshaped_input_sizes": RESHAPED}, TypeError, ["original_sizes[0]"]),
    ],
)
def test_sam1_size_errors(kwargs, exc, parts):
    with raises(exc, *parts):
        sam.Sam1().restore_mask_probs(sam1_outputs(), **kwargs)


def test_constructor_errors():
    with raises(TypeError, "rankseg_kwargs"):
        sam.Sam1(rankseg_kwargs="dice")
    with raises(ValueError, "metric"):
        sam.Sam2(rankseg_kwargs={"metric": "f1"})
    with raises(TypeError, "apply_non_overlapping_constraints"):
        sam.Sam2(apply_non_overlapping_constraints=1)
    with raises(ValueError, "threshold", "[0, 1]"):
        sam.Sam3(threshold=1.5)
    with raises(TypeError, "threshold"):
        sam.Sam3(threshold="0.3")
    with raises(ValueError, "pad_size"):
        sam.Sam1(pad_size=(0, 1024))


def compiled(fn, backend="eager"):
    """fn under torch.compile(fullgraph=True): any graph break in our code is an error."""
    torch._dynamo.reset()
    return torch.compile(fn, fullgraph=True, backend=backend)


def same(a, b) -> bool:
    """Equal results: tensors, or lists and dicts of them."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))


SAM3_SIZES = [(40, 50), (30, 30), (40, 50)]


@pytest.mark.parametrize(
    "method,outputs,kwargs",
    [
        (lambda: sam.Sam1(pad_size=(64, 64)).restore_mask_probs, sam1_outputs, {"reshaped_input_sizes": RESHAPED}),
        (lambda: sam.Sam1(pad_size=(64, 64)).postprocess, sam1_outputs, {"reshaped_input_sizes": RESHAPED}),
        (lambda: sam.Sam2(apply_non_overlapping_constraints=True).restore_mask_probs, sam2_outputs, {}),
        (lambda: sam.Sam2().postprocess, sam2_outputs, {}),
    ],
    ids=["sam1-restore", "sam1-postprocess", "sam2-restore", "sam2-postprocess"],
)
def test_fullgraph_compile_equals_eager(method, outputs, kwargs):
    fn, o = method(), outputs()
    call = lambda o: fn(o, original_sizes=ORIGINAL, **kwargs)
    assert same(compiled(call)(o), call(o))


@pytest.mark.parametrize("threshold", [0.3, 1.0])  # 0.3 keeps 2, 5 and 0 instances of the images, 1.0 none
@pytest.mark.parametrize(
    "method",
    ["restore_instance_mask_probs", "postprocess_instance", "restore_semantic_mask_probs", "postprocess_semantic"],
)
def test_sam3_fullgraph_compile_equals_eager(method, threshold):
    """How many instances clear the threshold depends on the values: still one graph, and the same results."""
    fn = getattr(sam.Sam3(threshold=threshold), method)
    call = lambda o: fn(o, target_sizes=SAM3_SIZES)
    outputs = sam3_fields()
    assert same(compiled(call)(outputs), call(outputs))


def test_sam3_postprocess_instance_of_mappings():
    """The kept instances' masks are RankSEG's on their restored probabilities, image by image, and empty sets
    give empty masks (the output class needs torchvision; its mapping does not)."""
    adapter = sam.Sam3(threshold=0.3)
    results = adapter.postprocess_instance(sam3_fields(), target_sizes=SAM3_SIZES)
    probs = adapter.restore_instance_mask_probs(sam3_fields(), target_sizes=SAM3_SIZES)
    assert [len(p["scores"]) for p in probs] == [2, 5, 0]
    for r, p, size in zip(results, probs, SAM3_SIZES):
        assert r["masks"].dtype == torch.bool and r["masks"].shape == (len(p["scores"]), *size)
        if len(p["scores"]):
            assert torch.equal(r["masks"], rankseg.RankSEG(output_mode="multilabel")(p["mask_probs"][None])[0])


def test_non_finite_fields_name_the_field():
    nan = sam1_outputs().pred_masks.clone()
    nan[0, 0, 0, 0, 0] = float("nan")
    with raises(ValueError, "outputs.pred_masks", "NaN"):
        sam.Sam1().postprocess({"pred_masks": nan}, original_sizes=ORIGINAL, reshaped_input_sizes=RESHAPED)
    fields = sam3_fields()
    fields["pred_logits"][1, 2] = float("inf")
    with raises(ValueError, "outputs.pred_logits", "infinity"):
        sam.Sam3().postprocess_instance(fields)


def test_sam3_fields_on_different_devices_name_both():
    for moved in ("pred_boxes", "presence_logits"):
        fields = sam3_fields()
        fields[moved] = fields[moved].to("meta")
        with raises(ValueError, "outputs.pred_logits is on cpu", f"outputs.{moved} is on meta"):
            sam.Sam3().restore_instance_mask_probs(fields)
