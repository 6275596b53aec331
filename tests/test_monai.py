"""rankseg.integration.monai with the real MONAI package: the docs recipe (UNet, sliding-window inference,
decollate, post-transforms, DiceMetric) against rankseg.rankseg on the same probabilities, AsDiscrete's output
conventions (the argmax and TR solvers must give exactly AsDiscrete's output), metadata, keys and errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from devices import DEVICES

import rankseg
from rankseg.fitting import ClassReport, FittedRankSEG, load

monai = pytest.importorskip("monai")

from monai.data import MetaTensor, set_track_meta  # noqa: E402
from monai.networks.nets import UNet  # noqa: E402
from monai.transforms import Activations, Activationsd, AsDiscrete, Compose  # noqa: E402

from rankseg.integration.monai import RankSEG, RankSEGd  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 3


def logits(shape=(CLASSES, 12, 10, 6), seed=0, bias=(2.0, 0.0, -1.0)):
    """Random per-voxel logits (C, *spatial), background favoured: RankSEG and argmax disagree on some voxels."""
    z = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float()
    return z + torch.tensor(bias[: shape[0]] + (0.0,) * (shape[0] - len(bias))).view(-1, *[1] * (len(shape) - 1))


def meta_tensor(x, seed=0):
    """x as a MetaTensor with a non-trivial affine, a file name and one recorded operation."""
    affine = torch.diag(torch.tensor([0.8, 0.8, 2.5, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([-10.0, 4.0, float(seed)])
    t = MetaTensor(x, affine=affine, meta={"filename_or_obj": f"case{seed}.nii.gz"})
    t.applied_operations = [{"class": "Spacingd", "orig_size": (12, 10, 6)}]
    return t


def direct(probs, **options):
    """rankseg.rankseg on one image (C, *spatial), without MONAI: int64 labels (*spatial) or bool masks."""
    return rankseg.rankseg(probs.as_tensor() if isinstance(probs, MetaTensor) else probs, **options)


def assert_same_metadata(out, img):
    assert isinstance(out, MetaTensor)
    assert torch.equal(out.affine, img.affine)
    assert out.meta["filename_or_obj"] == img.meta["filename_or_obj"]
    assert out.applied_operations == img.applied_operations


class ConfidentUNet(torch.nn.Module):
    """A randomly initialised 3-D UNet whose logits are sharpened and biased towards the background: the raw
    network's near-uniform probabilities are decided alike by RankSEG and argmax, a trained network's are not."""

    def __init__(self):
        super().__init__()
        self.unet = UNet(spatial_dims=3, in_channels=1, out_channels=CLASSES, channels=(4, 8), strides=(2,))
        self.register_buffer("bias", torch.tensor([2.0, 0.0, -1.0]).view(1, CLASSES, 1, 1, 1))

    def forward(self, x):
        return 4 * self.unet(x) + self.bias


def volume_case(i):
    """One training-style case: an image (1, 32, 32, 24) with an affine and a label map with all classes."""
    g = torch.Generator().manual_seed(100 + i)
    affine = torch.diag(torch.tensor([1.0, 1.0, 2.0, 1.0], dtype=torch.float64)) * (1 + i)
    image = MetaTensor(torch.rand(1, 32, 32, 24, generator=g), affine=affine, meta={"filename_or_obj": f"vol{i}"})
    label = MetaTensor(torch.randint(0, CLASSES, (1, 32, 32, 24), generator=g).float(), affine=affine)
    return {"image": image, "label": label}


# ---- the recipe of docs/medical.md -----------------------------------------------------------------------------


def test_monai_recipe_decides_as_rankseg_on_the_same_probabilities():
    torch.manual_seed(0)
    model = ConfidentUNet()
    cases = [volume_case(i) for i in range(3)]

    # [docs/medical.md: MONAI recipe]
    from monai.data import DataLoader, Dataset, decollate_batch
    from monai.inferers import sliding_window_inference
    from monai.metrics import DiceMetric
    from monai.transforms import Activationsd, AsDiscreted, Compose

    from rankseg.integration.monai import RankSEGd

    loader = DataLoader(Dataset(cases), batch_size=2)  # cases: dicts of "image" and "label" (1, H, W, D)
    post = Compose(
        [
            Activationsd(keys="pred", softmax=True),
            RankSEGd(keys="pred", metric="dice", to_onehot=3),  # instead of AsDiscreted(argmax=True, to_onehot=3)
            AsDiscreted(keys="label", to_onehot=3),
        ]
    )
    dice_metric = DiceMetric(include_background=False, reduction="mean")
    results = []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            batch["pred"] = sliding_window_inference(
                batch["image"], roi_size=(16, 16, 16), sw_batch_size=4, predictor=model
            )
            items = [post(item) for item in decollate_batch(batch)]  # one dict per image: masks (3, H, W, D)
            dice_metric(y_pred=[item["pred"] for item in items], y=[item["label"] for item in items])
            results.extend(items)
    mean_dice = dice_metric.aggregate().item()
    # [end of MONAI recipe]

    # The same network outputs, decided by rankseg.rankseg directly; the per-image Dice computed by hand.
    expected, dices, differs_from_argmax = [], [], False
    with torch.no_grad():
        for batch in loader:
            out = sliding_window_inference(batch["image"], roi_size=(16, 16, 16), sw_batch_size=4, predictor=model)
            for probs in torch.softmax(out.as_tensor(), dim=1):
                labels = direct(probs[None])[0]
                differs_from_argmax |= not torch.equal(labels, probs.argmax(0))
                expected.append(labels)
    assert differs_from_argmax  # otherwise argmax in place of RankSEG would pass
    assert len(results) == len(cases)
    for case, item, labels in zip(cases, results, expected):
        pred = item["pred"]
        assert pred.dtype == torch.float32 and pred.shape == (CLASSES, 32, 32, 24)
        assert torch.equal(pred.as_tensor(), F.one_hot(labels, CLASSES).movedim(-1, 0).float())
        assert torch.equal(pred.affine, case["image"].affine)
        assert pred.meta["filename_or_obj"] == case["image"].meta["filename_or_obj"]
        truth = case["label"].as_tensor()[0].long()
        for k in range(1, CLASSES):  # include_background=False; every class is present in the truth
            p, t = labels == k, truth == k
            dices.append(2 * (p & t).sum().item() / (p.sum() + t.sum()).item())
    assert mean_dice == pytest.approx(sum(dices) / len(dices), abs=1e-6)


def test_docs_page_shows_the_tested_code():
    page = (ROOT / "docs" / "medical.md").read_text()
    source = Path(__file__).read_text()
    includes = re.findall(r"```\{literalinclude\} \.\./tests/test_monai\.py\n(.*?)```", page, re.S)
    assert len(includes) == 2, "docs/medical.md shows the recipe and the fitted predictor from this file"
    for include in includes:
        options = {k: v.strip('"') for k, v in re.findall(r"^:([\w-]+): (.*)$", include, re.M)}
        for marker in (options["start-after"], options["end-before"]):
            assert source.count(marker) == 1, marker
    assert re.search(r"^## nnU-Net$", page, re.M)


# ---- what AsDiscrete returns ----------------------------------------------------------------------------------


def as_input(x, kind):
    return {"meta": meta_tensor(x), "tensor": x.clone(), "numpy": x.numpy().copy()}[kind]


@pytest.mark.parametrize("track_meta", [True, False])
@pytest.mark.parametrize("kind", ["meta", "tensor", "numpy"])
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({"solver": "argmax"}, {"argmax": True}),
        ({"solver": "argmax", "to_onehot": CLASSES}, {"argmax": True, "to_onehot": CLASSES}),
        ({"solver": "argmax", "to_onehot": CLASSES + 2}, {"argmax": True, "to_onehot": CLASSES + 2}),
        ({"solver": "TR", "output_mode": "multilabel"}, {"threshold": 0.5}),
    ],
    ids=["argmax", "onehot", "onehot-wider", "threshold"],
)
def test_argmax_and_threshold_solvers_return_exactly_what_asdiscrete_returns(ours, theirs, kind, track_meta):
    probs = torch.softmax(logits(), 0)  # no value is exactly 0.5, where TR (> 0.5) and threshold (>= 0.5) differ
    set_track_meta(track_meta)
    try:
        out = RankSEG(metric="acc", **ours)(as_input(probs, kind))
        ref = AsDiscrete(**theirs)(as_input(probs, kind))
    finally:
        set_track_meta(True)
    assert type(out) is type(ref) and out.dtype == ref.dtype and out.shape == ref.shape
    assert torch.equal(torch.as_tensor(out), torch.as_tensor(ref))
    if isinstance(ref, MetaTensor):
        assert torch.equal(out.affine, ref.affine) and out.meta.keys() == ref.meta.keys()
        for key, value in ref.meta.items():
            assert torch.equal(out.meta[key], value) if isinstance(value, torch.Tensor) else out.meta[key] == value
        assert out.applied_operations == ref.applied_operations


# ---- RankSEG's decisions, metadata and device ----------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_multiclass_labels_are_rankseg_with_metadata_and_device(device):
    x = meta_tensor(logits()).to(device)
    out = Compose([Activations(softmax=True), RankSEG(metric="iou", dtype=torch.uint8)])(x)
    labels = direct(torch.softmax(x.as_tensor(), 0)[None], metric="iou")
    assert not torch.equal(labels[0], x.as_tensor().argmax(0))
    assert out.shape == (1, *x.shape[1:]) and out.dtype == torch.uint8 and out.device == x.device
    assert torch.equal(out.as_tensor(), labels.to(torch.uint8))
    assert_same_metadata(out, x)


@pytest.mark.parametrize("device", DEVICES)
def test_multilabel_masks_after_sigmoid_are_rankseg_with_metadata_and_device(device):
    x = meta_tensor(logits(seed=1) - 1).to(device)
    out = Compose([Activations(sigmoid=True), RankSEG(metric="dice", output_mode="multilabel")])(x)
    masks = direct(torch.sigmoid(x.as_tensor())[None], output_mode="multilabel")[0]
    assert not torch.equal(masks, x.as_tensor() > 0)  # RankSEG is not the 0.5 threshold here
    assert out.shape == x.shape and out.dtype == torch.float32 and out.device == x.device
    assert torch.equal(out.as_tensor(), masks.float())
    assert_same_metadata(out, x)


def test_onehot_is_the_one_hot_of_the_labels_and_void_is_in_no_channel():
    probs = meta_tensor(torch.softmax(logits(seed=2), 0))
    labels = RankSEG()(probs)
    onehot = RankSEG(to_onehot=CLASSES)(probs)
    expected = F.one_hot(labels.as_tensor()[0].long(), CLASSES).movedim(-1, 0).float()
    assert torch.equal(onehot.as_tensor(), expected)
    assert torch.equal(onehot.as_tensor(), AsDiscrete(to_onehot=CLASSES)(labels).as_tensor())  # MONAI's one-hot
    wider = RankSEG(to_onehot=CLASSES + 1, dtype=torch.bool)(probs)
    assert wider.dtype == torch.bool and torch.equal(wider[:CLASSES].float(), expected) and not wider[CLASSES].any()
    # Every class's largest probability <= pruning_prob: all pixels void, in no channel of the one-hot.
    flat = torch.full((CLASSES, 4, 4, 2), 1 / CLASSES)
    void = {"unassigned_policy": "void", "pruning": "max_prob"}
    assert torch.equal(RankSEG(**void)(flat).as_tensor(), torch.full((1, 4, 4, 2), 255.0))
    assert not RankSEG(to_onehot=CLASSES, **void)(flat).any()


# ---- dictionary transform -------------------------------------------------------------------------------------


def test_dictionary_transform_writes_each_key_in_place_and_allows_missing_keys():
    pred, aux = (meta_tensor(torch.softmax(logits(seed=s), 0), s) for s in (3, 4))
    label = meta_tensor(torch.zeros(1, 12, 10, 6))
    data = {"pred": pred, "aux": aux, "label": label}
    out = RankSEGd(keys=["pred", "aux"], metric="dice")(data)
    for key, probs in (("pred", pred), ("aux", aux)):
        assert torch.equal(out[key].as_tensor(), direct(probs[None]).float())
        assert_same_metadata(out[key], probs)
    assert out["label"] is label and data["pred"] is pred  # other keys untouched, the input dict not modified
    only_pred = {"pred": pred, "label": label}
    with pytest.raises(KeyError, match="aux"):
        RankSEGd(keys=["pred", "aux"])(only_pred)
    out = RankSEGd(keys=["pred", "aux"], allow_missing_keys=True)(only_pred)
    assert set(out) == {"pred", "label"} and torch.equal(out["pred"].as_tensor(), direct(pred[None]).float())


# ---- fitted segmenters ----------------------------------------------------------------------------------------


def tiny_split(n=12, side=8, seed=5):
    """Smooth random logits (n, C, side, side, 4), miscalibrated x2, and labels drawn from the calibrated model."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, CLASSES, 2, 2, 2, generator=g, dtype=torch.float64) * 1.5
    z = F.interpolate(z, size=(side, side, 4), mode="trilinear", align_corners=False)
    u = torch.rand(n, 1, side, side, 4, generator=g, dtype=torch.float64)
    labels = (z.softmax(1).cumsum(1) < u).sum(1).clamp(max=CLASSES - 1)
    return (2 * z).softmax(1).float(), labels


