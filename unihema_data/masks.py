"""Mask encodings.

* Instance masks: COCO compressed RLE (pycocotools), stored as the ``counts`` string; the size is
  the row's ``(height, width)``.
* Semantic masks: single-channel 8-bit PNG whose pixel value ``i`` is class ``mask_classes[i]``.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> str:
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8) > 0, dtype=np.uint8)
    rle = mask_utils.encode(m)
    return rle["counts"].decode("ascii")


def decode_rle(counts: str, height: int, width: int) -> np.ndarray:
    return mask_utils.decode({"size": [height, width], "counts": counts.encode("ascii")}).astype(bool)


def rle_bbox(counts: str, height: int, width: int) -> list[float]:
    """COCO ``[x, y, w, h]`` of an RLE mask (tight pixel extent)."""
    return [float(v) for v in mask_utils.toBbox({"size": [height, width], "counts": counts.encode("ascii")})]


def rle_area(counts: str, height: int, width: int) -> int:
    return int(mask_utils.area({"size": [height, width], "counts": counts.encode("ascii")}))


def read_native_mask(mask: Any, name: str = "", keep_rgb: bool = False) -> np.ndarray:
    """A native semantic mask (path or array) as a 2-D integer array of native values.

    An RGB(A) file whose channels are equal is read as gray; a true colour mask is returned as an
    (H, W, 3) array when ``keep_rgb`` (the adapter declared a palette), else refused. The file
    type is checked before opening (a FIFO never blocks)."""
    if isinstance(mask, np.ndarray):
        arr = mask
    else:
        from .formats.disk import read_bytes, show
        from .images import check_pixel_file

        data = read_bytes(Path(mask), "mask file")
        check_pixel_file(data, show(Path(mask)))  # a flipped bit never decodes to other values
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode == "P" and not keep_rgb:
                arr = np.asarray(im)  # palette indices are the native values
            elif im.mode in ("RGB", "RGBA") or (im.mode == "P" and keep_rgb):
                a = np.asarray(im.convert("RGB"))
                if not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2])):
                    if keep_rgb:
                        return a
                    raise ValueError(f"{name or mask}: colour mask; the adapter must declare a mask_palette")
                arr = a[..., 0]
            else:
                arr = np.asarray(im)
    if arr.ndim == 3 and keep_rgb and arr.shape[2] in (3, 4):
        return arr
    if arr.dtype == bool:  # 1-bit masks (PIL mode "1", 1-bit TIFF) read like PIL's convert("L"): 0 / 255
        arr = arr.astype(np.uint8) * np.uint8(255)
    if arr.ndim != 2:
        raise ValueError(f"{name}: mask must be 2-D, got shape {arr.shape}")
    return arr


def encode_semantic(indices: np.ndarray) -> bytes:
    if indices.max(initial=0) > 255:
        raise ValueError("more than 256 mask classes")
    buf = io.BytesIO()
    Image.fromarray(indices.astype(np.uint8), mode="L").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def decode_semantic(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)
