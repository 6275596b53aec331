"""The CUDA kernels against the CPU kernels, bit for bit, and the promises of a CUDA call: its stream, graph
capture, devices, untouched inputs. Skipped where no CUDA kernels or no GPU are usable."""

from __future__ import annotations

import pytest
import torch
from devices import needs_cuda
from hypothesis import given, settings
from hypothesis import strategies as st
from probability_inputs import DTYPES, make_probs, rma_cases

import rankseg

pytestmark = needs_cuda

cases = rma_cases(max_side=40)


def on_gpu(probs: torch.Tensor) -> torch.Tensor:
    """The same values in the same memory layout on the GPU (a strided view stays strided)."""
    out = torch.empty_strided(probs.shape, probs.stride(), dtype=probs.dtype, device="cuda")
    return out.copy_(probs)


def assert_same(cpu_result: torch.Tensor, gpu_result: torch.Tensor) -> None:
    assert gpu_result.device.type == "cuda"
    assert gpu_result.dtype == cpu_result.dtype and gpu_result.shape == cpu_result.shape
    diff = (gpu_result.cpu() != cpu_result).nonzero()
    assert diff.shape[0] == 0, f"{diff.shape[0]} elements differ, first at {diff[:5].tolist()}"


def both(probs: torch.Tensor, **kwargs):
    return rankseg.rankseg(probs, **kwargs), rankseg.rankseg(on_gpu(probs), **kwargs)


@settings(max_examples=300, deadline=None)
@given(cases)
def test_multilabel_equals_cpu(case):
    probs = make_probs(case["kind"], case["shape"], case["seed"], case["dtype"], case["layout"])
    cpu, gpu = both(
        probs, metric=case["metric"], smooth=case["smooth"], output_mode="multilabel", pruning_prob=case["pruning_prob"]
    )
    assert_same(cpu, gpu)


@settings(max_examples=300, deadline=None)
@given(cases.filter(lambda c: c["shape"][1] >= 2), st.sampled_from(["max_score", "void"]))
def test_multiclass_equals_cpu(case, policy):
    probs = make_probs(case["kind"], case["shape"], case["seed"], case["dtype"], case["layout"])
    extra = {"unassigned_policy": policy, "void_index": 255} if policy == "void" else {}
    cpu, gpu = both(probs, metric=case["metric"], smooth=case["smooth"], pruning_prob=case["pruning_prob"], **extra)
    assert_same(cpu, gpu)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["uniform", "fields", "softmax", "clustered"])
