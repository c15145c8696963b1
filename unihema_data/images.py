"""Image bytes handling: hashing, format sniffing, integrity checks and lossless re-encoding.

Browsers (and the Hub viewer) show JPEG, PNG, GIF and WebP; those bytes are stored untouched.
TIFF, BMP and anything else Pillow reads are re-encoded losslessly to PNG, and only when PNG can
hold the pixels exactly (modes 1, L, LA, P, RGB, RGBA, 16-bit grayscale, non-negative 32-bit
integers up to 65535). Anything else (CMYK, float, 16-bit-per-channel colour, multi-page files)
is refused with an error naming the file rather than silently degraded. ``image_sha256`` is
always the hash of the *native* bytes.

Integrity: every image is parsed and structurally verified; JPEG and GIF files are fully decoded
unless they end with their end marker (a truncated file never does), so truncated downloads are
caught at conversion time without decoding every healthy image.

EXIF orientation: annotations of every source in the corpus are in the stored pixel frame, but
``datasets`` (and browsers) rotate images by their EXIF orientation tag on decode. A JPEG with an
orientation other than 1 therefore has that tag rewritten to 1 in place (pixel data untouched)
and the row is flagged ``exif_orientation_reset:<n>``; other formats with such a tag are
re-encoded to PNG without it.
"""
from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = 400_000_000  # large field-of-view scans are legitimate

BROWSER_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}
_ORIENTATION = 0x0112


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
    flags: list[str] = field(default_factory=list)


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
            orientation = _orientation_from_info(im)  # header only: verify() must come before any load
            if fmt in BROWSER_FORMATS:
                im.verify()  # structural check (chunk CRCs for PNG) without a full decode
        with Image.open(io.BytesIO(data)) if fmt not in BROWSER_FORMATS or orientation not in (None, 1) \
                else _NullContext() as im:
            if fmt in BROWSER_FORMATS and (orientation in (None, 1) or fmt == "JPEG"):
                if not _has_end_marker(fmt, data):
                    with Image.open(io.BytesIO(data)) as full:
                        full.load()  # raises on a truncated file
                flags = []
                if orientation not in (None, 1):
                    data = _reset_jpeg_orientation(data, name)
                    flags.append(f"exif_orientation_reset:{orientation}")
                return StoredImage(data, digest, width, height, fmt, False, flags)
            if getattr(im, "n_frames", 1) > 1:
                raise ImageDecodeError(f"{name}: {fmt} file has {im.n_frames} pages/frames; "
                                       "the adapter must say which one is the image")
            im.load()
            png = _to_png(im, fmt, name)
            flags = [f"exif_orientation_dropped:{orientation}"] if orientation not in (None, 1) else []
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            struct.error, EOFError) as e:
        raise ImageDecodeError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    return StoredImage(png, digest, width, height, fmt, True, flags)


class _NullContext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _orientation_from_info(im: Image.Image):
    """EXIF orientation from the raw EXIF block the header parser found (no pixel load)."""
    raw = im.info.get("exif")
    if not raw:
        return None if im.format in BROWSER_FORMATS else _orientation(im)
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # noqa: BLE001 - a broken EXIF block is not an orientation
        return None
    return exif.get(_ORIENTATION)


def _orientation(im: Image.Image):
    try:
        return im.getexif().get(_ORIENTATION)
    except Exception:  # noqa: BLE001 - a broken EXIF block is not an orientation
        return None


def _has_end_marker(fmt: str, data: bytes) -> bool:
    if fmt == "JPEG":
        return data.rstrip(b"\x00")[-2:] == b"\xff\xd9"
    if fmt == "GIF":
        return data.rstrip(b"\x00")[-1:] == b"\x3b"
    return True  # PNG: verify() reads every chunk up to IEND; WebP: RIFF size is checked on open


def _to_png(im: Image.Image, fmt: str, name: str) -> bytes:
    mode = im.mode
    if fmt == "TIFF":
        bits = im.tag_v2.get(258)
        bits = bits if isinstance(bits, tuple) else (bits,)
        if mode in ("RGB", "RGBA") and any(b and b > 8 for b in bits):
            raise ImageDecodeError(f"{name}: {bits}-bit colour TIFF cannot be stored losslessly as PNG "
                                   "(Pillow reads it as 8-bit)")
    if mode in _PNG_MODES:
        out = im
    elif mode in ("I;16B", "I;16L", "I;16N"):
        out = im.convert("I;16")
    elif mode == "I":
        lo, hi = im.getextrema()
        if lo < 0 or hi > 65535:
            raise ImageDecodeError(f"{name}: 32-bit integer image with values {lo}..{hi} does not fit PNG's 16 bits")
        out = Image.fromarray(np.asarray(im).astype(np.uint16))
    else:
        raise ImageDecodeError(f"{name}: {fmt} image of mode {mode} cannot be stored losslessly as PNG")
    buf = io.BytesIO()
    out.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _reset_jpeg_orientation(data: bytes, name: str) -> bytes:
    """Set the EXIF orientation tag of a JPEG to 1 in place (same length, pixels untouched)."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, seglen = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xE1 and data[pos + 4:pos + 10] == b"Exif\x00\x00":
            tiff = pos + 10
            endian = "<" if data[tiff:tiff + 2] == b"II" else ">"
            ifd = tiff + struct.unpack(endian + "I", data[tiff + 4:tiff + 8])[0]
            (count,) = struct.unpack(endian + "H", data[ifd:ifd + 2])
            for k in range(count):
                entry = ifd + 2 + 12 * k
                tag, typ = struct.unpack(endian + "HH", data[entry:entry + 4])
                if tag == _ORIENTATION and typ == 3:
                    value = struct.pack(endian + "H", 1)
                    return data[:entry + 8] + value + data[entry + 10:]
            break
        if marker in (0xD9, 0xDA):
            break
        pos += 2 + seglen
    raise ImageDecodeError(f"{name}: EXIF orientation tag not found where expected; cannot reset it safely")


def decode(data: bytes) -> Image.Image:
    """Fully decode stored bytes as ``datasets`` does (EXIF orientation applied)."""
    from PIL import ImageOps

    im = Image.open(io.BytesIO(data))
    im.load()
    if _orientation(im) not in (None, 1):
        im = ImageOps.exif_transpose(im)
    return im
