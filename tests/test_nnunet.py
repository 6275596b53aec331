"""rankseg.integration.nnunet against nnU-Net itself: synthetic cases exported by nnU-Net's own
export_prediction_from_logits(save_probabilities=True) (resampling, crop reversal and transposition included),
then segment_folder with nnU-Net's rule (argmax; a 0.5 threshold and ordered overwrite for regions) must give
nnU-Net's segmentation files byte for byte, through nnU-Net's writers and through rankseg's own, and with RankSEG
the labels rankseg.rankseg gives on the saved probabilities."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import rankseg

pytest.importorskip("nnunetv2")
sitk = pytest.importorskip("SimpleITK")
nibabel = pytest.importorskip("nibabel")

from nnunetv2.imageio.reader_writer_registry import recursive_find_reader_writer_by_name  # noqa: E402
from nnunetv2.inference.export_prediction import export_prediction_from_logits  # noqa: E402
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager  # noqa: E402

from rankseg.integration import nnunet  # noqa: E402
from rankseg.integration.nnunet import segment_folder  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

# Listed out of order on purpose: nnU-Net's channel i is the i-th label in sorted order, not in file order.
LABELS = {"background": 0, "tumour": 2, "liver": 1}
# BraTS-style nested regions: voxels in several regions take the label of the last one (regions_class_order).
REGIONS = {"background": 0, "whole tumour": [1, 2, 3], "tumour core": [2, 3], "enhancing tumour": [3]}
REGION_ORDER = [1, 2, 3]


def dataset_json(regions: bool = False) -> dict:
    dataset = {"channel_names": {"0": "CT"}, "labels": REGIONS if regions else LABELS, "numTraining": 1}
    if regions:
        dataset["regions_class_order"] = REGION_ORDER
    return {**dataset, "file_ending": ".nii.gz"}


def plans_json(writer: str, transpose_forward: list[int]) -> dict:
    """The plans entries nnU-Net's export reads: writer, axis order, and how probabilities are resampled."""
    configuration = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": [8, 8, 8],
        "spacing": [2.0, 1.0, 1.0],
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "architecture": {"network_class_name": "unused", "arch_kwargs": {}, "_kw_requires_import": []},
    }
    return {
        "dataset_name": "Dataset999_Synthetic",
        "plans_name": "nnUNetPlans",
        "image_reader_writer": writer,
        "label_manager": "LabelManager",
        "transpose_forward": transpose_forward,
        "transpose_backward": [transpose_forward.index(i) for i in range(3)],
        "configurations": {"3d_fullres": configuration},
    }


def write_image(path: Path, writer: str, shape: tuple, seed: int) -> None:
    """An image with a non-trivial geometry (anisotropic, off-origin, not RAS-oriented), in the writer's library."""
    data = np.random.default_rng(seed).random(shape, dtype=np.float32)
    if writer.startswith("SimpleITK"):
        image = sitk.GetImageFromArray(data)
        if len(shape) == 3:
            image.SetSpacing((0.8, 0.7, 2.5))
            image.SetOrigin((-3.0, 4.0, 10.0))
            image.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, -1))
        else:
            image.SetSpacing((0.8, 0.7))
            image.SetOrigin((-3.0, 4.0))
        sitk.WriteImage(image, str(path))
    else:
        affine = np.array([[0, -0.8, 0, 10], [0.7, 0, 0, -5], [0, 0, 2.5, 3], [0, 0, 0, 1]], dtype=np.float64)
        nibabel.save(nibabel.Nifti1Image(data.transpose(2, 1, 0), affine), str(path))


