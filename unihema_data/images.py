"""Image bytes handling: hashing, format sniffing, integrity checks and lossless re-encoding.

Browsers (and the Hub viewer) show JPEG, PNG, GIF and WebP; those bytes are stored untouched.
TIFF, BMP and anything else Pillow reads are re-encoded losslessly to PNG, and only when PNG can
hold the pixels exactly (modes 1, L, LA, P, RGB, RGBA, 16-bit grayscale, non-negative 32-bit
integers up to 65535). Anything else (CMYK, float, 16-bit-per-channel colour, multi-page files)
is refused with an error naming the file rather than silently degraded. ``image_sha256`` is
always the hash of the *native* bytes.

Integrity: every image is decoded once, fully, during conversion, and refused (with an error naming
the file) when it does not decode cleanly:

* before any pixel buffer is allocated, the size the header claims is checked against the file's
  size: a format's best compression ratio bounds how many pixels a file of N bytes can hold
  (JPEG ~190:1 and GIF ~1000:1 on a flat image; :data:`_MAX_RATIO` carries a 10x margin), so a
  1 kB file claiming 19000x19000 is refused without a 1 GB allocation;
* PNG: chunk CRCs (``verify``), then the zlib stream of the IDAT chunks is inflated (counted in
  1 MiB steps, never held) and must end exactly at the size the header implies (Pillow silently
  pads cut pixel data, and this bounds a forged header without any ratio guess), then a full
  decode;
* JPEG: a strict libjpeg-turbo decode (``simplejpeg``, ``strict=True``), which turns libjpeg's
  *warnings* (bad Huffman code, premature end of data segment, extraneous bytes before a marker:
  what a bit flip in the entropy-coded data produces) into errors; Pillow only logs them and
  returns damaged pixels, even when the end-of-image marker is present. The decode is DCT-scaled
  and grey (:func:`_jpeg_check`): every coefficient of every component is still Huffman-decoded
  (where damage shows), only the IDCT, upsampling and colour conversion of full-size pixels are
  skipped; its output is the grey image the perceptual hash needs (:attr:`StoredImage.gray`), so
  a JPEG is decoded once per conversion, not twice;
* GIF, WebP and everything re-encoded to PNG: a full Pillow decode; a TIFF without a readable
  PhotometricInterpretation tag (which libtiff drops with a mere warning when a bit flip changes
  its type) is refused, since its polarity would be guessed and the pixels could come out inverted.

A bit flip that yields another *valid* coded value (e.g. a changed coefficient magnitude bit of a
JPEG) is undetectable without a checksum and decodes to slightly different pixels; the stored
bytes are then exactly the file's bytes (``image_sha256`` says which file that was).

Cost (per 640x480 JPEG, one core; ``benchmarks/``): sha256 ~0.07 ms (50-100 kB files) / ~0.24 ms
(~230 kB noisy files); the strict decode ~1.5 ms / ~3.7 ms, of which Huffman decoding is most (a
full-size RGB decode takes ~2.4 ms / ~4.7 ms, a 1/8-scale one ~1.3 ms / ~3.4 ms). So decoding
costs 10-20x hashing, *not* less: the price of refusing damaged pixels. It runs in the worker
processes (``num_proc``). Before the decode was shared with the perceptual hash, Pillow decoded
every JPEG a second time for it (~2.0 ms / ~4.6 ms).

EXIF orientation: annotations of every source in the corpus are in the stored pixel frame, but
``datasets`` (and browsers) rotate images by their EXIF orientation tag on decode. A JPEG with an
orientation other than 1 therefore has that tag rewritten to 1 in place (pixel data untouched)
and the row is flagged ``exif_orientation_reset:<n>``; other formats with such a tag are
re-encoded to PNG without it.
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import simplejpeg
from PIL import Image, ImageSequence, UnidentifiedImageError

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
    #: JPEG (YCbCr or grey) only: the grey (H', W') uint8 pixels of the strict decode, at the
    #: scale Pillow's ``draft("L", (PHASH_DRAFT, PHASH_DRAFT))`` picks, pixel-identical to what
    #: :func:`unihema_data.neardup.image_phashes` would decode itself (``None`` otherwise)
    gray: Optional[np.ndarray] = field(default=None, repr=False)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_regular_file(path: Path | str, what: str = "file") -> bytes:
    """The bytes of ``path``, refusing anything that is not a regular file (a FIFO would block a
    plain ``read`` forever; a device could be endless): opened non-blocking, checked with
    ``fstat`` on the open descriptor (no race with a swap of the path). Raises
    :class:`ImageDecodeError` naming the file. A sibling whose name differs only in case is a
    :class:`~unihema_data.errors.CorruptInputError` naming both
    (:func:`~unihema_data.formats.disk.refuse_case_twin`)."""
    from .formats.disk import refuse_case_twin, show

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ImageDecodeError(f"{show(path)}: cannot read {what}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageDecodeError(f"{show(path)}: not a regular file (a FIFO, device or socket); cannot read {what}")
        refuse_case_twin(path, what)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError as e:
        raise ImageDecodeError(f"{show(path)}: cannot read {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def load_image_for_storage(path: Path) -> StoredImage:
    """Read a native image file; verify it; keep or losslessly re-encode its bytes."""
    return image_from_bytes(read_regular_file(path, "image file"), str(path))


def image_from_bytes(data: bytes, name: str) -> StoredImage:
    """Verify and fully decode ``data`` (see the module docstring); keep or re-encode its bytes.
    Raises :class:`ImageDecodeError` naming ``name`` for anything that does not decode cleanly."""
    digest = sha256_bytes(data)
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").upper()
            width, height = im.size
            orientation = _orientation_from_info(im)  # header only: verify() must come before any load
            _check_claimed_size(fmt, width, height, len(im.getbands()), len(data), name)
            _check_tiff_tags(im, name)
            if fmt in BROWSER_FORMATS:
                im.verify()  # structural check (chunk CRCs for PNG)
        if fmt in BROWSER_FORMATS and (orientation in (None, 1) or fmt == "JPEG"):
            gray = _full_decode(fmt, data, width, height, name)
            flags = []
            if orientation not in (None, 1):
                data = _reset_jpeg_orientation(data, name)
                flags.append(f"exif_orientation_reset:{orientation}")
            return StoredImage(data, digest, width, height, fmt, False, flags, gray)
        with Image.open(io.BytesIO(data)) as im:
            if getattr(im, "n_frames", 1) > 1:
                raise ImageDecodeError(f"{name}: {fmt} file has {im.n_frames} pages/frames; "
                                       "the adapter must say which one is the image")
            im.load()
            png = _to_png(im, fmt, name)
            flags = [f"exif_orientation_dropped:{orientation}"] if orientation not in (None, 1) else []
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            struct.error, EOFError, zlib.error, MemoryError) as e:
        raise ImageDecodeError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    return StoredImage(png, digest, width, height, fmt, True, flags)


def _check_tiff_tags(im, name: str) -> None:
    """A TIFF whose PhotometricInterpretation tag (262, required by the spec) is absent or
    unreadable (libtiff drops a tag of the wrong type with only a warning) is decoded with a
    guessed polarity: a bilevel mask or a gray image comes out inverted. Refused instead."""
    if (im.format or "").upper() == "TIFF" and 262 not in getattr(im, "tag_v2", {}):
        raise ImageDecodeError(f"{name}: TIFF has no readable PhotometricInterpretation tag (262); "
                               "whether 0 is black or white cannot be told (damaged or non-conforming file)")


def check_pixel_file(data: bytes, name: str) -> None:
    """Integrity checks of a pixel file that is decoded by its reader rather than stored (a mask):
    the claimed size against the file size, PNG chunk CRCs and the exact length of the inflated
    IDAT stream, a strict JPEG decode. A bit flip in a PNG mask therefore never decodes to other
    mask values (a CRC or the zlib stream catches it); the reader's own full decode follows.
    Raises :class:`ImageDecodeError` naming ``name``."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").upper()
            width, height = im.size
            _check_claimed_size(fmt, width, height, len(im.getbands()), len(data), name)
            _check_tiff_tags(im, name)
            if fmt == "PNG":
                im.verify()
        if fmt == "PNG":
            _check_png_stream(data, name)
        elif fmt == "JPEG":
            _full_decode(fmt, data, width, height, name)
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            struct.error, EOFError, zlib.error, MemoryError) as e:
        raise ImageDecodeError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None