def test_fitted_rankseg_decides_inside_the_transforms(tmp_path):
    val_probs, val_labels = tiny_split()
    # [docs/medical.md: fitted]
    fitted = rankseg.RankSEG(metric="dice").fit(val_probs, val_labels)  # (B, C, H, W, D), (B, H, W, D)
    post = Compose([Activationsd(keys="pred", softmax=True), RankSEGd(keys="pred", segmenter=fitted, to_onehot=3)])
    # [end of fitted]
    x = meta_tensor(logits(seed=6))
    image = torch.softmax(x, 0)
    expected = F.one_hot(fitted(image.as_tensor()[None])[0], CLASSES).movedim(-1, 0).float()
    assert torch.equal(post({"pred": x})["pred"].as_tensor(), expected)
    fitted.save(tmp_path / "fitted.json")
    # Also one fitted by hand that mixes RankSEG and argmax, so that using either alone would fail.
    mixed = FittedRankSEG(rankseg.RankSEG(), None, torch.tensor([True, False, True]), 0.0, 0.0, [], 0.0)
    mixed.classes = [ClassReport(k, bool(mixed.rankseg_classes[k]), 0.0, 0.0, 0) for k in range(CLASSES)]
    by_mixed = mixed(image.as_tensor()[None])
    assert not torch.equal(by_mixed, direct(image[None])) and not torch.equal(by_mixed, image.as_tensor().argmax(0))
    for segmenter in (fitted, load(tmp_path / "fitted.json"), mixed):
        out = RankSEGd(keys="pred", segmenter=segmenter)({"pred": image})["pred"]
        assert torch.equal(out.as_tensor(), segmenter(image.as_tensor()[None]).float())
        assert_same_metadata(out, image)
    with pytest.raises(ValueError, match=r"data\['pred'\]: this RankSEG was fitted on 3 classes"):
        RankSEGd(keys="pred", segmenter=fitted)({"pred": torch.softmax(logits((4, 8, 8, 4)), 0)})


