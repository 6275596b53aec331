"""RankSEG against argmax on the outputs of small trained networks, judged by MONAI's DiceMetric.

The simulations in benchmarks/quality.py give calibrated probabilities by construction; real networks do not.
Here small MONAI UNets are trained on CPU on synthetic images from generators we did not write
(``monai.data.create_test_image_2d``: circles of 4 classes on noise; ``skimage.draw.random_shapes``: circles,
rectangles and triangles that may overlap), in regimes chosen to give well, under- and over-confident outputs:

* multiclass (C = 5 with background, softmax): well trained, under-trained, hard data, over-confident;
* binary (one sigmoid channel): well trained, hard data, under-confident, over-confident;
* multilabel (three sigmoid channels, overlapping shapes): well trained, hard data, under-trained.

Each regime has a training split, a validation split (for methods that calibrate or fit something) and a test
split. The trained weights and the validation and test logits are cached (default
``~/.cache/rankseg/real_networks/``, or ``$RANKSEG_BENCH_CACHE``, or ``--cache DIR``), keyed by a hash of the
regime's settings, this file's CODE_VERSION and the library versions, so a second run skips training.

A method maps a regime to predictions on its test split and may use the validation split; they are kept in
METHODS, in table order, so more can be registered (see ``method``). Every method is scored per test image with
``monai.metrics.DiceMetric(include_background=True, reduction="none", ignore_empty=True)`` (and MeanIoU with the
same conventions): the mean over the classes present in the image's truth, images with none skipped. Note that
under ``ignore_empty`` a class absent from the truth costs nothing, whatever is predicted for it.

Run: python benchmarks/real_networks.py [--regimes a,b] [--quick] [--cache DIR] [--output FILE]. With --output,
the tables replace the text between the file's two "<!-- real-network table -->" markers (a new file gets the
markers around the tables; an existing file without them is refused).

Other code can reuse the trained outputs: ``load_regimes(["mc_well"])`` returns ``Regime`` objects.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

import rankseg
from rankseg import calibration

CODE_VERSION = 2  # bump when a change here alters the data, the training or the stored outputs
CACHE_ENV = "RANKSEG_BENCH_CACHE"
DEFAULT_CACHE = Path("~/.cache/rankseg/real_networks")
MARKER = "<!-- real-network table -->"
SOLVER_BATCH = 32  # images per rankseg call, to bound memory
# Networks are trained and run on one thread (the command runs on one too): their outputs then do not depend
# on the core count, and on a shared machine two OpenMP threads that spin while waiting for each other made a
# step up to 25x slower (measured: 1.4 s instead of 0.06 s with two other busy processes on 2 cores; one
# thread: 0.12 s instead of 0.09 s).
THREADS = 1


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- regime settings


@dataclass(frozen=True)
class Setting:
    """Everything that determines a regime's data, network and training (all of it goes into the cache key)."""

    name: str
    what: str  # one line for the table
    mode: str  # "multiclass" or "multilabel"
    data: str  # "circles" (monai.data.create_test_image_2d) or "shapes" (skimage.draw.random_shapes)
    classes: int  # output channels C (multiclass: with background)
    objects: int  # circles per image ("circles"), most shapes per class and image ("shapes")
    size_min: int  # circle radius ("circles"), shape height and width ("shapes"), in pixels
    size_max: int
    noise: float  # create_test_image_2d's noise_max; for "shapes" the width of the uniform noise added
    blur: float = 0.0  # sigma of a Gaussian blur of the image (0: none)
    n_train: int = 1000
    n_val: int = 250
    n_test: int = 300
    steps: int = 1000  # optimiser steps of batch 32 (or the whole training set, if smaller)
    lr: float = 3e-3
    channels: tuple = (8, 16, 32)
    image_size: int = 64
    seed: int = 0  # of the data, the initialisation and the batches; one per regime

    def quick(self) -> Setting:
        """A tiny version for smoke tests: few images and steps."""
        return dataclasses.replace(self, n_train=min(self.n_train, 64), n_val=8, n_test=8, steps=min(self.steps, 15))


