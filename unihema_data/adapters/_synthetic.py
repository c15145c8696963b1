"""Synthetic microscopy images for fake-data generators.

Images look like stained smears (pale background, pinkish RBC discs, purple nucleated WBCs) so a
person browsing a fake dataset sees something plausible; content is random but seeded.
"""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

_COLOURS = {
    "rbc": (214, 120, 130),
    "wbc": (120, 70, 160),
    "platelet": (150, 90, 170),
    "parasite": (90, 40, 120),
}


def smear(width: int, height: int, cells: Sequence[tuple[Sequence[float], str]], seed: int) -> Image.Image:
    """A field of view with one ellipse per ``(coco_box, kind)``; ``kind`` picks the colour."""
    rng = np.random.default_rng(seed)
    base = np.array([236, 222, 226], dtype=np.float32)
    noise = rng.normal(0, 6, size=(height, width, 3)).astype(np.float32)
    im = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    for (x, y, w, h), kind in cells:
        col = _COLOURS.get(kind, (160, 110, 150))
        draw.ellipse([x, y, x + max(w - 1, 0), y + max(h - 1, 0)], fill=col)
        if kind == "wbc" and w > 6 and h > 6:
            draw.ellipse([x + w * 0.25, y + h * 0.25, x + w * 0.7, y + h * 0.7], fill=(70, 30, 110))
    return im


def single_cell(size: int, kind: str, seed: int, size_h: int | None = None) -> Image.Image:
    """A single-cell crop: the cell near the centre (seeded size and offset) among a few seeded
    red cells, so crops of different seeds are different pictures (as different cells of one smear
    are), not one picture with different noise (which near-duplicate detection would merge)."""
    h = size_h or size
    m = min(size, h)
    rng = np.random.default_rng([seed, 7919])
    cells = []
    for _ in range(int(rng.integers(3, 7))):
        d = m * rng.uniform(0.2, 0.32)
        cells.append(((rng.uniform(-d / 3, size - d / 2), rng.uniform(-d / 3, h - d / 2), d, d * rng.uniform(0.85, 1.1)), "rbc"))
    d = m * rng.uniform(0.45, 0.65)
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08) * m, h / 2 + rng.uniform(-0.08, 0.08) * m
    cells.append(((cx - d / 2, cy - d / 2, d, d * rng.uniform(0.9, 1.1)), kind))
    return smear(size, h, cells, seed)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def random_boxes(rng: np.random.Generator, width: int, height: int, n: int, lo: int = 8, hi: int = 60) -> list[list[int]]:
    """``n`` integer COCO boxes fully inside the image."""
    boxes = []
    for _ in range(n):
        w = int(rng.integers(lo, hi))
        h = int(rng.integers(lo, hi))
        x = int(rng.integers(0, max(width - w, 1)))
        y = int(rng.integers(0, max(height - h, 1)))
        boxes.append([x, y, w, h])
    return boxes
