"""How much Dice and IoU each solver gains over argmax on calibrated simulated probability maps.

Each setting draws smooth random logit fields (a few classes present per image, the rest faint), scaled to a
confidence level, and takes their softmax as a calibrated model's output; ground truths are drawn from those
probabilities, pixel by pixel. For every method the table gives:

* E[Dice], E[IoU]: the exact expectation over ground truths (rankseg.metrics), per image and class, averaged over
  the classes present by construction (a prediction and truth both empty count 0, as the solvers assume); in
  brackets, the difference to argmax;
* Dice, IoU: measured against `--draws` sampled truths, over the same classes (a class absent from both
  prediction and truth is skipped, the usual mIoU convention), a check on the expectation;
* time: one call of the method on the setting's probabilities, this machine.

The faint classes (the others) are left out of both averages: with calibrated low-confidence probabilities
each of them turns up in every sampled truth as scattered pixels that no method could find.

Label-map methods (argmax, threshold, RMA and exact with either merge and pruning rule) give one label per pixel.
BA and TRNA (†) are multilabel solvers: their per-class masks may overlap, so they are scored class by class.

Run: python benchmarks/quality.py [--quick] [--output docs/quality.md]. With --output, the table replaces the
one between the file's "<!-- quality table -->" markers (or becomes the file, if it has none).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import rankseg
from rankseg import metrics


@dataclass(frozen=True)
class Setting:
    classes: int
    size: int
    confidence: str
    present: int = 5
    batch: int = 2

    def label(self) -> str:
        return f"C={self.classes}, {self.size}², {self.confidence}"


CONFIDENCE = {"low": 1.0, "mid": 2.0, "high": 4.0}  # logit scale of the fields

SETTINGS = [
    Setting(2, 128, "low", present=2),
    Setting(2, 128, "high", present=2),
    Setting(21, 128, "low"),
    Setting(21, 128, "mid"),
    Setting(21, 128, "high"),
    Setting(21, 512, "mid", batch=1),
    Setting(150, 256, "low", present=8, batch=1),
    Setting(150, 256, "mid", present=8, batch=1),
]
QUICK = [Setting(21, 64, "low"), Setting(21, 64, "high"), Setting(2, 64, "mid", present=2)]


def simulate(s: Setting, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities (B, C, size, size) and the classes present by construction (B, C) bool."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(s.batch, s.classes, s.size // 16, s.size // 16, generator=g, dtype=torch.float64)
    present = torch.zeros(s.batch, s.classes, dtype=torch.bool)
    for b in range(s.batch):
        present[b, torch.randperm(s.classes, generator=g)[: s.present]] = True
    low = low + torch.where(present, 2.0, -2.0)[..., None, None]
    logits = F.interpolate(low, size=(s.size, s.size), mode="bicubic", align_corners=False)
    return torch.softmax(logits * CONFIDENCE[s.confidence], dim=1).float(), present


def draw_truths(probs: torch.Tensor, draws: int, seed: int) -> torch.Tensor:
    """(draws, B, *spatial) labels, each pixel drawn from its categorical distribution."""
    g = torch.Generator().manual_seed(seed)
    cdf = probs.double().cumsum(1)
    u = torch.rand((draws, probs.shape[0], 1, *probs.shape[2:]), generator=g, dtype=torch.float64)
    return (cdf.unsqueeze(0) < u * cdf[:, -1:].unsqueeze(0)).sum(2).clamp(max=probs.shape[1] - 1)


def methods():
    """name -> (function of probs returning labels (B, *spatial) or masks (B, C, *spatial), label map?)."""
    return {
        "argmax": (lambda p: p.argmax(1), True),
        "threshold 0.5": (lambda p: torch.where((p > 0.5).any(1), p.argmax(1), -1), True),
        "RMA (default: merge='prob', pruning='argmax')": (lambda p: rankseg.rankseg(p), True),
        "RMA, merge='gain', pruning='max_prob'": (lambda p: rankseg.rankseg(p, merge="gain", pruning="max_prob"), True),
        "RMA, merge='gain', pruning='argmax'": (lambda p: rankseg.rankseg(p, merge="gain"), True),
        "exact (default)": (lambda p: rankseg.rankseg(p, solver="exact"), True),
        "exact, merge='gain', pruning='argmax'": (lambda p: rankseg.rankseg(p, solver="exact", merge="gain"), True),
        "BA †": (lambda p: rankseg.rankseg(p, output_mode="multilabel", solver="BA"), False),
        "TRNA †": (lambda p: rankseg.rankseg(p, output_mode="multilabel", solver="TRNA"), False),
    }


def evaluate(s: Setting, draws: int, seed: int = 0) -> list[tuple]:
    probs, present = simulate(s, seed)
    labels = torch.arange(s.classes).view(1, -1, 1, 1)
    truths = [t.unsqueeze(1) == labels for t in draw_truths(probs, draws, seed + 1)]  # one-hot, per draw
    rows = []
    for name, (run, _) in methods().items():
        run(probs)  # warm-up
        start = time.perf_counter()
        pred = run(probs)
        elapsed = time.perf_counter() - start
        masks = pred if pred.dtype == torch.bool else pred.unsqueeze(1) == labels
        expected = [
            torch.stack([f(probs[b : b + 1, present[b]], masks[b : b + 1, present[b]]) for b in range(s.batch)])
            for f in (metrics.expected_dice, metrics.expected_iou)
        ]
        sampled = []
        for f in (metrics.dice, metrics.iou):
            scores = [f(masks, truth) for truth in truths]
            sampled.append(torch.stack(scores)[:, present].nanmean().item())
        rows.append((name, expected[0].mean().item(), sampled[0], expected[1].mean().item(), sampled[1], elapsed))
    return rows


def table(results: dict[Setting, list[tuple]]) -> str:
    lines = [
        "| setting | method | E[Dice] | Dice | E[IoU] | IoU | time |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s, rows in results.items():
        base = rows[0]
        for name, e_dice, dice, e_iou, iou, elapsed in rows:
            gain = "" if name == "argmax" else f" ({100 * (e_dice - base[1]):+.2f})"
            lines.append(
                f"| {s.label()} | {name} | {100 * e_dice:.2f}{gain} | {100 * dice:.2f} | {100 * e_iou:.2f} | "
                f"{100 * iou:.2f} | {elapsed * 1e3:.1f} ms |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three small settings (seconds)")
    parser.add_argument("--draws", type=int, default=20, help="sampled ground truths per setting")
    parser.add_argument("--output", help="also write the table (Markdown) to this file")
    args = parser.parse_args()
    results = {}
    for s in QUICK if args.quick else SETTINGS:
        results[s] = evaluate(s, args.draws)
        print(f"done: {s.label()}", flush=True)
    text = table(results)
    print(text)
    if args.output:
        write_table(args.output, text)


def write_table(path: str, text: str) -> None:
    marker = "<!-- quality table -->"
    try:
        with open(path) as f:
            before, _, rest = f.read().partition(marker)
        _, found, after = rest.partition(marker)
    except FileNotFoundError:
        found = ""
    with open(path, "w") as f:
        f.write(f"{before}{marker}\n{text}\n{marker}{after}" if found else text + "\n")


if __name__ == "__main__":
    main()