# Why each regime has the calibration it has:
# * "well trained": plenty of training images and steps, no overfitting. A network trained with cross-entropy
#   (a proper scoring rule) near convergence on data like its test data is close to calibrated (measured: ECE
#   ~1%, if anything slightly under-confident, fitted T ~0.8).
# * "under-trained" / "under-confident": stopped after a few dozen steps. Training starts from logits near 0
#   (probabilities near 1/C or 0.5) and grows them; stopped early they are still too small, so the network is
#   right more often than it says (under-confident), while its ranking of pixels is already informative.
# * "hard data": small objects, strong noise and blur, so many pixels are genuinely ambiguous. Trained with
#   enough data the network is roughly calibrated but uncertain: where expected-Dice optimisation should help.
# * "over-confident": a wider network trained long on a handful of noisy images (8, or 4 for binary). It fits
#   them almost perfectly, which drives its logits up, and keeps that confidence on test images where it errs.
# The shapes nets use lr 1e-2: at 3e-3 they sit for hundreds of steps on the all-background plateau (the
# shapes cover ~3-14% of an image per class), which would make the regimes depend on when they leave it.
MC = {"mode": "multiclass", "data": "circles", "classes": 5}  # create_test_image_2d, 4 classes + background
BIN = {"mode": "multilabel", "data": "circles", "classes": 1}  # create_test_image_2d, one foreground class
ML = {"mode": "multilabel", "data": "shapes", "classes": 3, "lr": 1e-2}  # circles, rectangles, triangles
OVERFIT = {"steps": 1500, "channels": (16, 32, 64)}


def regime(name: str, what: str, kind: dict, objects: int, sizes: tuple, noise: float, **more) -> Setting:
    return Setting(name, what, objects=objects, size_min=sizes[0], size_max=sizes[1], noise=noise, **kind, **more)


SETTINGS = [
    # name, table line, kind, objects, sizes (min, max), noise, then anything else that differs from the defaults
    regime("mc_well", "multiclass, well trained", MC, 12, (4, 14), 0.1, steps=800, seed=0),
    regime("mc_under", "multiclass, under-trained", MC, 12, (4, 14), 0.1, steps=40, seed=1),
    regime("mc_hard", "multiclass, hard data", MC, 12, (2, 5), 0.7, blur=1.5, seed=2),
    regime("mc_over", "multiclass, over-confident", MC, 12, (3, 10), 0.3, blur=0.7, n_train=8, **OVERFIT, seed=3),
    regime("bin_well", "binary, well trained", BIN, 8, (3, 10), 0.9, steps=800, seed=4),
    regime("bin_hard", "binary, hard data", BIN, 8, (2, 5), 1.2, blur=1.0, seed=5),
    regime("bin_under", "binary, under-confident", BIN, 8, (3, 10), 0.7, steps=100, seed=6),
    regime("bin_over", "binary, over-confident", BIN, 8, (2, 8), 0.9, blur=1.0, n_train=4, **OVERFIT, seed=7),
    regime("ml_shapes", "multilabel shapes, well trained", ML, 4, (10, 30), 0.3, steps=800, seed=8),
    regime("ml_hard", "multilabel shapes, hard data", ML, 4, (8, 20), 0.7, blur=0.7, steps=1200, seed=9),
    regime("ml_under", "multilabel shapes, under-trained", ML, 4, (10, 30), 0.3, steps=200, seed=10),
]
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


# ------------------------------------------------------------------------------------------------------ data


