"""Binary masks stored with lossy compression (JPEG): thresholded by one documented rule.

A JPEG-compressed binary mask holds ringing values around the 0 / 255 edges. The rule used by every
adapter with such masks: read the luminance (PIL ``convert("L")``), value ``>= threshold`` (default
128, the midpoint) is foreground (``high``, default 255), the rest background (0). The number of
pixels that were neither 0 nor 255 is returned so the row can be flagged
(``mask_thresholded:<threshold>``, ``mask_lossy_pixels:<n>``). A file that is not a binary mask at
all (more than :data:`MAX_MIDTONE_FRACTION` of its pixels in the middle range 64..191, e.g. a
photograph saved in the masks folder) is an error naming it: thresholding it would invent a mask.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import CorruptInputError
from . import disk

#: above this fraction of mid-tone pixels (64..191) the file is not a JPEG-compressed binary mask
MAX_MIDTONE_FRACTION = 0.05


def read_gray(path: Path) -> np.ndarray:
    """Luminance of a mask file. A JPEG is decoded strictly (libjpeg-turbo via ``simplejpeg``,
    ``strict=True``, as the core does for images): damaged entropy data, which would decode to a
    plausible but wrong mask, is an error naming the file. Other formats go through Pillow after
    :func:`unihema_data.images.check_pixel_file` (PNG chunk CRCs and stream length)."""
    path = Path(path)
    disk.require_regular(path, "mask file")
    data = disk.read_bytes(path, "mask file")
    try:
        if data[:3] == b"\xff\xd8\xff":
            import simplejpeg

            return simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)[..., 0]
        from ..images import check_pixel_file

        check_pixel_file(data, disk.show(path))  # PNG chunk CRCs / stream length: no silent bit flip
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L"))
    except (OSError, ValueError) as e:
        raise CorruptInputError(f"{disk.show(path)}: unreadable or damaged mask ({e})") from None


def threshold_mask(path: Path, threshold: int = 128, high: int = 255, invert: bool = False) -> tuple[np.ndarray, int]:
    """``(values, lossy)``: the mask as a uint8 array of ``{0, high}`` and the number of pixels
    that were neither 0 nor 255 in the file. ``invert``: foreground is *dark* (value < threshold)."""
    path = Path(path)
    gray = read_gray(path)
    mid = int(((gray >= 64) & (gray < 192)).sum())
    if mid > MAX_MIDTONE_FRACTION * gray.size:
        raise CorruptInputError(
            f"{disk.show(path)}: not a binary mask: {mid} of {gray.size} pixels ({mid / gray.size:.1%}) are mid-tones "
            f"(64..191); a lossy binary mask has at most {MAX_MIDTONE_FRACTION:.0%}")
    fg = gray < threshold if invert else gray >= threshold
    lossy = int(((gray != 0) & (gray != 255)).sum())
    return np.where(fg, high, 0).astype(np.uint8), lossy


__all__ = ["MAX_MIDTONE_FRACTION", "read_gray", "threshold_mask"]