def read_pixel_file(path: Path | str, what: str = "mask file") -> bytes:
    """Bytes of a pixel file an adapter decodes itself (a mask), read through the disk layer
    (type and case-twin checks) and passed through :func:`check_pixel_file`."""
    from .formats.disk import read_bytes, show

    data = read_bytes(path, what)
    check_pixel_file(data, show(path))
    return data


#: largest plausible (decoded bytes) / (file bytes) per format, 10x above the best a real encoder
#: reaches on a flat image (JPEG ~190:1, GIF's LZW ~1000:1); PNG is bounded exactly by its
#: inflated size instead (:func:`_check_png_stream`), WebP lossless has no useful bound
_MAX_RATIO = {"JPEG": 2_000, "GIF": 15_000}


def _check_claimed_size(fmt: str, width: int, height: int, bands: int, nbytes: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"{name}: header claims an empty {width}x{height} image")
    limit = _MAX_RATIO.get(fmt)
    if limit and width * height * bands > limit * nbytes + 65_536:
        raise ImageDecodeError(
            f"{name}: {fmt} header claims {width}x{height} pixels, which {nbytes:,} bytes of file cannot "
            "hold (truncated file or forged header)")


#: the perceptual hash decodes a JPEG with Pillow's ``draft("L", (PHASH_DRAFT, PHASH_DRAFT))``
#: (:func:`unihema_data.neardup.image_phashes`; ``2 * neardup.HASH_WORK_SIZE``)
PHASH_DRAFT = 128