def make_split(s: Setting, split: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 1, H, W) float32 and labels of split 0 (train), 1 (val) or 2 (test), deterministically.

    Labels: multiclass (n, H, W) int64; multilabel (n, C, H, W) bool.
    """
    from scipy.ndimage import gaussian_filter

    seed = 1000 * s.seed + split
    images, labels = [], []
    if s.data == "circles":
        from monai.data import create_test_image_2d

        rs = np.random.RandomState(seed)
        # create_test_image_2d labels circles 1..k (k = num_seg_classes) and paints circle c with intensity c
        # (k = 1: one foreground class, intensity uniform in [0.5, 1]); the image is max(painting, uniform noise
        # in [0, k * noise)), rescaled to [0, 1] by its own maximum (so an image without class k is brighter).
        k = s.classes - 1 if s.mode == "multiclass" else 1
        for _ in range(n):
            image, label = create_test_image_2d(
                s.image_size, s.image_size, s.objects, s.size_max, s.size_min, s.noise, k, random_state=rs
            )
            images.append(image)
            labels.append(label if s.mode == "multiclass" else (label > 0)[None])
    elif s.data == "shapes":
        from skimage.draw import random_shapes

        rng = np.random.default_rng(seed)
        kinds = ("circle", "rectangle", "triangle")[: s.classes]
        for _ in range(n):
            image = np.zeros((s.image_size, s.image_size))
            masks = []
            for kind in kinds:
                # one layer per class, shapes of a class do not overlap each other but may overlap other classes';
                # layers add up (like transparent films), so both outlines stay visible where they overlap
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "Could not fit any shapes": fewer shapes, which is fine
                    layer, _ = random_shapes(
                        (s.image_size, s.image_size),
                        max_shapes=s.objects,
                        min_shapes=0,
                        min_size=s.size_min,
                        max_size=s.size_max,
                        shape=kind,
                        channel_axis=None,
                        intensity_range=(0, 150),  # background is 255: every shape differs from it by >= 105
                        rng=rng,
                    )
                masks.append(layer < 255)
                image += (255.0 - layer) / 255.0
            image += rng.uniform(0, s.noise, image.shape)
            images.append(image)
            labels.append(np.stack(masks))
    else:
        raise ValueError(f"unknown data {s.data!r}")
    x = np.stack(images).astype(np.float32)
    if s.blur > 0:
        x = gaussian_filter(x, sigma=(0, s.blur, s.blur))
    y = torch.from_numpy(np.stack(labels))
    y = y.long() if s.mode == "multiclass" else y.bool()
    return torch.from_numpy(x).unsqueeze(1), y


# -------------------------------------------------------------------------------------------------- networks


def make_net(s: Setting) -> torch.nn.Module:
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=s.classes,
        channels=s.channels,
        strides=(2,) * (len(s.channels) - 1),
        num_res_units=1,
    )


def loss_fn(mode: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if mode == "multiclass":
        return F.cross_entropy(logits, labels)
    return F.binary_cross_entropy_with_logits(logits, labels.float())


def train(s: Setting, x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    torch.manual_seed(s.seed)
    net = make_net(s)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    g = torch.Generator().manual_seed(s.seed)
    batch = min(32, len(x))
    net.train()
    start = time.perf_counter()
    for step in range(1, s.steps + 1):
        idx = torch.randperm(len(x), generator=g)[:batch]
        loss = loss_fn(s.mode, net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0 or step == s.steps:
            log(f"  [{s.name}] step {step}/{s.steps}, loss {loss.item():.4f}, {time.perf_counter() - start:.0f} s")
    return net.eval()


@torch.no_grad()
def infer(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([net(x[i : i + 64]) for i in range(0, len(x), 64)]).float()


# ---------------------------------------------------------------------------------------------- regimes, cache


@dataclass
class Regime:
    """A trained network's logits and the truths, on the validation and test splits."""

    name: str
    mode: str  # "multiclass" (softmax over C) or "multilabel" (a sigmoid per channel; binary is C = 1)
    val_logits: torch.Tensor  # (N, C, H, W) float32
    val_labels: torch.Tensor  # multiclass: (N, H, W) int64; multilabel: (N, C, H, W) bool
    test_logits: torch.Tensor
    test_labels: torch.Tensor
    what: str = ""
    setting: Optional[Setting] = None

    @property
    def classes(self) -> int:
        return self.test_logits.shape[1]

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1) if self.mode == "multiclass" else torch.sigmoid(logits)

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) bool masks of a label map, or the masks themselves."""
        if labels.dim() == 4:
            return labels.bool()
        return F.one_hot(labels, self.classes).movedim(-1, 1).bool()


def cache_key(s: Setting) -> str:
    import monai
    import skimage

    versions = {"torch": torch.__version__, "monai": monai.__version__, "skimage": skimage.__version__}
    blob = json.dumps({"setting": dataclasses.asdict(s), "code": CODE_VERSION, **versions}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(cache: Optional[str | os.PathLike] = None) -> Path:
    return Path(cache or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def build(s: Setting, cache: Path) -> Regime:
    """The regime of setting s: from the cache, else generated, trained and stored."""
    folder = cache / f"{s.name}-{cache_key(s)}"
    outputs = folder / "outputs.pt"
    if outputs.exists():
        stored = torch.load(outputs, weights_only=True)
        if s.mode == "multiclass":
            stored["val_labels"], stored["test_labels"] = stored["val_labels"].long(), stored["test_labels"].long()
    else:
        log(f"[{s.name}] {s.what}: generating data, training {s.steps} steps on {s.n_train} images")
        threads = torch.get_num_threads()
        torch.set_num_threads(THREADS)
        try:
            x, y = make_split(s, 0, s.n_train)
            net = train(s, x, y)
            stored = {}
            for split, (part, n) in enumerate([("val", s.n_val), ("test", s.n_test)], start=1):
                x, y = make_split(s, split, n)
                stored[f"{part}_logits"], stored[f"{part}_labels"] = infer(net, x), y
        finally:
            torch.set_num_threads(threads)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), folder / "weights.pt")
        tmp = folder / "outputs.pt.tmp"
        small = {k: v.to(torch.uint8) if v.dtype == torch.int64 else v for k, v in stored.items()}  # labels < 256
        torch.save(small, tmp)
        tmp.replace(outputs)  # the outputs appear only once complete
        (folder / "setting.json").write_text(json.dumps(dataclasses.asdict(s), indent=1) + "\n")
    return Regime(name=s.name, mode=s.mode, what=s.what, setting=s, **stored)


def load_regimes(
    names: Optional[list[str]] = None, cache: Optional[str | os.PathLike] = None, quick: bool = False
) -> list[Regime]:
    """The regimes named (default: all, in table order), trained on first use and cached.

    ``cache``: the cache folder (default ``$RANKSEG_BENCH_CACHE`` or ``~/.cache/rankseg/real_networks``).
    ``quick``: tiny versions (few images and steps) for smoke tests; they are cached under their own keys.
    """
    unknown = [n for n in names or [] if n not in SETTINGS_BY_NAME]
    if unknown:
        raise ValueError(f"unknown regime(s) {unknown}; known: {list(SETTINGS_BY_NAME)}")
    settings = [SETTINGS_BY_NAME[n] for n in names] if names else SETTINGS
    folder = cache_dir(cache)
    return [build(s.quick() if quick else s, folder) for s in settings]


# --------------------------------------------------------------------------------------------------- methods

Method = Callable[[Regime], torch.Tensor]
# name -> (the modes it applies to, fn). fn(regime) returns predictions on the test split: labels (N, H, W)
# int64 or masks (N, C, H, W) bool (masks may overlap; each is scored as a class's prediction).
METHODS: dict[str, tuple[tuple[str, ...], Method]] = {}
BASELINE = {"multiclass": "argmax", "multilabel": "threshold 0.5"}


def method(name: str, *modes: str) -> Callable[[Method], Method]:
    """Registers fn(regime) as METHODS[name] for the given modes (all if none), after those already there."""

    def register(fn: Method) -> Method:
        METHODS[name] = (modes or ("multiclass", "multilabel"), fn)
        return fn

    return register


def batched(solve: Callable[[torch.Tensor], torch.Tensor], probs: torch.Tensor) -> torch.Tensor:
    return torch.cat([solve(probs[i : i + SOLVER_BATCH]) for i in range(0, len(probs), SOLVER_BATCH)])


@method("argmax", "multiclass")
def argmax(r: Regime) -> torch.Tensor:
    return r.test_logits.argmax(1)


@method("threshold 0.5", "multilabel")
def threshold(r: Regime) -> torch.Tensor:
    return r.probs(r.test_logits) > 0.5


def solved(r: Regime, probs: torch.Tensor, **kwargs) -> torch.Tensor:
    """RankSEG (Dice) on the test probabilities `probs`, in the regime's output mode unless kwargs say otherwise."""
    kwargs = {"metric": "dice", "output_mode": r.mode, **kwargs}
    return batched(lambda p: rankseg.rankseg(p, **kwargs), probs)


