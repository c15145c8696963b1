"""Near-duplicate images: perceptual-hash candidates, confirmed by a pixel comparison.

Public hematology datasets copy each other: BloodMNIST is PBC centre-cropped to 200x200 and
resized to 28/64/128/224 px, BCCD circulates re-encoded at other JPEG qualities, several
releases put the same image in their training and test folders. Byte hashes
(``image_sha256``) miss all of these. This module finds them in two stages:

1. **Candidates** (cheap, every pair): each row stores ``image_phash`` = ``[whole, centre]``, the
   64-bit DCT perceptual hash (``imagehash.phash``) of the whole image and of its central square
   crop of side ``5/9`` of the shorter side (the MedMNIST derivation: 200 of 360 px). Two images
   are candidates when whole~whole, centre~whole or whole~centre differ in at most
   :data:`MAX_HASH_BITS` bits. Pairs are enumerated exactly (blockwise XOR + popcount with numpy,
   no approximate index, so recall does not depend on bucket luck): O(N^2) 64-bit operations,
   about a second per 10k x 10k on one core (``benchmarks/bench_neardup.py``).
2. **Confirmation** (per candidate): both images (the cropped one cropped as matched) are
   resized to the same ``s x s`` grid (``s`` = the smaller image's shorter side, at most
   :data:`COMPARE_SIZE`), converted to float RGB, and accepted when the mean absolute
   difference is at most :data:`MAX_MEAN_ABS_DIFF` (of 255), the Pearson correlation of their
   grey levels is at least :data:`MIN_CORRELATION` *and* at most :data:`MAX_DIFFERING_FRACTION`
   of the grid's pixels differ by more than :data:`DIFFERING_LEVEL` grey levels. Resizing and
   JPEG re-encoding change pixels by a few levels on average and almost none by much (measured:
   mean <= 4.4, correlation >= 0.991, differing fraction <= 0.013 for 28-224 px copies and JPEG
   quality 30-95 of the real PBC sample and of synthetic crops); two different cells of one smear
   (same stain, background and framing) differ locally wherever their cells and neighbours are
   not in the same place (real PBC: mean >= 22, correlation <= 0.69, differing >= 0.32; flat
   synthetic crops: differing >= 0.057). Tests: tests/test_integrity_neardup.py; numbers per 10k
   images: benchmarks/bench_neardup.py.

Decisions depend only on the two images' bytes, so they are cached by the pair of sha256 in
``OUT/.unihema/neardup-cache.json`` (a cache: deleting it only costs time).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

HASH_SIZE = 8                  # imagehash default: 8x8 = 64-bit phash
CENTRE_FRACTION = 5 / 9        # MedMNIST: centre 200 x 200 of PBC's 360 x 363
MAX_HASH_BITS = 10             # candidate threshold (of 64 bits)
COMPARE_SIZE = 64
MAX_MEAN_ABS_DIFF = 12.0       # of 255, RGB
MIN_CORRELATION = 0.90
DIFFERING_LEVEL = 32           # grey levels
MAX_DIFFERING_FRACTION = 0.03  # of the grid's pixels
CACHE = Path(".unihema") / "neardup-cache.json"
#: modes of a candidate pair (i, j): which crop of each image matched
WHOLE_WHOLE, CENTRE_WHOLE, WHOLE_CENTRE = 0, 1, 2


def _open(data: bytes):
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    return img


def centre_crop(img):
    """Central square of side ``CENTRE_FRACTION`` x the shorter side (at least 1 px)."""
    w, h = img.size
    side = max(1, round(min(w, h) * CENTRE_FRACTION))
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def image_phashes(data: bytes) -> list[str]:
    """``[whole, centre]`` perceptual hashes (16 hex digits each) of an encoded image."""
    import imagehash

    img = _open(data)
    if img.mode != "L":
        img = img.convert("L")  # what phash does first; once for both crops
    return [_hex(imagehash.phash(img, hash_size=HASH_SIZE)), _hex(imagehash.phash(centre_crop(img), hash_size=HASH_SIZE))]


def _hex(h) -> str:
    """``str(ImageHash)`` (row-major bits, big-endian hex), without its per-bit Python loop."""
    return np.packbits(np.asarray(h.hash, dtype=bool).ravel()).tobytes().hex()


def _as_uint64(hexes: Iterable[str]) -> np.ndarray:
    return np.array([int(h, 16) if h else 0 for h in hexes], dtype=np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    b = x.view(np.uint8).reshape(*x.shape, 8)  # pragma: no cover - numpy < 2
    return np.unpackbits(b, axis=-1).sum(axis=-1)


def candidate_pairs(phashes: list[list[str]], max_bits: int = MAX_HASH_BITS,
                    block_elems: int = 1 << 24) -> list[tuple[int, int, int]]:
    """Every pair ``(i, j, mode)`` with ``i < j`` whose hashes differ in at most ``max_bits``
    bits (see module doc for ``mode``; whole~whole wins when several match). Rows without a hash
    (``[]``) are skipped. Exact enumeration in blocks of ``block_elems`` comparisons."""
    n = len(phashes)
    ok = np.array([len(p) == 2 for p in phashes], dtype=bool)
    whole = _as_uint64(p[0] if len(p) == 2 else "" for p in phashes)
    centre = _as_uint64(p[1] if len(p) == 2 else "" for p in phashes)
    idx = np.nonzero(ok)[0]
    whole, centre = whole[idx], centre[idx]
    m = len(idx)
    found: dict[tuple[int, int], int] = {}
    block = max(1, block_elems // max(m, 1))
    for start in range(0, m, block):
        stop = min(m, start + block)
        for mode, a, b in ((WHOLE_WHOLE, whole, whole), (CENTRE_WHOLE, centre, whole), (WHOLE_CENTRE, whole, centre)):
            d = _popcount(a[start:stop, None] ^ b[None, :])
            ii, jj = np.nonzero(d <= max_bits)
            ii = ii + start
            keep = (jj > ii) if mode == WHOLE_WHOLE else (jj != ii)  # whole~whole is symmetric
            for i, j in zip(ii[keep].tolist(), jj[keep].tolist()):
                if i < j:
                    key, md = (i, j), mode
                else:  # (j, i) with the roles of the crops swapped
                    key, md = (j, i), {WHOLE_WHOLE: WHOLE_WHOLE, CENTRE_WHOLE: WHOLE_CENTRE, WHOLE_CENTRE: CENTRE_WHOLE}[mode]
                if key not in found or md == WHOLE_WHOLE:
                    found[key] = md
    return sorted((int(idx[i]), int(idx[j]), md) for (i, j), md in found.items())


def _grid(img, s: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(img.convert("RGB").resize((s, s), Image.Resampling.BILINEAR, reducing_gap=None), dtype=np.float32)


def compare(a: bytes, b: bytes, mode: int = WHOLE_WHOLE) -> tuple[float, float, float]:
    """``(mean absolute RGB difference of 255, grey-level correlation, fraction of grid pixels
    whose grey levels differ by more than DIFFERING_LEVEL)`` of two encoded images after cropping
    as ``mode`` says and resizing both to a common ``s x s`` grid."""
    ia, ib = _open(a), _open(b)
    if mode == CENTRE_WHOLE:
        ia = centre_crop(ia)
    elif mode == WHOLE_CENTRE:
        ib = centre_crop(ib)
    s = max(1, min(COMPARE_SIZE, *ia.size, *ib.size))
    # area-average both down to s (antialiased), so a 360 px and a 28 px copy meet on one grid
    ga, gb = _grid(ia, s), _grid(ib, s)
    mad = float(np.abs(ga - gb).mean())
    ya, yb = ga.mean(axis=2).ravel(), gb.mean(axis=2).ravel()
    sa, sb = ya.std(), yb.std()
    if sa < 1e-6 or sb < 1e-6:  # flat images: identical iff both flat and equal
        corr = 1.0 if (sa < 1e-6 and sb < 1e-6) else 0.0
    else:
        corr = float(np.corrcoef(ya, yb)[0, 1])
    differing = float((np.abs(ya - yb) > DIFFERING_LEVEL).mean())
    return mad, corr, differing


def confirm(a: bytes, b: bytes, mode: int = WHOLE_WHOLE) -> bool:
    """True when the two images show the same picture (see module doc for the test)."""
    mad, corr, differing = compare(a, b, mode)
    return mad <= MAX_MEAN_ABS_DIFF and corr >= MIN_CORRELATION and differing <= MAX_DIFFERING_FRACTION


class DecisionCache:
    """Confirmation decisions by ``(sha_a, sha_b, mode)``, persisted in ``OUT/.unihema``."""

    VERSION = (f"{MAX_HASH_BITS}:{COMPARE_SIZE}:{MAX_MEAN_ABS_DIFF}:{MIN_CORRELATION}:{CENTRE_FRACTION}:"
               f"{DIFFERING_LEVEL}:{MAX_DIFFERING_FRACTION}")

    def __init__(self, out: Optional[Path] = None):
        self.path = Path(out) / CACHE if out is not None else None
        self.data: dict[str, bool] = {}
        if self.path is not None and self.path.is_file():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                if raw.get("version") == self.VERSION:
                    self.data = {k: bool(v) for k, v in raw.get("decisions", {}).items()}
            except (OSError, ValueError, AttributeError):
                self.data = {}  # a damaged cache is only a cache

    @staticmethod
    def key(sha_a: str, sha_b: str, mode: int) -> str:
        if sha_a > sha_b:  # canonical order; swap the crop roles with it
            sha_a, sha_b = sha_b, sha_a
            mode = {WHOLE_WHOLE: WHOLE_WHOLE, CENTRE_WHOLE: WHOLE_CENTRE, WHOLE_CENTRE: CENTRE_WHOLE}[mode]
        return f"{sha_a}:{sha_b}:{mode}"

    def decide(self, sha_a: str, sha_b: str, mode: int, load: Callable[[], tuple[bytes, bytes]]) -> bool:
        k = self.key(sha_a, sha_b, mode)
        if k not in self.data:
            a, b = load()
            self.data[k] = confirm(a, b, mode)
        return self.data[k]

    def save(self) -> None:
        if self.path is None:
            return
        from .outdir import atomic_write_text

        atomic_write_text(self.path, json.dumps({"version": self.VERSION, "decisions": self.data}, sort_keys=True))


__all__ = ["image_phashes", "candidate_pairs", "compare", "confirm", "DecisionCache", "centre_crop"]
