"""rankseg.integration.transformers against the real models and their own image processors (no network)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

T = pytest.importorskip("transformers")
pytest.importorskip("PIL")

from tiny_transformers import MODELS, model_run  # noqa: E402

import rankseg  # noqa: E402
from rankseg.integration import transformers as hf  # noqa: E402

SIZES = [(70, 90), (45, 38), (70, 90)]  # two images share a size: they go through one batched call


def processors(name):
    """The processor's PIL and torchvision variants; the latter needs torchvision, absent in some installs."""
    base = MODELS[name][1]
    found = {}
    for variant in (base + "Pil", base):
        try:
            processor = getattr(T, variant)()
        except (ImportError, AttributeError):
            continue
        found.setdefault(type(processor), processor)  # without torchvision, `base` falls back to the PIL one
    return list(found.values())


@pytest.mark.parametrize("target_sizes", [SIZES, None, torch.tensor(SIZES)], ids=["list", "none", "tensor"])
@pytest.mark.parametrize("name", list(MODELS))
def test_argmax_of_restored_probs_matches_the_processor(name, target_sizes):
    model, outputs = model_run(name)
    found = processors(name)
    assert found, f"no image processor for {name}"
    probs = hf.restore_semantic_probs(outputs, model=model, target_sizes=target_sizes)
    # Some processors fail on tensor target_sizes with this torch (numpy sizes reach F.interpolate): they get
    # the same sizes as a list.
    as_list = target_sizes.tolist() if isinstance(target_sizes, torch.Tensor) else target_sizes
    for processor in found:
        expected = processor.post_process_semantic_segmentation(outputs, target_sizes=as_list)
        assert len(probs) == len(expected) == 3
        for p, e in zip(probs, expected):
            assert p.dtype == torch.float32 and p.shape[1:] == e.shape
            assert bool(((p >= 0) & (p <= 1)).all())
            ours = p.argmax(0)
            differ = (ours != e).double().mean().item()
            assert differ <= 1e-3, f"{type(processor).__name__}: {differ:.4%} of pixels differ"
            if differ:  # only near-ties may differ
                gap = (p.gather(0, ours[None]) - p.gather(0, e[None])).abs()[0][ours != e]
                assert gap.max() < 1e-5


@pytest.mark.parametrize("name", ["detr", "maskformer", "segformer"])
def test_model_argument_alone_is_not_needed_for_known_outputs(name):
    model, outputs = model_run(name)
    with_model = hf.restore_semantic_probs(outputs, model=model, target_sizes=SIZES)
    without = hf.restore_semantic_probs(outputs, target_sizes=SIZES)
    assert all(torch.equal(a, b) for a, b in zip(with_model, without))


def test_query_probabilities_sum_to_one():
    _, outputs = model_run("mask2former")
    for p in hf.restore_semantic_probs(outputs, target_sizes=SIZES):
        total = p.sum(0)
        assert torch.allclose(total[total > 0], torch.ones(()), atol=1e-5)


def test_conditional_detr_keeps_every_class():
    """Its logits have no no-object column: dropping the last column would lose a real class."""
    _model, outputs = model_run("conditional_detr")
    outputs = type(outputs)(**dict(outputs.items()))
    outputs["logits"] = outputs.logits.clone()
    outputs.logits[..., -1] += 4  # make the last class win often
    probs = hf.restore_semantic_probs(outputs, target_sizes=SIZES)
    assert probs[0].shape[0] == outputs.logits.shape[-1]
    expected = processors("conditional_detr")[0].post_process_semantic_segmentation(outputs, target_sizes=SIZES)
    last = outputs.logits.shape[-1] - 1
    assert (expected[0] == last).any()
    assert torch.equal(probs[0].argmax(0), expected[0])


@pytest.mark.parametrize("name", ["segformer", "mask2former", "detr"])
def test_postprocess_equals_rankseg_on_restored_probs(name):
    model, outputs = model_run(name)
    kwargs = {"metric": "iou", "pruning_prob": 0.2}
    masks = hf.postprocess(outputs, model=model, target_sizes=SIZES, rankseg_kwargs=kwargs)
    probs = hf.restore_semantic_probs(outputs, model=model, target_sizes=SIZES)
    for m, p, size in zip(masks, probs, SIZES):
        assert m.shape == size and m.dtype == torch.int64
        assert torch.equal(m, rankseg.RankSEG(**kwargs)(p[None])[0])