# The multiclass rule before the defaults changed: the incremental-score merge, pruning by pruning_prob = 0.5.
GAIN = {"merge": "gain", "pruning": "max_prob"}


@method("RankSEG (default)")
def rankseg_default(r: Regime) -> torch.Tensor:
    return solved(r, r.probs(r.test_logits))


@method("RankSEG, merge='gain', pruning='max_prob' (the old default)", "multiclass")
def rankseg_gain(r: Regime) -> torch.Tensor:
    return solved(r, r.probs(r.test_logits), **GAIN)


@method("RankSEG, merge='gain', pruning='argmax'", "multiclass")
def rankseg_gain_pruning_argmax(r: Regime) -> torch.Tensor:
    return solved(r, r.probs(r.test_logits), merge="gain", pruning="argmax")


@method("RankSEG per-class masks, no merge", "multiclass")
def rankseg_no_merge(r: Regime) -> torch.Tensor:
    return solved(r, r.probs(r.test_logits), output_mode="multilabel")


def temperature(r: Regime) -> calibration.Temperature:
    """rankseg's temperature scaling, fitted on the validation split."""
    return calibration.Temperature(r.mode).fit(r.probs(r.val_logits), r.val_labels)


@method("RankSEG (default) after temperature scaling")
def rankseg_temperature(r: Regime) -> torch.Tensor:
    return solved(r, temperature(r)(r.probs(r.test_logits)))


