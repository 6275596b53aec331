"""The bar chart of `rankseg evaluate --plot`: per class, each method's dataset-level gain over argmax (Pillow)."""

from __future__ import annotations

import math
import os

from PIL import Image, ImageDraw

from ._picture import _font
from .evaluate import class_gains

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189)]
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 64, 40


def plot_gains(report: dict, metric: str, path: str | os.PathLike) -> None:
    """Writes the chart as PNG: one group of bars per class, zero in the middle, a scale in score points."""
    series = class_gains(report, metric)
    classes = len(next(iter(series.values())))
    # Groups spread over at least 480 pixels, bars of 4 to 18 pixels, the picture widening for many classes.
    group = max(4 * len(series) + 6, 480 // classes)
    bar = min(18, (group - 6) // len(series))
    width, height = LEFT + RIGHT + classes * group, 380
    finite = [abs(v) for values in series.values() for v in values if not math.isnan(v)]
    scale = max(finite, default=0.0) or 0.01  # the largest gain fills half the height
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(13)
    name = {"dice": "Dice", "iou": "IoU"}[metric]
    draw.text((LEFT, 10), f"per-class gain over argmax, dataset {name} (points)", fill="black", font=font)
    zero = TOP + (height - TOP - BOTTOM) / 2
    half = (height - TOP - BOTTOM) / 2
    draw.line([(LEFT, zero), (width - RIGHT, zero)], fill="black")
    for tick in (-scale, -scale / 2, scale / 2, scale):
        y = zero - tick / scale * half
        draw.line([(LEFT - 4, y), (LEFT, y)], fill="black")
        draw.text((4, y - 7), f"{100 * tick:+.2f}", fill="black", font=font)
    for k, (method, values) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        x = LEFT + 120 * k  # the legend, one entry per method, under the title
        draw.rectangle([x, 34, x + 10, 44], fill=colour)
        draw.text((x + 16, 32), method, fill="black", font=font)
        for c, v in enumerate(values):
            if math.isnan(v) or v == 0:
                continue
            x = LEFT + 3 + c * group + k * bar + (group - 6 - bar * len(series)) // 2
            y = zero - v / scale * half
            draw.rectangle([x, min(y, zero), x + bar - 2, max(y, zero)], fill=colour)
    step = max(1, math.ceil(classes * 24 / max(1, width - LEFT - RIGHT)))
    for c in range(0, classes, step):
        draw.text((LEFT + c * group + group // 2 - 4, height - BOTTOM + 8), str(c), fill="black", font=font)
    image.save(path, format="PNG")