# ---- errors --------------------------------------------------------------------------------------------------


def test_input_errors_name_the_input():
    probs = torch.softmax(logits(), 0)
    with pytest.raises(TypeError, match=r"img must be a torch.Tensor or NumPy array"):
        RankSEG()(probs.tolist())
    with pytest.raises(TypeError, match=r"img must hold floating-point probabilities, got torch.int64.*Activations"):
        RankSEG()(probs.argmax(0, keepdim=True))
    with pytest.raises(ValueError, match=r"img must be one image's probabilities \(C, \*spatial\).*got shape \(3,\)"):
        RankSEG()(probs[:, 0, 0, 0])
    with pytest.raises(ValueError, match=r"no empty dim, got shape \(3, 0, 10, 6\)"):
        RankSEG()(probs[:, :0])
    with pytest.raises(ValueError, match=r"spatial_dims=3.*got shape \(2, 3, 12, 10, 6\).*decollate_batch"):
        RankSEG(spatial_dims=3)(probs.expand(2, *probs.shape))
    with pytest.raises(ValueError, match=r"img: probs must contain only finite values in \[0, 1\].*logits"):
        RankSEG()(logits())
    with pytest.raises(ValueError, match=r"data\['pred'\]: probs must contain only finite values"):
        RankSEGd(keys="pred")({"pred": logits()})
    with pytest.raises(ValueError, match=r"img: output_mode='multiclass' needs at least 2 classes"):
        RankSEG()(probs[:1])
    with pytest.raises(ValueError, match=r"to_onehot=2 has fewer channels than the 3 classes of img"):
        RankSEG(to_onehot=2)(probs)
    assert torch.equal(RankSEG(spatial_dims=3)(probs).as_tensor(), direct(probs[None]).float())  # the right rank