@method("RankSEG, merge='gain', pruning='max_prob', after temperature scaling", "multiclass")
def rankseg_gain_temperature(r: Regime) -> torch.Tensor:
    return solved(r, temperature(r)(r.probs(r.test_logits)), **GAIN)


@method("fitted RankSEG (RankSEG.fit on the validation split)")
def rankseg_fitted(r: Regime) -> torch.Tensor:
    start = time.perf_counter()
    fitted = rankseg.RankSEG(metric="dice", output_mode=r.mode).fit(r.probs(r.val_logits), r.val_labels)
    log(f"  [{r.name}] fit: {time.perf_counter() - start:.1f} s, {fitted!r}")
    return batched(fitted, r.probs(r.test_logits))


# --------------------------------------------------------------------------------------------------- scoring


def per_image(r: Regime, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per test image Dice and IoU, each the mean over the classes present in the truth (NaN: none present)."""
    from monai.metrics import DiceMetric, MeanIoU

    pred, truth = r.one_hot(pred).float(), r.one_hot(r.test_labels).float()
    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=True)(pred, truth)
    iou = MeanIoU(include_background=True, reduction="none", ignore_empty=True)(pred, truth)
    return dice.nanmean(1), iou.nanmean(1)


def ece_and_gap(r: Regime, logits: torch.Tensor, bins: int = 15) -> tuple[float, float]:
    """(ECE, mean confidence - accuracy) of the test probabilities probs(logits), both in [0, 1].

    Multiclass: top-label ECE over pixels. Sigmoid outputs: every pixel-class entry is a forecast p of a binary
    event, binned by p (the same as the top-label ECE of the entry, max(p, 1 - p), up to the bin edges).
    The signed gap is top-label in both: > 0 over-confident, < 0 under-confident.
    """
    p = r.probs(logits)
    if r.mode == "multiclass":
        conf, pred = p.max(1)
        forecast, outcome = conf.flatten(), (pred == r.test_labels).flatten().float()
        gap = forecast.mean() - outcome.mean()
    else:
        forecast, outcome = p.flatten(), r.test_labels.flatten().float()
        gap = torch.maximum(forecast, 1 - forecast).mean() - ((forecast > 0.5) == outcome.bool()).float().mean()
    which = (forecast * bins).long().clamp(max=bins - 1)
    count = torch.bincount(which, minlength=bins).double()
    error = torch.bincount(which, forecast.double() - outcome.double(), minlength=bins)
    return (error.abs().sum() / count.sum()).item(), gap.item()


@dataclass
class Row:
    regime: str
    method: str
    dice: float
    iou: float
    delta: float  # paired mean difference to the baseline; all scores here in Dice points (Dice x 100)
    se: float
    delta_iou: float
    better: int
    worse: int
    images: int


def evaluate(r: Regime) -> tuple[list[Row], dict]:
    scores = {}
    for name, (modes, fn) in METHODS.items():
        if r.mode in modes:
            start = time.perf_counter()
            scores[name] = per_image(r, fn(r))
            log(f"  [{r.name}] {name}: {time.perf_counter() - start:.1f} s")
    base_dice, base_iou = scores[BASELINE[r.mode]]
    keep = ~base_dice.isnan()  # images with at least one class in the truth
    rows = []
    for name, (dice, iou) in scores.items():
        d, di = (dice - base_dice)[keep].double(), (iou - base_iou)[keep].double()
        n = int(keep.sum())
        rows.append(
            Row(
                r.name,
                name,
                100 * dice[keep].mean().item(),
                100 * iou[keep].mean().item(),
                100 * d.mean().item(),
                100 * (d.std().item() / math.sqrt(n) if n > 1 else 0.0),
                100 * di.mean().item(),
                int((d > 0).sum()),
                int((d < 0).sum()),
                n,
            )
        )
    ece, gap = ece_and_gap(r, r.test_logits)
    t = temperature(r).temperature
    ece_t, _ = ece_and_gap(r, r.test_logits / t)
    info = {"ece": ece, "gap": gap, "temperature": t, "ece_t": ece_t}
    return rows, info


def tables(regimes: list[Regime], results: dict[str, tuple[list[Row], dict]]) -> str:
    lines = [
        "| regime | what | C | train images | steps | test ECE | conf − acc | fitted T | ECE after T |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in regimes:
        s, info = r.setting, results[r.name][1]
        lines.append(
            f"| {r.name} | {r.what} | {r.classes} | {s.n_train if s else '?'} | {s.steps if s else '?'} | "
            f"{100 * info['ece']:.2f} | {100 * info['gap']:+.2f} | {info['temperature']:.2f} | "
            f"{100 * info['ece_t']:.2f} |"
        )
    lines += [
        "",
        "| regime | method | Dice | Δ Dice (± s.e.) | better / worse | IoU | Δ IoU |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in regimes:
        for row in results[r.name][0]:
            is_base = row.method == BASELINE[r.mode]
            delta = "baseline" if is_base else f"{row.delta:+.2f} ± {row.se:.2f}"
            counts = f"of {row.images}" if is_base else f"{row.better} / {row.worse}"
            delta_iou = "" if is_base else f"{row.delta_iou:+.2f}"
            lines.append(
                f"| {r.name} | {row.method} | {row.dice:.2f} | {delta} | {counts} | {row.iou:.2f} | {delta_iou} |"
            )
    return "\n".join(lines)


def write_tables(path: str, text: str) -> None:
    """Replaces the text between the two markers of the file at path (or writes a new file with them)."""
    target = Path(path)
    if not target.exists():
        target.write_text(f"{MARKER}\n{text}\n{MARKER}\n")
        return
    before, found, rest = target.read_text().partition(MARKER)
    _, found_end, after = rest.partition(MARKER)
    if not (found and found_end):
        raise SystemExit(f"{path} has no pair of {MARKER!r} lines; add them where the tables should go")
    target.write_text(f"{before}{MARKER}\n{text}\n{MARKER}{after}")


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", help=f"comma-separated subset of: {','.join(SETTINGS_BY_NAME)}")
    parser.add_argument("--quick", action="store_true", help="tiny smoke version: few images and steps")
    parser.add_argument("--cache", help=f"cache folder (default ${CACHE_ENV} or {DEFAULT_CACHE})")
    parser.add_argument("--output", help=f"write the tables between the {MARKER!r} lines of this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)  # rankseg's kernels and the tensor ops too: see THREADS
    start = time.perf_counter()
    names = args.regimes.split(",") if args.regimes else None
    regimes = load_regimes(names, args.cache, quick=args.quick)
    log(f"regimes ready: {time.perf_counter() - start:.0f} s")
    results = {}
    for r in regimes:
        results[r.name] = evaluate(r)
    text = tables(regimes, results)
    print(text)
    if args.output:
        write_tables(args.output, text)
    log(f"total: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
