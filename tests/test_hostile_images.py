"""Damaged images are refused at conversion time, naming the file (issue 18).

Each case is built by code: a PNG whose header claims 19000x19000 over ~100 bytes, a PNG whose
pixel data is cut (valid CRCs, IEND present), a JPEG with a bit flip in its entropy-coded data
(end marker intact) and truncated files; healthy images of every stored format still pass.
"""
from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from unihema_data.images import ImageDecodeError, image_from_bytes, load_image_for_storage, sha256_bytes


def _chunk(t: bytes, d: bytes) -> bytes:
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))


def _png(width: int, height: int, raw: bytes, color: int = 2, interlace: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw))
            + _chunk(b"IEND", b""))


def _noise(h=64, w=64, seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _encode(arr, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_png_header_claiming_huge_size_over_tiny_data_is_refused_fast():
    data = _png(19000, 19000, b"\x00" * 900)
    assert len(data) < 1024
    t0 = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=r"big\.png.*(cut|cannot)"):
        image_from_bytes(data, "big.png")
    assert time.perf_counter() - t0 < 2.0, "must be refused before allocating the claimed pixels"


def test_png_with_cut_pixel_data_is_refused():
    raw = b"".join(b"\x00" + bytes(64 * 3) for _ in range(32))  # 32 of 64 rows
    data = _png(64, 64, raw)
    Image.open(io.BytesIO(data)).verify()  # structurally fine: CRCs and IEND present
    with pytest.raises(ImageDecodeError, match=r"cut\.png: PNG pixel data is cut"):
        image_from_bytes(data, "cut.png")


def test_png_with_too_much_pixel_data_is_refused():
    raw = b"".join(b"\x00" + bytes(8 * 3) for _ in range(16))
    with pytest.raises(ImageDecodeError, match="more than"):
        image_from_bytes(_png(8, 8, raw), "long.png")


@pytest.mark.parametrize("interlace", [0, 1])
def test_healthy_pngs_pass(interlace):
    arr = _noise(37, 53)
    data = _encode(arr, "PNG") if not interlace else None
    if interlace:  # Pillow writes no interlaced PNGs: build one with the real Adam7 layout
        data = _adam7_png(arr)
    st = image_from_bytes(data, "ok.png")
    assert (st.width, st.height) == (53, 37) and st.data == data and not st.reencoded
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(st.data)).convert("RGB")), arr)


def _adam7_png(arr: np.ndarray) -> bytes:
    h, w, _ = arr.shape
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = arr[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    return _png(w, h, raw, interlace=1)


def _flip_entropy_byte(data: bytes, k: int) -> bytes:
    sos = data.index(b"\xff\xda")
    start = sos + 2 + struct.unpack(">H", data[sos + 2:sos + 4])[0]
    pos = start + k
    m = bytearray(data)
    m[pos] ^= 0x10
    return bytes(m)


def test_jpeg_with_broken_entropy_data_is_refused_even_with_end_marker():
    data = _encode(_noise(), "JPEG", quality=90)
    # find flips that Pillow decodes without complaint (end marker intact) but which are damage
    caught = 0
    pillow_accepted = 0
    sos = data.index(b"\xff\xda")
    for k in range(10, len(data) - sos - 20, 37):
        bad = _flip_entropy_byte(data, k)
        assert bad.endswith(b"\xff\xd9")
        try:
            Image.open(io.BytesIO(bad)).load()
            pillow_accepted += 1
        except Exception:  # noqa: BLE001
            continue
        try:
            st = image_from_bytes(bad, "flip.jpg")
        except ImageDecodeError as e:
            assert "flip.jpg" in str(e) and "damaged JPEG" in str(e)
            caught += 1
        else:  # an undetectable flip (a coefficient bit): stored verbatim, hash of those bytes
            assert st.data == bad and st.sha256 == sha256_bytes(bad)
    assert pillow_accepted > 20
    assert caught >= pillow_accepted // 4, (caught, pillow_accepted)


def test_truncated_jpeg_and_png_are_refused():
    jpg = _encode(_noise(), "JPEG", quality=90)
    png = _encode(_noise(), "PNG")
    for name, data in (("t.jpg", jpg[: len(jpg) // 2]), ("t.png", png[: len(png) // 2]),
                       ("t2.jpg", jpg[: len(jpg) // 2] + b"\xff\xd9")):
        with pytest.raises(ImageDecodeError, match=name.replace(".", r"\.")):
            image_from_bytes(data, name)


def test_jpeg_header_claiming_huge_size_is_refused_before_decoding():
    jpg = _encode(_noise(16, 16), "JPEG")
    sof = jpg.index(b"\xff\xc0")
    forged = jpg[:sof + 5] + struct.pack(">HH", 19000, 19000) + jpg[sof + 9:]
    t0 = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=r"huge\.jpg"):
        image_from_bytes(forged, "huge.jpg")
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("fmt,mode", [("JPEG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK"), ("GIF", "P"),
                                      ("WEBP", "RGB"), ("PNG", "L"), ("PNG", "RGBA")])
def test_healthy_images_of_every_stored_format_pass(fmt, mode):
    im = Image.fromarray(_noise(40, 30)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"progressive": True} if fmt == "JPEG" and mode == "RGB" else {}))
    data = buf.getvalue()
    st = image_from_bytes(data, "x")
    assert (st.width, st.height) == (30, 40)
    assert st.sha256 == sha256_bytes(data)


def test_truncated_gif_and_webp_are_refused():
    for fmt in ("GIF", "WEBP"):
        data = _encode(_noise(64, 64), fmt)
        with pytest.raises(ImageDecodeError, match="cut"):
            image_from_bytes(data[: len(data) * 2 // 3], f"cut.{fmt.lower()}")


def test_unreadable_and_non_regular_files_named(tmp_path):
    with pytest.raises(ImageDecodeError, match="missing.png"):
        load_image_for_storage(tmp_path / "missing.png")
