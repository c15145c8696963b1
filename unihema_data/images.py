"""Image bytes handling: hashing, format sniffing and lossless re-encoding.

Browsers (and the Hub viewer) show JPEG, PNG, GIF and WebP; those bytes are stored untouched.
TIFF, BMP and anything else Pillow reads are re-encoded losslessly to PNG (mode preserved where
PNG supports it; 16-bit grayscale stays 16-bit). ``image_sha256`` is always the hash of the
*native* bytes.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = 400_000_000  # large field-of-view scans are legitimate

BROWSER_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}


class ImageDecodeError(ValueError):
    pass


@dataclass
class StoredImage:
    data: bytes          # bytes to store in the ``image`` column
    sha256: str          # sha256 of the native bytes
    width: int
    height: int
    native_format: str   # Pillow format name of the native file
    reencoded: bool


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_image_for_storage(path: Path) -> StoredImage:
    """Read a native image file; verify it; keep or losslessly re-encode its bytes."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageDecodeError(f"{path}: cannot read image file: {e.strerror or e}") from None
    return image_from_bytes(data, str(path))


def image_from_bytes(data: bytes, name: str) -> StoredImage:
    digest = sha256_bytes(data)
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").upper()
            width, height = im.size
            if fmt in BROWSER_FORMATS:
                im.verify()  # structural check (chunk CRCs for PNG) without a full decode
                return StoredImage(data, digest, width, height, fmt, False)
            im.load()
            png = _to_png(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    return StoredImage(png, digest, width, height, fmt, True)


def _to_png(im: Image.Image) -> bytes:
    mode = im.mode
    if mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        out = im
    elif mode in ("I;16B", "I;16L", "I;16N"):
        out = im.convert("I;16")
    elif mode == "I":
        out = im if im.getextrema()[1] > 65535 else im.convert("I;16")
    elif mode == "CMYK" or mode == "YCbCr":
        out = im.convert("RGB")
    else:
        out = im.convert("RGBA" if "A" in mode else "RGB")
    buf = io.BytesIO()
    out.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    """Fully decode stored bytes (used by validate and tests)."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return im
