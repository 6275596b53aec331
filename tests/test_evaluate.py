"""rankseg evaluate on a folder these tests write: its numbers against an independent confusion matrix, its
files (JSON, PNG), workers, and errors that name the file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import rankseg
from rankseg import cli, evaluate

CLASSES, IGNORE = 4, 255


def write_folder(folder, images=7, seed=0):
    """Outputs as .npz (logits), .pt (probs) and .npy (probs, with a PNG label beside it); some ignored pixels."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for i in range(images):
        h, w = 12 + 2 * i, 16
        truth = np.repeat(rng.integers(0, CLASSES, (h // 4 + 1, 1)), 4, 0)[:h] * np.ones((1, w), dtype=np.int64)
        logits = 2.0 * np.eye(CLASSES)[truth].transpose(2, 0, 1) + rng.normal(0, 1.5, (CLASSES, h, w))
        label = truth.copy()
        label[0, : i + 1] = IGNORE
        probs = torch.softmax(torch.tensor(logits, dtype=torch.float32), 0).numpy()
        if i % 3 == 0:
            np.savez(folder / f"case{i}.npz", logits=logits.astype(np.float32), label=label)
        elif i % 3 == 1:
            torch.save({"probs": torch.tensor(probs), "label": torch.tensor(label)}, folder / f"case{i}.pt")
        else:
            np.save(folder / f"case{i}.npy", probs)
            Image.fromarray(label.astype(np.uint8)).save(folder / f"case{i}.png")
    return folder


def reference(folder, segmenter):
    """Per method: (per-image mean Dice, dataset Dice from a confusion matrix summed by np.add.at)."""
    out = {}
    for name in ("argmax", "rankseg"):
        summed = np.zeros((CLASSES, CLASSES))
        image_means = []
        for f in evaluate.find_outputs(folder):
            probs, label = evaluate.load_output(f)
            pred = probs.argmax(0) if name == "argmax" else segmenter(probs.unsqueeze(0))[0]
            t, p = label.numpy().ravel(), pred.numpy().ravel()
            keep = t != IGNORE
            cm = np.zeros((CLASSES, CLASSES))
            np.add.at(cm, (t[keep], p[keep]), 1)
            summed += cm
            tp, predicted, truth = np.diag(cm), cm.sum(0), cm.sum(1)
            present = truth > 0
            image_means.append(np.mean(2 * tp[present] / (predicted + truth)[present]))
        tp, predicted, truth = np.diag(summed), summed.sum(0), summed.sum(1)
        scored = predicted + truth > 0
        out[name] = (np.mean(image_means), np.mean(2 * tp[scored] / (predicted + truth)[scored]), image_means)
    return out


def test_scores_equal_an_independent_confusion_matrix(tmp_path):
    folder = write_folder(tmp_path / "outputs")
    report = evaluate.evaluate(folder, ignore_index=IGNORE, progress=False)
    ref = reference(folder, rankseg.RankSEG())
    for name in ("argmax", "rankseg"):
        assert report[name]["images"] == 7
        assert report[name]["per_image"]["dice"] == pytest.approx(ref[name][0], rel=1e-12)
        assert report[name]["dataset"]["dice"] == pytest.approx(ref[name][1], rel=1e-12)
    diffs = np.array(ref["rankseg"][2]) - np.array(ref["argmax"][2])
    paired = report["rankseg"]["vs_argmax"]["dice"]
    assert paired["mean"] == pytest.approx(diffs.mean(), rel=1e-9)
    assert paired["se"] == pytest.approx(diffs.std(ddof=1) / math.sqrt(len(diffs)), rel=1e-9)
    assert (paired["better"], paired["worse"]) == ((diffs > 1e-12).sum(), (diffs < -1e-12).sum())


def test_options_reach_rankseg(tmp_path):
    folder = write_folder(tmp_path / "outputs")
    report = evaluate.evaluate(folder, metric="iou", ignore_index=IGNORE, options={"merge": "gain"}, progress=False)
    ref = reference(folder, rankseg.RankSEG(metric="iou", merge="gain"))
    assert report["rankseg"]["per_image"]["dice"] == pytest.approx(ref["rankseg"][0], rel=1e-12)


def test_workers_give_the_same_report(tmp_path):
    folder = write_folder(tmp_path / "outputs")
    one = evaluate.evaluate(folder, ignore_index=IGNORE, progress=False)
    two = evaluate.evaluate(folder, ignore_index=IGNORE, workers=2, progress=False)
    assert evaluate.to_json(one) == evaluate.to_json(two)


def test_fitted_rankseg_is_reported(tmp_path):
    folder = write_folder(tmp_path / "outputs")
    validation = write_folder(tmp_path / "validation", images=3, seed=1)
    report = evaluate.evaluate(folder, ignore_index=IGNORE, fit_on=validation, progress=False)
    fitted = rankseg.RankSEG().fit(list(evaluate._Folder(evaluate.find_outputs(validation), None)), ignore_index=IGNORE)
    ref = reference(folder, fitted)  # "rankseg" of the reference is the fitted predictor here
    assert report["fitted"]["dataset"]["dice"] == pytest.approx(ref["rankseg"][1], rel=1e-12)
    assert set(report["fitted"]["vs_argmax"]) == {"dice", "iou"}


def test_command_writes_json_and_a_chart(tmp_path, capsys):
    folder = write_folder(tmp_path / "outputs")
    out_json, out_png = tmp_path / "report.json", tmp_path / "gains.png"
    cli.main(["evaluate", str(folder), "--ignore-index", "255", "--json", str(out_json), "--plot", str(out_png)])
    text = capsys.readouterr().out
    assert "rankseg" in text and "per class" in text
    report = json.loads(out_json.read_text())
    for name in ("argmax", "rankseg"):
        for average in ("per_image", "dataset"):
            assert set(report[name][average]) == {"dice", "iou"}
            assert all(0 <= report[name][average][m] <= 1 for m in ("dice", "iou"))
        assert len(report[name]["per_class"]["dataset"]["dice"]) == CLASSES
    with Image.open(out_png) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    gains = (
        np.array(report["rankseg"]["per_class"]["dataset"]["dice"]) - report["argmax"]["per_class"]["dataset"]["dice"]
    )
    bars = (pixels == (31, 119, 180)).all(1).sum()  # the first method's colour
    assert (bars > 0) == bool(np.any(np.abs(gains) > 0))


def test_list_file_and_labels_folder(tmp_path):
    folder = write_folder(tmp_path / "outputs", images=3)
    labels = tmp_path / "labels"
    labels.mkdir()
    (folder / "case2.png").rename(labels / "case2.png")
    listing = tmp_path / "list.txt"
    listing.write_text("# outputs\noutputs/case2.npy\noutputs/case0.npz\n")
    report = evaluate.evaluate(listing, labels=labels, ignore_index=IGNORE, progress=False)
    assert report["argmax"]["images"] == 2


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda f: np.savez(f / "case0.npz", logits=np.zeros((4, 12, 16), np.float32)), "case0.npz.*no 'label'"),
        (
            lambda f: np.savez(f / "case0.npz", logits=np.zeros((4, 12, 16), np.float32), label=np.zeros((12, 15))),
            "case0.npz.*integer",
        ),
        (
            lambda f: np.savez(
                f / "case0.npz", logits=np.zeros((4, 12, 16), np.float32), label=np.zeros((12, 15), np.int64)
            ),
            "case0.npz.*spatial shape",
        ),
        (
            lambda f: np.savez(
                f / "case0.npz", logits=np.full((4, 12, 16), np.nan, np.float32), label=np.zeros((12, 16), np.int64)
            ),
            "case0.npz.*NaN",
        ),
        (
            lambda f: np.savez(
                f / "case0.npz", logits=np.zeros((4, 12, 16), np.float32), label=np.full((12, 16), 9, np.int64)
            ),
            "case0.npz.*label 9",
        ),
    ],
)
def test_errors_name_the_file(tmp_path, damage, message):
    folder = write_folder(tmp_path / "outputs", images=2)
    damage(folder)
    with pytest.raises(ValueError, match=message):
        evaluate.evaluate(folder, ignore_index=IGNORE, progress=False)


