"""The demo's picture: scene, ground truth, argmax, RankSEG and the changed pixels side by side (Pillow)."""

from __future__ import annotations

import os

import torch
from PIL import Image, ImageDraw, ImageFont

from .demo import DemoResult

PALETTE = torch.tensor(
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75]],
    dtype=torch.float64,
)
PANEL, GAP, TITLE, FOOTER = 256, 12, 26, 92


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _image(rgb: torch.Tensor):
    """(H, W, 3) float in [0, 255] to a PIL image (through bytes: torch's NumPy bridge may be absent)."""
    pixels = rgb.round().clamp(0, 255).to(torch.uint8).contiguous()
    return Image.frombytes("RGB", (pixels.shape[1], pixels.shape[0]), bytes(pixels.flatten().tolist()))


def _labels_rgb(labels: torch.Tensor) -> torch.Tensor:
    return PALETTE[labels % len(PALETTE)]


def panels(result: DemoResult) -> list[tuple[str, torch.Tensor]]:
    """(title, (H, W, 3) colours) for each panel."""
    probs = result.probs[0].double()
    scene = torch.einsum("chw,cd->hwd", probs, PALETTE[: probs.shape[0]])  # colours mixed by probability
    changed = result.ours[0] != result.argmax[0]
    diff = torch.full((*changed.shape, 3), 235.0, dtype=torch.float64)
    diff[changed] = _labels_rgb(result.ours[0][changed])
    return [
        ("scene (probabilities)", scene),
        ("ground truth (one draw)", _labels_rgb(result.truth[0])),
        ("argmax", _labels_rgb(result.argmax[0])),
        ("RankSEG (Dice)", _labels_rgb(result.ours[0])),
        (f"changed pixels ({changed.double().mean().item():.1%})", diff),
    ]


FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def image_format(path: str) -> str:
    """The Pillow format for a file name, by its suffix; a ValueError for others."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot tell the picture format of {path!r}: name it .png, .jpg or .jpeg")
    return FORMATS[suffix]


def render(result: DemoResult, path: str) -> None:
    """Writes the picture to `path`, PNG or JPEG by its suffix."""
    fmt = image_format(path)
    shown = panels(result)
    width = len(shown) * PANEL + (len(shown) + 1) * GAP
    canvas = Image.new("RGB", (width, TITLE + PANEL + FOOTER + GAP), "white")
    draw = ImageDraw.Draw(canvas)
    font, small = _font(16), _font(14)
    for i, (title, rgb) in enumerate(shown):
        x = GAP + i * (PANEL + GAP)
        draw.text((x, 5), title, fill="black", font=font)
        canvas.paste(_image(rgb).resize((PANEL, PANEL), Image.Resampling.NEAREST), (x, TITLE))

    y = TITLE + PANEL + 10
    x = GAP
    for c in range(result.probs.shape[1]):
        draw.rectangle([x, y + 2, x + 14, y + 16], fill=tuple(int(v) for v in PALETTE[c % len(PALETTE)]))
        draw.text((x + 20, y), f"class {c}", fill="black", font=small)
        x += 100
    a, r = result.scores["argmax"], result.scores["rankseg"]
    lines = [
        f"expected Dice: argmax {a['dice']:.4f}  ->  RankSEG {r['dice']:.4f}  ({r['dice'] - a['dice']:+.4f})",
        f"expected IoU:  argmax {a['iou']:.4f}  ->  RankSEG {r['iou']:.4f}  ({r['iou'] - a['iou']:+.4f})",
    ]
    for k, line in enumerate(lines):
        draw.text((GAP, y + 26 + 20 * k), line, fill="black", font=font)
    canvas.save(path, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