def test_postprocess_single_class_is_multilabel():
    _model, outputs = model_run("segformer", classes=1)
    probs = hf.restore_semantic_probs(outputs, target_sizes=SIZES)
    assert torch.allclose(
        probs[0],
        torch.sigmoid(
            torch.nn.functional.interpolate(outputs.logits[:1], size=SIZES[0], mode="bilinear", align_corners=False)
        )[0],
    )
    masks = hf.postprocess(outputs, target_sizes=SIZES)
    assert masks[0].shape == (1, *SIZES[0]) and masks[0].dtype == torch.bool
    assert torch.equal(masks[1], rankseg.RankSEG(output_mode="multilabel")(probs[1][None])[0])


def test_postprocess_respects_output_mode():
    _, outputs = model_run("segformer")
    masks = hf.postprocess(outputs, target_sizes=SIZES, rankseg_kwargs={"output_mode": "multilabel"})
    assert masks[0].shape == (6, *SIZES[0]) and masks[0].dtype == torch.bool


def test_importing_rankseg_does_not_import_transformers():
    code = (
        "import sys, rankseg; from rankseg.integration import transformers as t; "
        "from rankseg.integration.transformers import postprocess, restore_semantic_probs; "
        "assert 'transformers' not in sys.modules, 'transformers was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def raises(exc, *parts):
    import re

    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts))


def test_rejects_tuple_outputs():
    model, _ = model_run("segformer")
    with torch.no_grad():
        tup = model(pixel_values=torch.randn(1, 3, 64, 64), return_dict=False)
    with raises(TypeError, "tuple", "return_dict=True"):
        hf.postprocess(tup)


@pytest.mark.parametrize(
    "build,adapter",
    [
        (
            lambda: T.models.sam.modeling_sam.SamImageSegmentationOutput(
                iou_scores=torch.rand(1, 1, 3), pred_masks=torch.randn(1, 1, 3, 8, 8)
            ),
            "Sam1",
        ),
        (
            lambda: T.models.sam2.modeling_sam2.Sam2ImageSegmentationOutput(
                iou_scores=torch.rand(1, 1, 3), pred_masks=torch.randn(1, 1, 3, 8, 8)
            ),
            "Sam2",
        ),
        (
            lambda: T.models.sam3.modeling_sam3.Sam3ImageSegmentationOutput(
                pred_masks=torch.randn(1, 3, 8, 8), semantic_seg=torch.randn(1, 1, 8, 8)
            ),
            "Sam3",
        ),
    ],
    ids=["sam", "sam2", "sam3"],
)
def test_rejects_sam_outputs_and_names_the_adapter(build, adapter):
    try:
        outputs = build()
    except ImportError as e:  # SAM3's modeling module needs torchvision
        pytest.skip(f"this transformers install cannot import the output class: {e}")
    with raises(ValueError, "rankseg.integration.sam", adapter):
        hf.restore_semantic_probs(outputs)


def test_rejects_eomt_seggpt_and_custom_outputs():
    eomt = T.models.eomt.modeling_eomt.EomtForUniversalSegmentationOutput(
        class_queries_logits=torch.randn(1, 5, 7),
        masks_queries_logits=torch.randn(1, 5, 8, 8),
        patch_offsets=[torch.tensor([[0, 0, 8]])],
    )
    with raises(ValueError, "patch_offsets", "post_process_semantic_segmentation"):
        hf.postprocess(eomt)
    seggpt = T.models.seggpt.modeling_seggpt.SegGptImageSegmentationOutput(pred_masks=torch.randn(1, 3, 8, 8))
    with raises(ValueError, "SegGPT", "post-processing"):
        hf.postprocess(seggpt)

    @dataclasses.dataclass
    class CustomOutput(T.utils.ModelOutput):
        logits: torch.Tensor | None = None

    with raises(TypeError, "CustomOutput", "rankseg.RankSEG"):
        hf.postprocess(CustomOutput(logits=torch.randn(1, 3, 8, 8)))
    with raises(TypeError, "list", "mapping"):
        hf.postprocess([torch.randn(1, 3, 8, 8)])