def test_command_reports_errors_without_a_traceback(tmp_path):
    with pytest.raises(SystemExit, match=r"rankseg evaluate: .*neither a folder"):
        cli.main(["evaluate", str(tmp_path / "missing")])


def test_more_errors_name_the_file_or_the_flag(tmp_path):
    folder = write_folder(tmp_path / "outputs", images=2)
    np.savez(folder / "case9.npz", probs=np.full((1, 4, 4), 0.5, np.float32), label=np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match=r"case9.npz.*C >= 2"):
        evaluate.evaluate(folder, ignore_index=IGNORE, progress=False)
    (folder / "case9.npz").unlink()
    np.savez(folder / "case9.npz", probs=np.full((3, 4, 4), 1 / 3, np.float32), label=np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match=r"case9.npz.*3 classes"):  # the others have 4
        evaluate.evaluate(folder, ignore_index=IGNORE, progress=False)
    (folder / "case9.npz").unlink()
    torch.save({"probs": np.zeros((4, 4, 4)), "label": np.zeros((4, 4))}, folder / "case9.pt")
    with pytest.raises(ValueError, match=r"case9.pt.*dict of tensors"):
        evaluate.evaluate(folder, ignore_index=IGNORE, progress=False)
    listing = tmp_path / "list.txt"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "extra.png")
    listing.write_text("outputs/extra.png\n")
    with pytest.raises(ValueError, match="not a model output"):
        evaluate.find_outputs(listing)
    for flags, message in ((["--plot", str(tmp_path / "gains.jpg")], "PNG"), (["--json", "/missing/r.json"], "folder")):
        with pytest.raises(SystemExit) as stop:
            cli.main(["evaluate", str(folder), *flags])
        assert stop.value.code == 2, message
