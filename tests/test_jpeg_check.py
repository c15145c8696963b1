"""The strict JPEG check decodes DCT-scaled and in grey, and its pixels feed the perceptual hash.

Two claims are tested here (see ``unihema_data.images._jpeg_check``):

1. The scaled grey decode refuses exactly the damaged files a full-size strict RGB decode refuses
   (entropy-coded data with flipped bits, files cut short, files without their end marker):
   every coefficient is still Huffman-decoded, only the IDCT/upsampling/colour conversion shrink.
2. Its output is pixel-identical to what Pillow's ``draft("L", (128, 128))`` decode gives, so the
   perceptual hashes computed from it equal those :func:`image_phashes` computes from the bytes.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from unihema_data import neardup
from unihema_data.images import PHASH_DRAFT, ImageDecodeError, draft_scale, image_from_bytes
from unihema_data.neardup import image_phashes

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


def _smear(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth picture with edges plus noise (compresses like a photograph, not like pure noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([128 + 60 * np.sin(xx / (7 + c) + c) * np.cos(yy / (11 + c)) for c in range(3)], axis=-1)
    for _ in range(6):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(3, max(4, min(h, w) // 3))
        arr[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    arr += rng.normal(0, 8, arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def _jpeg(arr: np.ndarray, mode: str = "RGB", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="JPEG", **kw)
    return buf.getvalue()


VARIANTS = [
    ("420 640x480", (480, 640), "RGB", {"quality": 90}),
    ("444 odd size", (131, 257), "RGB", {"quality": 95, "subsampling": 0}),
    ("422 odd size", (333, 517), "RGB", {"quality": 85, "subsampling": 1}),
    ("progressive", (480, 640), "RGB", {"quality": 90, "progressive": True}),
    ("grey", (300, 410), "L", {"quality": 90}),
    ("small (< 128 px)", (90, 100), "RGB", {"quality": 90}),
    ("large (1/8 scale)", (1100, 1300), "RGB", {"quality": 80}),
    ("restart markers", (256, 384), "RGB", {"quality": 90}),
]


def _pillow_draft_gray(data: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    im.draft("L", (PHASH_DRAFT, PHASH_DRAFT))
    im.load()
    return np.asarray(im if im.mode == "L" else im.convert("L"))


def test_draft_size_matches_the_perceptual_hash_pipeline():
    assert PHASH_DRAFT == 2 * neardup.HASH_WORK_SIZE
    assert [draft_scale(w, h) for w, h in ((640, 480), (1300, 1100), (100, 90), (256, 200), (1024, 1024))] == [2, 8, 1, 1, 8]


@pytest.mark.parametrize("label,shape,mode,kw", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_gray_decode_is_pillows_draft_decode_and_gives_the_same_phashes(label, shape, mode, kw):
    data = _jpeg(_smear(*shape, seed=len(label)), mode, **kw)
    st = image_from_bytes(data, "x.jpg")
    assert st.gray is not None and st.gray.dtype == np.uint8
    assert np.array_equal(st.gray, _pillow_draft_gray(data))
    assert image_phashes(data, st.gray) == image_phashes(data)


def test_cmyk_jpeg_is_checked_and_hashed_by_pillow():
    data = _jpeg(_smear(64, 80, 1), "CMYK")
    st = image_from_bytes(data, "c.jpg")
    assert st.gray is None and (st.width, st.height) == (80, 64)
    assert len(image_phashes(data)) == 2


def _full_strict_refuses(data: bytes) -> bool:
    try:
        simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError:
        return True
    return False


def _we_refuse(data: bytes) -> bool:
    try:
        image_from_bytes(data, "d.jpg")
    except ImageDecodeError as e:
        assert "d.jpg" in str(e)
        return True
    return False


@pytest.mark.parametrize("label,shape,mode,kw", [v for v in VARIANTS if v[0] != "large (1/8 scale)"] +
                         [("large, 1/8 scale", (1100, 1300), "RGB", {"quality": 80})],
                         ids=[v[0] for v in VARIANTS if v[0] != "large (1/8 scale)"] + ["large"])
def test_scaled_decode_refuses_what_a_full_decode_refuses(label, shape, mode, kw):
    """Flipped bytes all over the entropy-coded data (end marker intact), cuts, missing end
    marker: the verdict equals a full-size strict RGB decode's on every file."""
    data = _jpeg(_smear(*shape, seed=3), mode, **kw)
    sos = data.rindex(b"\xff\xda") if kw.get("progressive") else data.index(b"\xff\xda")
    start = data.index(b"\xff\xda") + 20  # first scan's data (progressive: all scans after it)
    rng = np.random.default_rng(7)
    cases = []
    for pos in np.linspace(start, len(data) - 3, 60).astype(int):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        if bad[pos] == 0xFF or bad[pos - 1] == 0xFF:  # keep the marker structure: entropy damage only
            continue
        cases.append(("flip", bytes(bad)))
    for frac in (0.3, 0.6, 0.9, 0.99):
        cut = data[: int(len(data) * frac)]
        cases.append(("cut", cut))
        cases.append(("cut+EOI", cut + b"\xff\xd9"))
    cases.append(("no EOI", data[:-2]))
    assert sos > 0 and len(cases) > 50
    flips_refused = 0
    for kind, bad in cases:
        full, ours = _full_strict_refuses(bad), _we_refuse(bad)
        assert ours == full, f"{kind}: full decode refuses={full}, scaled grey decode refuses={ours}"
        if kind == "flip":
            flips_refused += ours
        else:
            assert ours, f"{kind} not refused"
    # many flips desynchronise the Huffman decoder; the others change a coefficient into another
    # valid one (undetectable without a checksum, by any decoder)
    assert flips_refused >= 5


def _real_jpegs() -> list[Path]:
    if not REAL.is_dir():
        return []
    out = []
    for p in sorted(REAL.rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file():
            with Image.open(p) as im:
                if im.format == "JPEG":
                    out.append(p)
    return out


def test_real_sample_jpegs_hash_the_same_from_the_check_decode():
    files = _real_jpegs()
    if not files:
        pytest.skip("real samples not available")
    for p in files:
        data = p.read_bytes()
        st = image_from_bytes(data, str(p))
        if st.gray is None:
            continue
        assert np.array_equal(st.gray, _pillow_draft_gray(data)), p
        assert image_phashes(data, st.gray) == image_phashes(data), p