def export_case(folder: Path, case: str, *, writer="SimpleITKIO", regions=False, shape=(10, 12, 9), seed=0) -> None:
    """What nnUNetv2_predict --save_probabilities leaves for one case: nnU-Net's own export of network logits
    for an image read by nnU-Net's reader, cropped to a bounding box, transposed and resampled (the logits live
    in that network geometry), plus the dataset.json and plans.json it writes beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    image = folder.parent / f"{case}_image.nii.gz"
    write_image(image, writer, shape, seed)
    data, properties = recursive_find_reader_writer_by_name(writer)().read_images([str(image)])
    transpose = [0, 2, 1] if data.shape[1] > 1 else [0, 1, 2]  # 2-D images (1, y, x) keep their axes
    before = [data.shape[1:][i] for i in transpose]
    bbox = [[0, 1] if s == 1 else [1, s - 1] for s in before]
    properties["shape_before_cropping"] = before
    properties["bbox_used_for_cropping"] = bbox
    properties["shape_after_cropping_and_before_resampling"] = [hi - lo for lo, hi in bbox]
    dataset, plans = dataset_json(regions), plans_json(writer, transpose)
    manager = PlansManager(plans)
    network_shape = [max(1, round(0.75 * (hi - lo))) for lo, hi in bbox]
    g = torch.Generator().manual_seed(seed)
    channels = len(REGION_ORDER) if regions else len(LABELS)
    logits = 2 * torch.randn(channels, *network_shape, generator=g)
    logits += torch.tensor([-1.0, 0.0, 0.5] if regions else [2.0, 0.0, -1.0]).view(-1, 1, 1, 1)
    export_prediction_from_logits(
        logits, properties, manager.get_configuration("3d_fullres"), manager, dataset, str(folder / case), True
    )
    (folder / "dataset.json").write_text(json.dumps(dataset))
    (folder / "plans.json").write_text(json.dumps(plans))


def saved_probs(folder: Path, case: str) -> torch.Tensor:
    with np.load(folder / f"{case}.npz") as data:
        return torch.from_numpy(data["probabilities"])


def read_labels(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def assert_same_file(ours: Path, theirs: Path) -> None:
    """Same name, and the same image: voxel type, geometry and values (read back), and the same bytes."""
    assert ours.name == theirs.name
    a, b = sitk.ReadImage(str(ours)), sitk.ReadImage(str(theirs))
    assert a.GetPixelIDTypeAsString() == b.GetPixelIDTypeAsString()
    assert (a.GetSize(), a.GetSpacing(), a.GetOrigin(), a.GetDirection()) == (
        b.GetSize(),
        b.GetSpacing(),
        b.GetOrigin(),
        b.GetDirection(),
    )
    assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize("through", ["nnunet", "rankseg"])
@pytest.mark.parametrize(
    "writer, shape",
    [
        pytest.param("SimpleITKIO", (10, 12, 9), id="SimpleITKIO-3d"),
        pytest.param("SimpleITKIO", (12, 9), id="SimpleITKIO-2d"),
        pytest.param("SimpleITKIOWithReorient", (10, 12, 9), id="SimpleITKIOWithReorient"),
        pytest.param("NibabelIO", (10, 12, 9), id="NibabelIO"),
        pytest.param("NibabelIOWithReorient", (10, 12, 9), id="NibabelIOWithReorient"),
    ],
)
def test_argmax_gives_nnunets_own_files(tmp_path, monkeypatch, writer, shape, through):
    export_case(tmp_path / "nnunet", "case_001", writer=writer, shape=shape)
    if through == "rankseg":  # as where nnunetv2 is not installed: rankseg's own SimpleITK and nibabel writers
        monkeypatch.setattr(nnunet, "_nnunet_registry", lambda: None)
    written = segment_folder(tmp_path / "nnunet", tmp_path / "ours", metric="acc", solver="argmax", progress=False)
    assert written == [tmp_path / "ours" / "case_001.nii.gz"]
    assert_same_file(written[0], tmp_path / "nnunet" / "case_001.nii.gz")


@pytest.mark.parametrize("writer", ["SimpleITKIO", "SimpleITKIOWithReorient", "NibabelIO", "NibabelIOWithReorient"])
def test_without_plans_the_writer_follows_the_properties(tmp_path, writer):
    export_case(tmp_path / "nnunet", "case_001", writer=writer)
    (tmp_path / "nnunet" / "plans.json").unlink()
    written = segment_folder(tmp_path / "nnunet", tmp_path / "ours", metric="acc", solver="argmax", progress=False)
    assert_same_file(written[0], tmp_path / "nnunet" / "case_001.nii.gz")
    assert not (tmp_path / "ours" / "plans.json").exists()
    assert json.loads((tmp_path / "ours" / "dataset.json").read_text()) == dataset_json()


def test_docs_recipe(tmp_path, monkeypatch):
    export_case(tmp_path / "predictions", "case_001")
    monkeypatch.chdir(tmp_path)
    # [docs/medical.md: nnU-Net]
    from rankseg.integration.nnunet import segment_folder

    written = segment_folder("predictions", "predictions_rankseg", metric="dice")
    # [end of nnU-Net recipe]
    assert written == [Path("predictions_rankseg/case_001.nii.gz")]
    expected = rankseg.rankseg(saved_probs(tmp_path / "predictions", "case_001").unsqueeze(0))[0].numpy()
    assert np.array_equal(read_labels(written[0]), expected)


@pytest.mark.parametrize("metric", ["dice", "iou"])
def test_labels_are_rankseg_of_the_saved_probabilities(tmp_path, metric):
    for i in range(2):
        export_case(tmp_path / "nnunet", f"case_{i:03d}", shape=(10 + i, 12, 9), seed=i)
    written = segment_folder(tmp_path / "nnunet", tmp_path / "ours", metric=metric, progress=False)
    assert [p.name for p in written] == ["case_000.nii.gz", "case_001.nii.gz"]
    for path in written:
        case = path.name.removesuffix(".nii.gz")
        probs = saved_probs(tmp_path / "nnunet", case)
        expected = rankseg.rankseg(probs.unsqueeze(0), metric=metric)[0].numpy()
        ours, theirs = read_labels(path), read_labels(tmp_path / "nnunet" / path.name)
        assert ours.dtype == theirs.dtype == np.uint8
        assert np.array_equal(ours, expected)  # channel i is label i: the labels 0, 1, 2 sorted
        assert not np.array_equal(ours, theirs)  # RankSEG decided otherwise than nnU-Net's argmax somewhere
        a, b = sitk.ReadImage(str(path)), sitk.ReadImage(str(tmp_path / "nnunet" / path.name))
        assert (a.GetSpacing(), a.GetOrigin(), a.GetDirection()) == (b.GetSpacing(), b.GetOrigin(), b.GetDirection())
    assert json.loads((tmp_path / "ours" / "dataset.json").read_text()) == dataset_json()


def test_regions_threshold_gives_nnunets_own_file(tmp_path):
    export_case(tmp_path / "nnunet", "case_001", regions=True)
    written = segment_folder(tmp_path / "nnunet", tmp_path / "ours", metric="acc", solver="TR", progress=False)
    assert_same_file(written[0], tmp_path / "nnunet" / "case_001.nii.gz")


def test_regions_are_rankseg_masks_overwritten_in_order(tmp_path):
    export_case(tmp_path / "nnunet", "case_001", regions=True)
    probs = saved_probs(tmp_path / "nnunet", "case_001")
    written = segment_folder(tmp_path / "nnunet", tmp_path / "ours", progress=False)
    masks = rankseg.rankseg(probs.unsqueeze(0), output_mode="multilabel")[0].numpy()
    expected = np.zeros(probs.shape[1:], dtype=np.uint8)
    for mask, label in zip(masks, REGION_ORDER):
        expected[mask] = label
    ours = read_labels(written[0])
    assert np.array_equal(ours, expected)
    assert set(np.unique(ours)) == {0, 1, 2, 3}  # nested regions: every label survives the overwrite
    assert not np.array_equal(masks, probs.numpy() > 0.5)  # RankSEG decided otherwise than the threshold


def test_output_may_be_the_input_folder(tmp_path):
    source = tmp_path / "nnunet"
    export_case(source, "case_001")
    dataset_bytes = (source / "dataset.json").read_bytes()
    expected = rankseg.rankseg(saved_probs(source, "case_001").unsqueeze(0))[0].numpy()
    with pytest.raises(ValueError, match=r"case_001\.nii\.gz exists \(1 of the files to write do\)"):
        segment_folder(source, source, progress=False)
    written = segment_folder(source, source, overwrite=True, progress=False)
    assert written == [source / "case_001.nii.gz"]
    assert np.array_equal(read_labels(written[0]), expected)  # nnU-Net's segmentation replaced
    assert (source / "dataset.json").read_bytes() == dataset_bytes  # its own dataset.json left as it was


def test_command(tmp_path, capsys):
    export_case(tmp_path / "nnunet", "case_001")
    probs = saved_probs(tmp_path / "nnunet", "case_001")
    expected = rankseg.rankseg(probs.unsqueeze(0), metric="iou")[0].numpy()
    nnunet.main([str(tmp_path / "nnunet"), str(tmp_path / "ours"), "--metric", "iou", "--no-progress"])
    assert "1 segmentation written to" in capsys.readouterr().out
    assert np.array_equal(read_labels(tmp_path / "ours" / "case_001.nii.gz"), expected)

    # as the rankseg command adds it; the plans given by path, the outputs replaced
    parser = argparse.ArgumentParser(prog="rankseg")
    nnunet.add_command(parser.add_subparsers(dest="command", required=True))
    plans = tmp_path / "plans-elsewhere.json"
    (tmp_path / "nnunet" / "plans.json").rename(plans)
    argv = ["nnunet", str(tmp_path / "nnunet"), str(tmp_path / "ours"), "--plans", str(plans), "--no-progress"]
    args = parser.parse_args([*argv, "--overwrite"])
    args.run(args, args.parser)
    expected = rankseg.rankseg(probs.unsqueeze(0), metric="dice")[0].numpy()
    assert np.array_equal(read_labels(tmp_path / "ours" / "case_001.nii.gz"), expected)

    args = parser.parse_args(argv)  # without --overwrite: refused, without a traceback
    with pytest.raises(SystemExit) as exit_info:
        args.run(args, args.parser)
    assert str(exit_info.value.code).startswith("rankseg nnunet: ")
    assert "case_001.nii.gz exists" in str(exit_info.value.code)


def test_segment_folder_input_errors(tmp_path):
    source, out = tmp_path / "nnunet", tmp_path / "ours"
    export_case(source, "case_001")
    run = lambda **kw: segment_folder(source, out, progress=False, **kw)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no <case>\.npz: run nnUNetv2_predict with --save_probabilities"):
        segment_folder(tmp_path / "empty", out)
    with pytest.raises(ValueError, match=r"'.*missing', which is not one"):
        segment_folder(tmp_path / "missing", out)
    with pytest.raises(ValueError, match="not JSON"):
        run(dataset_json=source / "case_001.pkl")
    with pytest.raises(TypeError, match="not both"):
        run(segmenter=rankseg.RankSEG(), solver="exact")
    with pytest.raises(TypeError, match="output_mode is set by the model"):
        run(output_mode="multilabel")
    with pytest.raises(ValueError, match="needs output_mode='multiclass'"):
        run(segmenter=rankseg.RankSEG(output_mode="multilabel"))
    with pytest.raises(ValueError, match="void"):
        run(unassigned_policy="void")
    with pytest.raises(TypeError, match="dataset_json must be a path or a dict"):
        run(dataset_json=3)

    regions_without_order = {**dataset_json(regions=True)}
    del regions_without_order["regions_class_order"]
    with pytest.raises(ValueError, match=r"dataset_json declares regions .* no 'regions_class_order'"):
        run(dataset_json=regions_without_order)
    with pytest.raises(ValueError, match=r"case_001\.npz has 3 channels, but dataset.json declares 4 labels"):
        run(dataset_json={**dataset_json(), "labels": {**LABELS, "vessel": 3}})

    probs = saved_probs(source, "case_001").numpy()
    np.savez_compressed(source / "case_001.npz", probabilities=probs[:, :-1])
    with pytest.raises(ValueError, match=r"case_001\.npz has probabilities of spatial shape .* case_001\.pkl"):
        run()
    np.savez_compressed(source / "case_001.npz", probabilities=8 * probs - 4)  # logits, not probabilities
    with pytest.raises(ValueError, match=r"case_001\.npz: .*looks like logits"):
        run(overwrite=True)
    np.savez_compressed(source / "case_001.npz", softmax=probs)
    with pytest.raises(ValueError, match=r"case_001\.npz holds \['softmax'\]"):
        run(overwrite=True)
    np.savez_compressed(source / "case_001.npz", probabilities=probs)
    properties = pickle.loads((source / "case_001.pkl").read_bytes())
    del properties["sitk_stuff"]
    (source / "case_001.pkl").write_bytes(pickle.dumps(properties))
    with pytest.raises(ValueError, match=r"case_001\.pkl lacks 'sitk_stuff'"):
        run(overwrite=True)
    (source / "case_001.pkl").unlink()
    with pytest.raises(ValueError, match=r"case_001\.npz has no case_001\.pkl beside it"):
        run(overwrite=True)
    (source / "dataset.json").unlink()
    with pytest.raises(ValueError, match=r"no dataset.json in .*nnunet .*--dataset-json"):
        run(overwrite=True)