@pytest.mark.parametrize("metric,smooth", [("dice", 0.0), ("dice", 1.0), ("iou", 0.0), ("dice", 1e-4)])
def test_large_images_equal_cpu(dtype, kind, metric, smooth):
    """Hundreds of thousands of pixels per class: bands, histogram refinements and many blocks per class."""
    probs = make_probs(kind, (2, 4, 384, 416), seed=7, dtype=dtype)
    for mode in ("multilabel", "multiclass"):
        assert_same(*both(probs, metric=metric, smooth=smooth, output_mode=mode, pruning_prob=0.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric,smooth", [("dice", 0.0), ("iou", 0.0), ("dice", 1.0)])
def test_band_too_large_equals_cpu(dtype, metric, smooth):
    """Nearly every pixel just below 1/2: the band exceeds both the CPU's and the GPU's storage."""
    g = torch.Generator().manual_seed(7)
    n = 3 * 2**20 + 5  # several CPU chunks
    x = 0.3 + 0.2 * torch.rand(2, 1, n, generator=g, dtype=torch.float64)
    x[:, :, : n // 50] = 0.5 + 0.5 * torch.rand(2, 1, n // 50, generator=g, dtype=torch.float64)
    probs = x.to(dtype)
    assert_same(*both(probs, metric=metric, smooth=smooth, output_mode="multilabel"))


def test_concentrated_values_equal_cpu():
    g = torch.Generator().manual_seed(3)
    probs = (0.3 + torch.rand(1, 2, 50_000, generator=g, dtype=torch.float64) * 1e-5).to(torch.float32)
    for smooth in (0.0, 1.0):
        assert_same(*both(probs, smooth=smooth, output_mode="multilabel", pruning_prob=0.0))


@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_float16_subnormals_and_negative_zero_equal_cpu(mode):
    g = torch.Generator().manual_seed(4)
    tiny = torch.arange(1024, dtype=torch.int16).view(torch.float16)
    probs = tiny[torch.randperm(1024, generator=g)].reshape(1, 1, 32, 32)
    probs = torch.cat([probs, 1 - probs], dim=1)
    probs = torch.where(probs == 0, torch.full_like(probs, -0.0), probs)
    assert_same(*both(probs, output_mode=mode, pruning_prob=0.0))


def test_many_classes_equal_cpu():
    """More classes than the merge stages in shared memory at once."""
    probs = make_probs("softmax", (1, 1500, 9, 11), seed=2)
    for policy in ("max_score", "void"):
        extra = {"unassigned_policy": policy, "void_index": -1} if policy == "void" else {}
        assert_same(*both(probs, pruning_prob=0.0, **extra))


def test_empty_batch_single_pixel_single_class():
    for shape in [(0, 3, 4, 5), (1, 1, 1), (2, 3, 1), (1, 2, 1, 1)]:
        probs = make_probs("uniform", shape, seed=1)
        assert_same(*both(probs, output_mode="multilabel", pruning_prob=0.0))
        if shape[1] >= 2:
            assert_same(*both(probs, pruning_prob=0.0))


@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_side_stream_and_untouched_input(mode):
    probs = make_probs("fields", (3, 5, 200, 300), seed=5).cuda()
    before = probs.clone()
    expected = rankseg.rankseg(probs.cpu(), output_mode=mode)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = rankseg.rankseg(probs, output_mode=mode)
    torch.cuda.current_stream().wait_stream(stream)
    assert got.device == probs.device
    assert_same(expected, got)
    assert torch.equal(probs, before)


@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_cuda_graph_capture_and_replay(mode):
    static = make_probs("fields", (2, 6, 128, 160), seed=1).cuda()
    segmenter = rankseg.RankSEG(metric="dice", output_mode=mode)
    segmenter(static, check_values=False)  # warm-up outside capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = segmenter(static, check_values=False)
    for seed in (2, 3):
        fresh = make_probs("fields", (2, 6, 128, 160), seed=seed)
        static.copy_(fresh)
        graph.replay()
        torch.cuda.synchronize()
        assert_same(segmenter(fresh), out)


def test_value_check_inside_capture_is_refused():
    static = make_probs("fields", (1, 3, 32, 32), seed=1).cuda()
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(ValueError, match="check_values=False"), torch.cuda.graph(graph):
        rankseg.rankseg(static)


@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.25, 1.5])
def test_invalid_values_name_image_and_class(mode, bad):
    probs = make_probs("softmax", (3, 4, 10, 12), seed=0).cuda()
    probs[2, 1, 3, 4] = bad
    probs[2, 3, 0, 0] = bad
    with pytest.raises(ValueError, match="image 2, class 1 has NaN"):
        rankseg.rankseg(probs, output_mode=mode)
    rankseg.rankseg(probs, output_mode=mode, check_values=False)  # unchecked: no error, no crash


def test_second_gpu_if_present():
    if torch.cuda.device_count() < 2:
        pytest.skip("one GPU")
    probs = make_probs("fields", (2, 4, 64, 64), seed=3)
    got = rankseg.rankseg(probs.to("cuda:1"))
    assert got.device == torch.device("cuda:1")
    assert_same(rankseg.rankseg(probs), got)


@pytest.mark.slow
def test_more_than_2_31_elements():
    """(1, 3, 2^30 + 7) float16: more than 2^31 elements, one class of more than 2^30 pixels."""
    n = 2**30 + 7
    g = torch.Generator(device="cuda").manual_seed(0)
    probs = torch.rand(1, 3, n, generator=g, device="cuda", dtype=torch.float16)
    gpu = rankseg.rankseg(probs, output_mode="multilabel", pruning_prob=0.0)
    cpu = rankseg.rankseg(probs.cpu(), output_mode="multilabel", pruning_prob=0.0)
    for a, b in zip(gpu.reshape(-1).split(2**28), cpu.reshape(-1).split(2**28)):
        assert torch.equal(a.cpu(), b)


def outputs_on_gpu(outputs):
    """A model output object with every tensor field moved to the GPU."""
    return type(outputs)(**{k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in outputs.items()})


def assert_gpu_solution(probs_gpu, probs_cpu, masks_gpu, **rankseg_kwargs):
    """Restored probabilities agree with the CPU's up to kernel rounding, stay on the GPU, and the GPU masks
    are the CPU solver's masks for those very probabilities."""
    assert probs_gpu.device.type == "cuda" and masks_gpu.device.type == "cuda"
    torch.testing.assert_close(probs_gpu.cpu(), probs_cpu, atol=1e-5, rtol=1e-5)
    if probs_gpu.numel():
        assert_same(rankseg.rankseg(probs_gpu.cpu(), **rankseg_kwargs), masks_gpu)
    else:  # no instances: nothing to solve
        assert masks_gpu.numel() == 0


@pytest.mark.parametrize("name", ["segformer", "mask2former", "detr"])
def test_transformers_postprocess_on_gpu(name):
    hf = pytest.importorskip("rankseg.integration.transformers")
    from tiny_transformers import model_run

    model, outputs = model_run(name)
    sizes = [(70, 90), (64, 64), (70, 90)]
    probs_cpu = hf.restore_semantic_probs(outputs, model=model, target_sizes=sizes)
    gpu = outputs_on_gpu(outputs)
    probs_gpu = hf.restore_semantic_probs(gpu, model=model, target_sizes=sizes)
    masks_gpu = hf.postprocess(gpu, model=model, target_sizes=sizes)
    for p_gpu, p_cpu, m_gpu in zip(probs_gpu, probs_cpu, masks_gpu):
        assert_gpu_solution(p_gpu[None], p_cpu[None], m_gpu[None])


def test_sam_adapters_on_gpu():
    from tiny_sam import sam1_outputs, sam2_outputs, sam3_outputs

    from rankseg.integration import sam

    multilabel = {"output_mode": "multilabel"}
    out = outputs_on_gpu(sam1_outputs())
    sizes = {
        "original_sizes": [(100, 120), (80, 60), (100, 120)],
        "reshaped_input_sizes": [(64, 54), (64, 48), (64, 54)],
    }
    adapter = sam.Sam1(pad_size=(64, 64))
    cpu_probs = adapter.restore_mask_probs(sam1_outputs(), **sizes)
    for p, c, m in zip(adapter.restore_mask_probs(out, **sizes), cpu_probs, adapter.postprocess(out, **sizes)):
        assert_gpu_solution(p, c, m, **multilabel)
    for constraint in (False, True):
        adapter = sam.Sam2(apply_non_overlapping_constraints=constraint)
        out = outputs_on_gpu(sam2_outputs())
        original = {"original_sizes": [(100, 120), (80, 60), (100, 120)]}
        cpu_probs = adapter.restore_mask_probs(sam2_outputs(), **original)
        for p, c, m in zip(
            adapter.restore_mask_probs(out, **original), cpu_probs, adapter.postprocess(out, **original)
        ):
            assert_gpu_solution(p, c, m, **multilabel)
    adapter = sam.Sam3()
    out = outputs_on_gpu(sam3_outputs())
    sizes = {"target_sizes": [(40, 50), (30, 30), (40, 50)]}
    for r_gpu, r_cpu, done in zip(
        adapter.restore_instance_mask_probs(out, **sizes),
        adapter.restore_instance_mask_probs(sam3_outputs(), **sizes),
        adapter.postprocess_instance(out, **sizes),
    ):
        assert r_gpu["boxes"].device.type == "cuda"
        torch.testing.assert_close(r_gpu["boxes"].cpu(), r_cpu["boxes"])
        assert_gpu_solution(r_gpu["mask_probs"][None], r_cpu["mask_probs"][None], done["masks"][None], **multilabel)
    for p, c, m in zip(
        adapter.restore_semantic_mask_probs(out, **sizes),
        adapter.restore_semantic_mask_probs(sam3_outputs(), **sizes),
        adapter.postprocess_semantic(out, **sizes),
    ):
        assert_gpu_solution(p[None], c[None], m[None], **multilabel)
