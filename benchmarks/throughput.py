"""Images per second of scoring argmax against RankSEG over a folder of saved outputs: `rankseg evaluate` in one
process and with --workers 2, and the Ray Data recipe with two actors, on the same files.

Run: python benchmarks/throughput.py [--images N] (Ray only where it is installed). Writes the outputs to a
temporary folder first: logits (C, 512, 512) float16 and a label map per image, for C = 21 and 150."""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from inputs import INPUTS

import rankseg
from rankseg import evaluate


def write(folder: Path, classes: int, images: int) -> None:
    folder.mkdir(parents=True)
    for i in range(images):
        probs = INPUTS["softmax-fields"]((1, classes, 512, 512))[0]
        label = torch.roll(probs.argmax(0), shifts=5 * i + 3, dims=-1)
        np.savez(folder / f"img{i:03d}.npz", probs=probs.half().numpy(), label=label.numpy().astype(np.uint8))


def per_second(run, images: int) -> float:
    start = time.perf_counter()
    run()
    return images / (time.perf_counter() - start)


def ray_pipeline(folder: Path) -> None:
    import ray

    from rankseg.integration.batches import BatchSegmenter

    def load(row):
        with np.load(row["path"]) as f:
            return {"probs": f["probs"], "label": f["label"].astype(np.int64)}

    paths = [{"path": str(p)} for p in evaluate.find_outputs(folder)]
    ds = ray.data.from_items(paths).map(load)
    scored = ds.map_batches(BatchSegmenter, batch_size=1, compute=ray.data.ActorPoolStrategy(size=2))
    accs = {name: rankseg.metrics.Accumulator() for name in ("argmax", "rankseg")}
    for batch in scored.select_columns(["argmax_counts", "rankseg_counts"]).iter_batches(batch_format="numpy"):
        for name, acc in accs.items():
            acc.update_counts(batch[f"{name}_counts"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    try:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except ImportError:
        ray = None
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'classes':>7} {'1 process':>12} {'--workers 2':>12} {'Ray, 2 actors':>14}   (images/s, 512 x 512)")
        for classes in (21, 150):
            folder = Path(tmp) / f"c{classes}"
            write(folder, classes, args.images)
            one = per_second(functools.partial(evaluate.evaluate, folder, progress=False), args.images)
            two = per_second(functools.partial(evaluate.evaluate, folder, workers=2, progress=False), args.images)
            on_ray = per_second(functools.partial(ray_pipeline, folder), args.images) if ray else float("nan")
            print(f"{classes:>7} {one:>12.2f} {two:>12.2f} {on_ray:>14.2f}")
    if ray:
        ray.shutdown()


if __name__ == "__main__":
    main()