def semantic(logits):
    return T.modeling_outputs.SemanticSegmenterOutput(logits=logits)


@pytest.mark.parametrize(
    "outputs,kwargs,exc,parts",
    [
        (semantic([[1.0]]), {}, TypeError, ["outputs.logits", "torch.Tensor"]),
        (semantic(torch.randn(2, 3, 8)), {}, ValueError, ["outputs.logits", "(2, 3, 8)"]),
        (semantic(torch.randint(0, 3, (1, 3, 8, 8))), {}, TypeError, ["outputs.logits", "floating"]),
        (semantic(torch.full((1, 3, 8, 8), float("nan"))), {}, ValueError, ["outputs.logits", "NaN"]),
        (semantic(torch.randn(2, 3, 8, 8)), {"target_sizes": [(4, 4)]}, ValueError, ["target_sizes", "1", "2"]),
        (semantic(torch.randn(1, 3, 8, 8)), {"target_sizes": [(0, 4)]}, ValueError, ["target_sizes[0]", "positive"]),
        (semantic(torch.randn(1, 3, 8, 8)), {"target_sizes": [(4.5, 4)]}, TypeError, ["target_sizes[0]"]),
        (semantic(torch.randn(1, 3, 8, 8)), {"target_sizes": (8, 8)}, TypeError, ["target_sizes", "[(8, 8)]"]),
        (semantic(torch.randn(1, 3, 8, 8)), {"target_sizes": "8x8"}, TypeError, ["target_sizes"]),
        (semantic(torch.randn(1, 3, 8, 8)), {"target_sizes": torch.tensor([[4.0, 4.0]])}, TypeError, ["target_sizes"]),
        (
            semantic(torch.randn(1, 3, 8, 8)),
            {"target_sizes": torch.tensor([4, 4])},
            ValueError,
            ["target_sizes", "(batch, 2)"],
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(outputs, kwargs, exc, parts):
    with raises(exc, *parts):
        hf.restore_semantic_probs(outputs, **kwargs)


def test_detr_like_output_without_known_class_asks_for_model():
    _, outputs = model_run("detr")

    class Renamed(type(outputs)):
        pass

    Renamed.__module__ = type(outputs).__module__
    renamed = Renamed(**dict(outputs.items()))
    with raises(ValueError, "model=", "no-object"):
        hf.restore_semantic_probs(renamed)
    model, _ = model_run("detr")
    assert hf.restore_semantic_probs(renamed, model=model)[0].shape[0] == outputs.logits.shape[-1] - 1


def test_bad_rankseg_kwargs():
    _, outputs = model_run("segformer")
    with raises(TypeError, "rankseg_kwargs", "list"):
        hf.postprocess(outputs, rankseg_kwargs=["dice"])
    with raises(ValueError, "metric"):
        hf.postprocess(outputs, rankseg_kwargs={"metric": "f1"})


def test_example_script_runs():
    """The documented example is real code: it must run and find the processor's map again."""
    from pathlib import Path

    script = Path(__file__).parents[1] / "examples" / "transformers_segformer.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert "agrees with the processor's map on 100.00% of pixels" in result.stdout


def compiled(fn, backend="eager"):
    """fn under torch.compile(fullgraph=True): any graph break in our code is an error."""
    torch._dynamo.reset()
    return torch.compile(fn, fullgraph=True, backend=backend)


def all_equal(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", ["segformer", "mask2former", "detr", "conditional_detr"])
def test_fullgraph_compile_equals_eager(name):
    model, outputs = model_run(name)
    restore = lambda o: hf.restore_semantic_probs(o, model=model, target_sizes=SIZES)
    post = lambda o: hf.postprocess(o, model=model, target_sizes=SIZES)
    assert all_equal(compiled(restore)(outputs), restore(outputs))
    assert all_equal(compiled(post)(outputs), post(outputs))


def test_fullgraph_compile_of_mappings_and_single_class():
    _, outputs = model_run("mask2former")
    fields = {
        "class_queries_logits": outputs.class_queries_logits,
        "masks_queries_logits": outputs.masks_queries_logits,
    }
    post = lambda o: hf.postprocess(o, model={"model_type": "mask2former"})
    assert all_equal(compiled(post)(fields), post(fields))
    _, single = model_run("segformer", classes=1)
    post = lambda o: hf.postprocess({"logits": o.logits}, target_sizes=SIZES)
    assert all_equal(compiled(post)(single), post(single))


def test_aot_eager_compile_matches_eager():
    """aot_eager decomposes resize and softmax, so probabilities agree to rounding; masks here are equal."""
    _, outputs = model_run("maskformer")
    restore = lambda o: hf.restore_semantic_probs(o, target_sizes=SIZES)
    for c, e in zip(compiled(restore, "aot_eager")(outputs), restore(outputs)):
        assert torch.allclose(c, e, atol=1e-5)
    post = lambda o: hf.postprocess(o, target_sizes=SIZES)
    assert all_equal(compiled(post, "aot_eager")(outputs), post(outputs))


def test_non_finite_logits_eager_and_compiled():
    _, outputs = model_run("segformer")
    logits = outputs.logits.clone()
    logits[1, 2, 3, 4] = float("nan")
    bad = semantic(logits)
    # Eager calls name the field; compiled ones cannot read values without a graph break, and the solver's own
    # check rejects the NaN probabilities that softmax makes of the NaN logit.
    with raises(ValueError, "outputs.logits", "NaN"):
        hf.postprocess(bad)
    try:
        with raises(ValueError, "probs", "finite values in [0, 1]", "image 1"):
            compiled(hf.postprocess)(bad)
    finally:
        # An error raised by an op inside a compiled graph leaves the graph's no_grad mode on (torch 2.13, 2.14):
        # restore it, so that later tests see grad mode as they expect.
        torch.set_grad_enabled(True)


def query_fields(name) -> tuple[type, str, str]:
    """A query-based run's output class, its class-logits field and its mask-logits field."""
    _, outputs = model_run(name)
    if name == "detr":
        return type(outputs), "logits", "pred_masks"
    return type(outputs), "class_queries_logits", "masks_queries_logits"


@pytest.mark.parametrize("name", ["mask2former", "detr"])
@pytest.mark.parametrize("in_float64", [0, 1], ids=["class_logits", "mask_logits"])
def test_mixed_float_dtypes_compute_in_the_promoted_dtype(name, in_float64):
    cls, *names = query_fields(name)
    fields = {f: getattr(model_run(name)[1], f) for f in names}
    mixed = {**fields, names[in_float64]: fields[names[in_float64]].double()}  # the other stays float32
    as_float64 = cls(**{f: v.double() for f, v in fields.items()})
    probs = hf.restore_semantic_probs(cls(**mixed), target_sizes=SIZES)
    assert all(p.dtype == torch.float64 for p in probs)
    assert all_equal(probs, hf.restore_semantic_probs(as_float64, target_sizes=SIZES))
    assert all_equal(hf.postprocess(cls(**mixed), target_sizes=SIZES), hf.postprocess(as_float64, target_sizes=SIZES))


@pytest.mark.parametrize("name", ["mask2former", "detr"])
def test_fields_on_different_devices_name_both(name):
    cls, class_field, mask_field = query_fields(name)
    _, outputs = model_run(name)
    split = cls(**{class_field: getattr(outputs, class_field), mask_field: getattr(outputs, mask_field).to("meta")})
    for fn in (hf.restore_semantic_probs, hf.postprocess):
        with raises(ValueError, f"outputs.{class_field} is on cpu", f"outputs.{mask_field} is on meta"):
            fn(split)


@pytest.mark.parametrize("name", ["segformer", "mask2former"])
def test_meta_outputs_give_shapes(name):
    """Meta tensors have no values to check: shapes go through, as they do through rankseg.RankSEG."""
    _, outputs = model_run(name)
    meta = type(outputs)(**{k: v.to("meta") for k, v in outputs.items() if k != "loss" and isinstance(v, torch.Tensor)})
    probs = hf.restore_semantic_probs(meta, target_sizes=SIZES)
    masks = hf.postprocess(meta, target_sizes=SIZES)
    assert [p.shape for p in probs] == [(6, *size) for size in SIZES] and probs[0].device.type == "meta"
    assert [m.shape for m in masks] == SIZES and masks[0].device.type == "meta"
