"""The compiled RMA kernels against the sorted float64 reference (tests/reference.py)."""

from __future__ import annotations

import pytest
import torch
from devices import DEVICES
from hypothesis import given, settings
from hypothesis import strategies as st
from optimality import GAIN_MERGE, active_flags, as_bcn, assert_labels_optimal, assert_masks_optimal
from probability_inputs import DTYPES, KINDS, LAYOUTS, laid_out, make_probs, rma_cases

import rankseg

cases = rma_cases(max_side=9)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=300, deadline=None)
@given(cases)
def test_multilabel_matches_reference(device, case):
    probs = make_probs(case["kind"], case["shape"], case["seed"], case["dtype"], case["layout"])
    solve = rankseg.RankSEG(case["metric"], case["smooth"], "multilabel", pruning_prob=case["pruning_prob"])
    masks = solve(probs.to(device)).cpu()
    assert masks.shape == probs.shape and masks.dtype == torch.bool
    assert_masks_optimal(probs, masks, case["metric"], case["smooth"], case["pruning_prob"])


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=300, deadline=None)
@given(
    cases.filter(lambda c: c["shape"][1] >= 2), st.sampled_from(["max_score", "void"]), st.sampled_from([255, -1, 7])
)
def test_multiclass_matches_reference(device, case, policy, void_index):
    probs = make_probs(case["kind"], case["shape"], case["seed"], case["dtype"], case["layout"])
    common = {"metric": case["metric"], "smooth": case["smooth"], "pruning_prob": case["pruning_prob"]}
    extra = {"unassigned_policy": policy, "void_index": void_index} if policy == "void" else {}
    labels = rankseg.rankseg(probs.to(device), output_mode="multiclass", **common, **extra, **GAIN_MERGE).cpu()
    assert labels.shape == (probs.shape[0], *probs.shape[2:]) and labels.dtype == torch.int64
    masks = rankseg.rankseg(probs.to(device), output_mode="multilabel", **common).cpu()
    assert_masks_optimal(probs, masks, case["metric"], case["smooth"], case["pruning_prob"])
    assert_labels_optimal(
        probs,
        labels,
        masks,
        active_flags(probs, case["pruning_prob"]),
        case["metric"],
        case["smooth"],
        policy,
        void_index,
    )


@pytest.mark.parametrize("kind", ["uniform", "fields", "softmax"])
@pytest.mark.parametrize("metric,smooth", [("dice", 0.0), ("dice", 1.0), ("iou", 0.0), ("iou", 1.0)])
def test_large_images(kind, metric, smooth):
    """Hundreds of thousands of pixels per class: many pixels share each histogram bin."""
    probs = make_probs(kind, (2, 4, 256, 320), seed=7, dtype=torch.float32)
    masks = rankseg.rankseg(probs, metric, smooth, "multilabel", pruning_prob=0.0)
    assert_masks_optimal(probs, masks, metric, smooth, 0.0)
    labels = rankseg.rankseg(probs, metric, smooth, "multiclass", pruning_prob=0.0, **GAIN_MERGE)
    assert_labels_optimal(probs, labels, masks, active_flags(probs, 0.0), metric, smooth)