def test_constructor_errors_name_the_argument():
    with pytest.raises(TypeError, match="either segmenter or RankSEG options, not both: got segmenter and metric"):
        RankSEG(rankseg.RankSEG(), metric="iou")
    with pytest.raises(TypeError, match=r"segmenter must be a rankseg.RankSEG.*got str 'dice'.*metric='dice'"):
        RankSEG("dice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected solver parameter"):  # rankseg's own option checks
        RankSEGd(keys="pred", argmax=True)
    with pytest.raises(TypeError, match="to_onehot must be None or a number of classes"):
        RankSEG(to_onehot=True)
    with pytest.raises(ValueError, match="to_onehot must be at least 1, got 0"):
        RankSEG(to_onehot=0)
    with pytest.raises(ValueError, match="to_onehot applies to output_mode='multiclass' only"):
        RankSEG(output_mode="multilabel", to_onehot=3)
    with pytest.raises(TypeError, match=r"dtype must be a torch.dtype"):
        RankSEG(dtype=np.float32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"dtype=torch.bool cannot hold multiclass labels"):
        RankSEG(dtype=torch.bool)
    with pytest.raises(ValueError, match="spatial_dims must be None or a positive int, got 0"):
        RankSEG(spatial_dims=0)
    with pytest.raises(ValueError, match="keys must be non empty"):  # MONAI's own key checks
        RankSEGd(keys=[])


def test_import_rankseg_does_not_import_monai():
    code = "import sys, rankseg, rankseg.integration; assert 'monai' not in sys.modules, 'monai was imported'"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
