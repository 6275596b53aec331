"""BatchSegmenter on NumPy batches, and the Ray Data and Hugging Face datasets recipes of docs/evaluate.md (run
where those packages are installed: a local Ray with two CPU workers, datasets with two processes)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import rankseg
from rankseg import metrics
from rankseg.integration.batches import BatchSegmenter

CLASSES = 4


def make_rows(images=8, size=(12, 10), seed=0):
    """Logits and label maps of images with a few square objects, as a model and an annotator would give."""
    rng = np.random.default_rng(seed)
    logits, labels = [], []
    for _ in range(images):
        label = np.zeros(size, dtype=np.int64)
        for c in range(1, CLASSES):
            y, x = rng.integers(0, size[0] - 4), rng.integers(0, size[1] - 4)
            label[y : y + 4, x : x + 4] = c
        logits.append(2.0 * np.eye(CLASSES)[label].transpose(2, 0, 1) + rng.normal(0, 1.2, (CLASSES, *size)))
        labels.append(label)
    return np.stack(logits).astype(np.float32), np.stack(labels)


def expected(logits, labels, segmenter):
    probs = torch.softmax(torch.from_numpy(logits), 1)
    pred = segmenter(probs)
    counts = {
        "rankseg": metrics.confusion_counts(pred, torch.from_numpy(labels), num_classes=CLASSES),
        "argmax": metrics.confusion_counts(probs.argmax(1), torch.from_numpy(labels), num_classes=CLASSES),
    }
    return pred.numpy(), counts


def test_a_stacked_batch_gives_rankseg_labels_and_counts():
    logits, labels = make_rows()
    out = BatchSegmenter(metric="iou")({"logits": logits, "label": labels, "id": np.arange(8)})
    pred, counts = expected(logits, labels, rankseg.RankSEG(metric="iou"))
    np.testing.assert_array_equal(out["pred"], pred)
    for name in ("rankseg", "argmax"):
        np.testing.assert_array_equal(out[f"{name}_counts"], counts[name].numpy())
    np.testing.assert_array_equal(out["id"], np.arange(8))  # other columns pass through
    assert "logits" not in out  # the largest column is dropped unless kept


def test_rows_of_different_sizes_are_solved_one_by_one():
    small, small_labels = make_rows(2, (12, 10))
    large, large_labels = make_rows(1, (16, 14), seed=1)
    batch = {"probs": [torch.softmax(torch.from_numpy(x), 0).numpy() for x in (*small, *large)]}
    batch["label"] = [*small_labels, *large_labels]
    out = BatchSegmenter()(batch)
    assert [p.shape for p in out["pred"]] == [(12, 10), (12, 10), (16, 14)]
    for i, (x, y) in enumerate(zip([*small, *large], batch["label"])):
        pred, counts = expected(x[None], y[None], rankseg.RankSEG())
        np.testing.assert_array_equal(out["pred"][i], pred[0])
        np.testing.assert_array_equal(out["rankseg_counts"][i], counts["rankseg"][0].numpy())


def test_a_fitted_segmenter_and_bad_batches():
    logits, labels = make_rows()
    probs = torch.softmax(torch.from_numpy(logits), 1)
    fitted = rankseg.RankSEG().fit(probs, torch.from_numpy(labels), calibrations=("none",))
    out = BatchSegmenter(fitted, baseline=False)({"logits": logits})
    np.testing.assert_array_equal(out["pred"], fitted(probs).numpy())
    assert "rankseg_counts" not in out  # no labels, no counts
    with pytest.raises(ValueError, match="exactly one of the columns 'probs' and 'logits'"):
        BatchSegmenter()({"image": logits})
    with pytest.raises(TypeError, match="floating point"):
        BatchSegmenter()({"probs": labels[:, None]})
    with pytest.raises(TypeError, match="either a segmenter or RankSEG options"):
        BatchSegmenter(fitted, metric="iou")


def reference_summary(logits, labels):
    accs = {name: metrics.Accumulator(num_classes=CLASSES) for name in ("argmax", "rankseg")}
    _, counts = expected(logits, labels, rankseg.RankSEG())
    for name, acc in accs.items():
        acc.update_counts(counts[name])
    return {name: acc.compute()["dataset"] for name, acc in accs.items()}


class Model:
    """The model stage: a network (here a fixed random convolution) from images to logits, per batch."""

    def __init__(self):
        self.net = torch.nn.Conv2d(1, CLASSES, 3, padding=1)
        with torch.no_grad():
            torch.nn.init.normal_(self.net.weight, generator=torch.Generator().manual_seed(0))
            torch.nn.init.zeros_(self.net.bias)

    def __call__(self, batch):
        with torch.no_grad():
            batch["logits"] = self.net(torch.from_numpy(batch.pop("image"))).numpy()
        return batch


def images_and_labels(count=12):
    logits, labels = make_rows(images=count)
    return logits[:, :1].copy(), labels  # one channel of the logits as the "image"


def ray_recipe(images, labels):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # Ray's workers cannot import this test module: send its classes by value, as for a script's own classes.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        # [docs/evaluate.md: Ray Data]
        from rankseg.integration.batches import BatchSegmenter

        ds = ray.data.from_items([{"image": x, "label": y} for x, y in zip(images, labels)])
        # On a GPU cluster, give each stage num_gpus=1 and BatchSegmenter device="cuda".
        logits = ds.map_batches(Model, batch_size=4, compute=ray.data.ActorPoolStrategy(size=2))
        scored = logits.map_batches(
            BatchSegmenter,
            fn_constructor_kwargs={"metric": "dice"},
            batch_size=4,
            compute=ray.data.ActorPoolStrategy(size=2),
        )
        accs = {name: rankseg.metrics.Accumulator() for name in ("argmax", "rankseg")}
        for batch in scored.select_columns(["argmax_counts", "rankseg_counts"]).iter_batches(batch_format="numpy"):
            for name, acc in accs.items():
                acc.update_counts(batch[f"{name}_counts"])
        summary = {name: acc.compute()["dataset"] for name, acc in accs.items()}  # {"argmax": {"dice", "iou"}, ...}
        # [end of Ray Data]
        return summary
    finally:
        ray.shutdown()


def model_logits(images):
    return Model()({"image": images})["logits"]


def test_ray_data_recipe():
    pytest.importorskip("ray.data")
    images, labels = images_and_labels()
    assert ray_recipe(images, labels) == reference_summary(model_logits(images), labels)


def datasets_recipe(images, labels):
    # [docs/evaluate.md: datasets]
    import datasets

    from rankseg.integration.batches import BatchSegmenter

    ds = datasets.Dataset.from_dict({"image": images, "label": labels}).with_format("numpy")
    logits = ds.map(Model(), batched=True, batch_size=4)
    scored = logits.map(
        BatchSegmenter(metric="dice"), batched=True, batch_size=4, num_proc=2, remove_columns=["logits"]
    )
    accs = {name: rankseg.metrics.Accumulator() for name in ("argmax", "rankseg")}
    for name, acc in accs.items():
        acc.update_counts(scored[f"{name}_counts"])
    summary = {name: acc.compute()["dataset"] for name, acc in accs.items()}
    # [end of datasets]
    return summary


def test_datasets_recipe():
    pytest.importorskip("datasets")
    images, labels = images_and_labels()
    assert datasets_recipe(images, labels) == reference_summary(model_logits(images), labels)