def test_concentrated_values_in_one_bin():
    """All probabilities inside one histogram bin: the refinement must sort it exactly."""
    g = torch.Generator().manual_seed(3)
    probs = (0.3 + torch.rand(1, 2, 50_000, generator=g, dtype=torch.float64) * 1e-5).to(torch.float32)
    masks = rankseg.rankseg(probs, output_mode="multilabel", pruning_prob=0.0)
    assert_masks_optimal(probs, masks, "dice", 0.0, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric,smooth", [("dice", 0.0), ("iou", 0.0), ("dice", 1.0)])
def test_band_too_large_to_copy(dtype, metric, smooth):
    """Nearly every pixel just below 1/2 and a few above: the band between the first threshold and 1/2 holds
    more than half the input's bytes, too much to copy, so the search reads every pixel instead."""
    g = torch.Generator().manual_seed(7)
    n = 40_000
    x = 0.3 + 0.2 * torch.rand(2, 1, n, generator=g, dtype=torch.float64)
    x[:, :, : n // 50] = 0.5 + 0.5 * torch.rand(2, 1, n // 50, generator=g, dtype=torch.float64)
    probs = x.to(dtype)
    masks = rankseg.rankseg(probs, metric, smooth, output_mode="multilabel")
    assert masks.any()
    assert_masks_optimal(probs, masks, metric, smooth, 0.5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_negative_zero_reads_as_zero(dtype, mode, device):
    """-0.0 has the sign bit set, which the first pass's range check notices; it must still be a valid 0."""
    probs = make_probs("sparse", (2, 3, 20, 30), seed=3, dtype=dtype).to(device)
    signed = torch.where(probs == 0, torch.full_like(probs, -0.0), probs)
    assert torch.signbit(signed).any()
    assert torch.equal(rankseg.rankseg(signed, output_mode=mode), rankseg.rankseg(probs, output_mode=mode))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_non_contiguous_pixels_give_the_contiguous_result(layout, mode, device):
    """Images whose pixels are not adjacent are copied to class-major order one at a time: the same masks."""
    probs = laid_out(make_probs("fields", (3, 5, 40, 36), seed=6).to(device), layout)
    assert probs.stride(-1) != 1
    assert torch.equal(rankseg.rankseg(probs, output_mode=mode), rankseg.rankseg(probs.contiguous(), output_mode=mode))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_invalid_value_names_its_image_and_class(layout, mode, device):
    probs = laid_out(make_probs("softmax", (3, 4, 10, 12), seed=0).to(device), layout)
    probs[2, 1, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="image 2, class 1 has NaN"):
        rankseg.rankseg(probs, output_mode=mode)


@pytest.mark.parametrize("smooth", [0.0, 1.0], ids=["threshold-passes", "histogram"])
def test_few_huge_classes_use_chunks(threads, smooth):
    """One class of three chunks (2**20 pixels) is split across two threads (test_solver_paths.py proves the
    branch); results must not change."""
    probs = make_probs("uniform", (1, 1, 3 * 2**20 + 17), seed=11)
    torch.set_num_threads(2)
    two = rankseg.rankseg(probs, smooth=smooth, output_mode="multilabel", pruning_prob=0.0)
    torch.set_num_threads(1)
    one = rankseg.rankseg(probs, smooth=smooth, output_mode="multilabel", pruning_prob=0.0)
    assert torch.equal(one, two)
    assert_masks_optimal(probs, two, "dice", smooth, 0.0)


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_thread_count_does_not_change_results(threads, mode):
    probs = make_probs("fields", (3, 6, 70, 90), seed=5)
    torch.set_num_threads(1)
    one = rankseg.rankseg(probs, output_mode=mode, pruning_prob=0.1)
    torch.set_num_threads(2)
    assert torch.equal(one, rankseg.rankseg(probs, output_mode=mode, pruning_prob=0.1))


@pytest.mark.parametrize("spatial", [(37,), (5, 6, 7), (2, 3, 4, 5)])
def test_any_number_of_spatial_dims(spatial):
    probs = make_probs("softmax", (2, 3, *spatial), seed=1)
    labels = rankseg.rankseg(probs)
    assert labels.shape == (2, *spatial)
    flat = rankseg.rankseg(probs.reshape(2, 3, -1))
    assert torch.equal(labels.reshape(2, -1), flat)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_empty_batch(mode, device):
    probs = torch.rand(0, 3, 4, 5, device=device)
    out = rankseg.rankseg(probs, output_mode=mode)
    assert out.shape == ((0, 4, 5) if mode == "multiclass" else (0, 3, 4, 5))


def test_single_pixel_and_single_class():
    assert rankseg.rankseg(torch.tensor([[[0.7]]]), output_mode="multilabel").tolist() == [[[True]]]
    assert rankseg.rankseg(torch.tensor([[[0.4]]]), output_mode="multilabel").tolist() == [[[False]]]  # pruned
    assert rankseg.rankseg(torch.tensor([[[0.4]]]), output_mode="multilabel", pruning_prob=0.0).tolist() == [[[True]]]


def test_all_zero_and_all_one_classes():
    probs = torch.stack([torch.zeros(10), torch.ones(10), torch.full((10,), 0.5)]).unsqueeze(0)
    masks = rankseg.rankseg(probs, output_mode="multilabel", pruning_prob=0.0)
    assert masks[0, 0].sum() == 0 and masks[0, 1].all()
    assert_masks_optimal(probs, masks, "dice", 0.0, 0.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_input_is_not_modified(mode, device):
    probs = laid_out(make_probs("fields", (2, 4, 33, 35), seed=2).to(device), "channels_last")
    before = probs.clone()
    rankseg.rankseg(probs, output_mode=mode)
    assert torch.equal(probs, before) and probs.stride() == before.stride()


@pytest.mark.parametrize("device", DEVICES)
def test_expanded_input_with_zero_strides(device):
    probs = torch.tensor([0.2, 0.7, 0.1], device=device).reshape(1, 3, 1, 1).expand(2, 3, 40, 50)
    labels = rankseg.rankseg(probs)
    assert (labels == 1).all()


@pytest.mark.slow
def test_more_than_2_31_pixels():
    """2**31 + 3 float16 pixels in one class; checked against block-end scores from exact value counts."""
    n = 2**31 + 3
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(1, 1, n, generator=g, dtype=torch.float16)
    masks = rankseg.rankseg(probs, output_mode="multilabel", pruning_prob=0.0)
    bits = probs.view(torch.int16).reshape(-1)
    counts = sum(torch.bincount(part.to(torch.int32), minlength=2**15) for part in bits.split(2**27))
    values = torch.arange(2**15, dtype=torch.int16).view(torch.float16).to(torch.float64)
    order = torch.argsort(values, descending=True)
    cnt, val = counts[order].to(torch.float64), values[order]
    keep = cnt > 0
    cnt, val = cnt[keep], val[keep]
    tau, sel = torch.cumsum(cnt, 0), torch.cumsum(cnt * val, 0)
    mu = sel[-1]
    scores = 2 * sel / (mu + tau + 1)
    best = int(torch.argmax(scores))
    assert int(torch.count_nonzero(masks)) == int(tau[best])  # .sum() would widen 2^31 bools to int64
    threshold = val[best].item()
    for ours, part in zip(masks.reshape(-1).split(2**27), probs.reshape(-1).split(2**27)):
        assert torch.equal(ours, part >= threshold)


@pytest.mark.parametrize("metric,smooth", [("dice", 0.0), ("dice", 2.0), ("iou", 0.0)])
@pytest.mark.parametrize("policy", ["max_score", "void"])
def test_equal_gains_go_to_the_lowest_class(metric, smooth, policy):
    """Classes 1 and 3 are identical, so every pixel they contest (or both could take) is an exact tie."""
    x = make_probs("fields", (1, 1, 40, 50), seed=9, dtype=torch.float64)[0, 0] * 0.6 + 0.2
    probs = torch.stack([1 - x, x, torch.full_like(x, 0.05), x]).unsqueeze(0)
    extra = {"unassigned_policy": policy} if policy == "void" else {}
    labels = rankseg.rankseg(probs, metric, smooth, pruning_prob=0.0, **extra)
    assert (labels == 1).any()
    assert not (labels == 3).any()


@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_float16_subnormals_are_read_exactly(mode):
    """Every subnormal float16 value: the optimal cut lies among them, so misreading any would show."""
    g = torch.Generator().manual_seed(4)
    tiny = torch.arange(1024, dtype=torch.int16).view(torch.float16)  # 0 and all 1023 subnormals
    probs = tiny[torch.randperm(1024, generator=g)].reshape(1, 1, 32, 32)
    probs = torch.cat([probs, 1 - probs], dim=1)
    masks = rankseg.rankseg(probs, output_mode="multilabel", pruning_prob=0.0)
    assert masks[0, 0].any()
    assert_masks_optimal(probs, masks, "dice", 0.0, 0.0)
    if mode == "multiclass":
        labels = rankseg.rankseg(probs, pruning_prob=0.0)
        assert_labels_optimal(probs, labels, masks, active_flags(probs, 0.0), "dice", 0.0)


def test_concurrent_calls_from_threads_agree():
    """The compiled core releases the GIL and keeps no global state: concurrent calls give the same masks."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = [make_probs("fields", (2, 5, 60, 70), seed=s) for s in range(6)]
    expected = [rankseg.rankseg(p, metric="iou") for p in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: rankseg.rankseg(p, metric="iou"), inputs * 3))
    assert all(torch.equal(g, expected[i % 6]) for i, g in enumerate(got))


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    dtype=st.sampled_from(DTYPES),
    metric=st.sampled_from(["dice", "iou"]),
    smooth=st.sampled_from([0.0, 1.0]),
    pixels=st.integers(1, 3000),
    seed=st.integers(0, 2**31 - 1),
)
def test_shuffling_pixels_shuffles_the_result(kind, dtype, metric, smooth, pixels, seed):
    """Every sum that decides a cut is an exact integer (csrc/exact_sum.h), so the order in which pixels are
    read cannot matter: a permuted input gives the permuted masks and labels, bit for bit."""
    probs = make_probs(kind, (2, 4, pixels), seed, dtype)
    order = torch.randperm(pixels, generator=torch.Generator().manual_seed(seed))
    for mode in ("multilabel", "multiclass"):
        out = rankseg.rankseg(probs, metric, smooth, mode, pruning_prob=0.2)
        shuffled = rankseg.rankseg(probs[..., order], metric, smooth, mode, pruning_prob=0.2)
        assert torch.equal(shuffled, out[..., order])


@pytest.mark.parametrize("solver", ["RMA", "exact"])
@pytest.mark.parametrize("kind", ["softmax", "ties", "fields"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_argmax_pruning_keeps_exactly_the_classes_argmax_predicts(solver, kind, layout):
    """pruning='argmax': a class is active iff torch.argmax picks it at some pixel of the image (ties to the
    lowest class); active classes keep their unpruned masks, and the merge is the usual one."""
    probs = make_probs(kind, (3, 7, 13, 11), seed=8, dtype=torch.float64, layout=layout)
    winners = torch.nn.functional.one_hot(as_bcn(probs).argmax(1), 7).amax(1).bool()  # (B, C)
    masks = rankseg.rankseg(probs, "dice", 0.0, "multilabel", solver, pruning_prob=0.0) & winners[:, :, None, None]
    labels = rankseg.rankseg(probs, "dice", 0.0, "multiclass", solver, pruning="argmax", merge="gain")
    assert_labels_optimal(probs, labels, masks, winners, "dice", 0.0)


def test_argmax_pruning_is_for_multiclass_output():
    with pytest.raises(TypeError, match="'pruning'"):
        rankseg.RankSEG(output_mode="multilabel", pruning="argmax")
