"""Bounding-box conventions and their exact conversions to/from COCO ``[x, y, w, h]``.

Target convention (the unified schema): COCO ``[x, y, w, h]`` in absolute, continuous pixel
coordinates: pixel ``(i, j)`` (column i, row j) covers ``[i, i+1) x [j, j+1)``; ``x, y`` is the
top-left corner of the box.

Native conventions an adapter may declare (:class:`BoxFormat`):

``voc``          Pascal VOC ``xmin, ymin, xmax, ymax``: 1-based *inclusive* integer pixel indices
                 (the box covers pixels xmin..xmax). COCO: ``x = xmin - 1, w = xmax - xmin + 1``.
``xyxy``         continuous absolute corners ``x1, y1, x2, y2``. COCO: ``x = x1, w = x2 - x1``.
``xyxy_incl0``   0-based inclusive pixel indices ``x1..x2``. COCO: ``x = x1, w = x2 - x1 + 1``.
``xywh``         absolute COCO ``x, y, w, h`` (identity).
``cxcywh``       absolute centre + size.
``yolo``         YOLO ``xc, yc, w, h`` normalized to [0, 1] by image width/height.

Every conversion has an exact inverse (:func:`from_coco`) used by the round-trip tests.
"""
from __future__ import annotations

from enum import Enum
from typing import Sequence


class BoxFormat(str, Enum):
    VOC = "voc"
    XYXY = "xyxy"
    XYXY_INCL0 = "xyxy_incl0"
    XYWH = "xywh"
    CXCYWH = "cxcywh"
    YOLO = "yolo"


def to_coco(box: Sequence[float], fmt: BoxFormat | str, width: int, height: int) -> list[float]:
    """Convert one native box to COCO ``[x, y, w, h]`` absolute pixels."""
    fmt = fmt if type(fmt) is BoxFormat else BoxFormat(fmt)
    a, b, c, d = map(float, box)
    if fmt is BoxFormat.VOC:
        return [a - 1.0, b - 1.0, c - a + 1.0, d - b + 1.0]
    if fmt is BoxFormat.XYXY:
        return [a, b, c - a, d - b]
    if fmt is BoxFormat.XYXY_INCL0:
        return [a, b, c - a + 1.0, d - b + 1.0]
    if fmt is BoxFormat.XYWH:
        return [a, b, c, d]
    if fmt is BoxFormat.CXCYWH:
        return [a - c / 2.0, b - d / 2.0, c, d]
    if fmt is BoxFormat.YOLO:
        w, h = c * width, d * height
        return [a * width - w / 2.0, b * height - h / 2.0, w, h]
    raise ValueError(f"unknown box format {fmt}")  # pragma: no cover


def native_degenerate(box: Sequence[float], fmt: BoxFormat | str) -> bool:
    """True when a native box has zero width or height *in its own convention*, before the
    conversion to COCO (e.g. a VOC box with ``xmin == xmax``, which the inclusive convention
    turns into a 1 px wide box): such boxes are kept and flagged ``degenerate_native_box``."""
    fmt = fmt if type(fmt) is BoxFormat else BoxFormat(fmt)
    a, b, c, d = map(float, box)
    if fmt in (BoxFormat.VOC, BoxFormat.XYXY, BoxFormat.XYXY_INCL0):
        return c == a or d == b
    return c == 0 or d == 0


def from_coco(box: Sequence[float], fmt: BoxFormat | str, width: int, height: int) -> list[float]:
    """Exact inverse of :func:`to_coco`."""
    fmt = fmt if type(fmt) is BoxFormat else BoxFormat(fmt)
    x, y, w, h = map(float, box)
    if fmt is BoxFormat.VOC:
        return [x + 1.0, y + 1.0, x + w, y + h]
    if fmt is BoxFormat.XYXY:
        return [x, y, x + w, y + h]
    if fmt is BoxFormat.XYXY_INCL0:
        return [x, y, x + w - 1.0, y + h - 1.0]
    if fmt is BoxFormat.XYWH:
        return [x, y, w, h]
    if fmt is BoxFormat.CXCYWH:
        return [x + w / 2.0, y + h / 2.0, w, h]
    if fmt is BoxFormat.YOLO:
        return [(x + w / 2.0) / width, (y + h / 2.0) / height, w / width, h / height]
    raise ValueError(f"unknown box format {fmt}")  # pragma: no cover


def clip_coco(box: Sequence[float], width: int, height: int) -> tuple[list[float], bool]:
    """Clip a COCO box to the image; returns ``(box, clipped)`` (clipped: moved by > 1e-3 px)."""
    x, y, w, h = float(box[0]), float(box[1]), float(box[2]), float(box[3])
    if x >= 0.0 and y >= 0.0 and x + w <= width and y + h <= height and w >= 0.0 and h >= 0.0:
        return [x, y, w, h], False  # the common case: already inside
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    out = [x1, y1, max(x2 - x1, 0.0), max(y2 - y1, 0.0)]
    tol = 1e-3
    clipped = any(abs(p - q) > tol for p, q in zip(out, (x, y, w, h)))
    return out, clipped


def box_inside(box: Sequence[float], width: int, height: int, tol: float = 0.5) -> bool:
    x, y, w, h = box
    return x >= -tol and y >= -tol and w >= 0 and h >= 0 and x + w <= width + tol and y + h <= height + tol