def draft_scale(width: int, height: int, size: int = PHASH_DRAFT) -> int:
    """The DCT scale denominator Pillow's JPEG ``draft(mode, (size, size))`` picks: the largest of
    8, 4, 2 that keeps both sides >= ``size``, else 1 (``JpegImagePlugin.draft``)."""
    scale = min(width // size, height // size)
    return next((s for s in (8, 4, 2) if scale >= s), 1)


def _full_decode(fmt: str, data: bytes, width: int, height: int, name: str) -> Optional[np.ndarray]:
    """Decode every pixel of a stored-as-is image; raise :class:`ImageDecodeError` on any damage.
    Returns the grey pixels of a JPEG's strict decode (see :func:`_jpeg_check`), else ``None``."""
    if fmt == "JPEG":
        return _jpeg_check(data, width, height, name)
    if fmt == "PNG":
        _check_png_stream(data, name)
    with Image.open(io.BytesIO(data)) as im:
        for _frame in ImageSequence.Iterator(im):
            im.load()
    return None


def _jpeg_check(data: bytes, width: int, height: int, name: str) -> Optional[np.ndarray]:
    """Strict, DCT-scaled decode of a whole JPEG. Every coefficient of every component is still
    Huffman-decoded (damage shows there: tests/test_hostile_images.py compares the refusals with
    a full-size strict RGB decode on flipped, cut and end-marker-less files); the inverse DCT,
    chroma upsampling and colour conversion run at 1/2-1/8 of the size or not at all.

    YCbCr and grey JPEGs are decoded to grey at :func:`draft_scale` (the scale and pixels Pillow's
    ``draft("L", ...)`` gives, which the perceptual hash reads: returned, so the image is decoded
    once); other colour spaces (CMYK, YCCK, RGB) at 1/8 scale in their own space (``None``)."""
    try:
        h, w, colorspace, _sub = simplejpeg.decode_jpeg_header(data)
        if colorspace in ("YCbCr", "Gray"):
            s = draft_scale(w, h)
            gray = simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True, min_height=-(-h // s),
                                          min_width=-(-w // s), min_factor=s)[..., 0]
        else:
            out = colorspace if colorspace in ("CMYK",) else "RGB"
            simplejpeg.decode_jpeg(data, colorspace=out, strict=True, min_height=1, min_width=1, min_factor=8)
            gray = None
    except ValueError as e:
        raise ImageDecodeError(f"{name}: damaged JPEG data ({e})") from None
    if (w, h) != (width, height):
        raise ImageDecodeError(f"{name}: JPEG frame is {w}x{h} but Pillow reads {width}x{height}")
    if gray is not None and gray.shape != (-(-h // s), -(-w // s)):  # not the scale Pillow would use
        gray = None
    return gray


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_raw_size(width: int, height: int, depth: int, color: int, interlace: int) -> int:
    """Bytes of the filtered scanlines the IHDR implies (one filter byte per row, per pass)."""
    bits = depth * _PNG_CHANNELS[color]
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        pw, ph = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pw > 0 and ph > 0:
            total += ph * (1 + -(-(pw * bits) // 8))
    return total


def _check_png_stream(data: bytes, name: str) -> None:
    """Inflate the IDAT stream and check it ends exactly where the IHDR says (Pillow pads cut
    pixel data silently). Memory stays bounded: output is counted in 1 MiB steps, not kept."""
    pos, ihdr, d, got, ended = 8, None, zlib.decompressobj(), 0, False
    expected = None
    step = 1 << 20
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            width, height, depth, color, _c, _f, interlace = struct.unpack(">IIBBBBB", body[:13])
            if color not in _PNG_CHANNELS:
                raise ImageDecodeError(f"{name}: PNG colour type {color} is invalid")
            expected = _png_raw_size(width, height, depth, color, interlace)
        elif ctype == b"IDAT" and expected is not None and not ended:
            buf = body
            while buf:
                got += len(d.decompress(buf, step))
                buf = d.unconsumed_tail
                if got > expected:
                    raise ImageDecodeError(f"{name}: PNG pixel data inflates to more than the {expected:,} "
                                           "bytes its header implies")
            ended = d.eof
        elif ctype == b"IEND":
            break
    if expected is None:
        raise ImageDecodeError(f"{name}: PNG without an IHDR chunk")
    if not ended:
        got += len(d.flush())
    if not d.eof or got != expected:
        raise ImageDecodeError(f"{name}: PNG pixel data is cut: {got:,} of the {expected:,} bytes its "
                               f"header implies ({'stream ends early' if d.eof else 'zlib stream unterminated'})")


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


def native_bytes(stored: bytes, qc_flags, name: str = "image") -> Optional[bytes]:
    """The native file's bytes recovered from a row's stored ``image`` bytes, so that
    ``sha256(native_bytes(...)) == image_sha256`` can be checked; ``None`` when the image was
    re-encoded (``reencoded_from:*``), whose native bytes are not kept. A JPEG whose orientation
    was reset (``exif_orientation_reset:<n>``) gets tag value ``n`` back (the only 2 bytes changed)."""
    flags = list(qc_flags or [])
    if any(f.startswith("reencoded_from:") for f in flags):
        return None
    for f in flags:
        if f.startswith("exif_orientation_reset:"):
            return _reset_jpeg_orientation(stored, name, int(f.split(":", 1)[1]))
    return stored


def _reset_jpeg_orientation(data: bytes, name: str, value: int = 1) -> bytes:
    """Set the EXIF orientation tag of a JPEG to ``value`` (default 1) in place (same length,
    pixels untouched)."""
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
                    value = struct.pack(endian + "H", value)
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
