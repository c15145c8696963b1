"""Near-duplicate images: perceptual-hash candidates, confirmed by a pixel comparison.

Public hematology datasets copy each other: BloodMNIST is PBC centre-cropped to 200x200 and
resized to 28/64/128/224 px, BCCD circulates re-encoded at other JPEG qualities, several
releases put the same image in their training and test folders. Byte hashes
(``image_sha256``) miss all of these. This module finds them in two stages:

1. **Candidates** (cheap): each row stores ``image_phash`` = ``[whole, centre]``, the 64-bit DCT
   perceptual hash (``imagehash.phash``) of the whole image and of its central square crop of
   side ``5/9`` of the shorter side (the MedMNIST derivation: 200 of 360 px). Two images are
   candidates when whole~whole, centre~whole or whole~centre differ in at most
   :data:`MAX_HASH_BITS` bits (copies measured: 0-8 bits, 28 px MedMNIST copies the farthest;
   different cells of the real PBC sample: >= 18). Every such pair is found exactly, through a
   multi-index over 13-bit chunks, in near-linear time (``benchmarks/bench_neardup.py``).
2. **Confirmation** (per candidate): both images (the cropped one cropped as matched) are
   resized to the same ``s x s`` grid (``s`` = the smaller image's shorter side, at most
   :data:`COMPARE_SIZE`), converted to float RGB, and accepted when the mean absolute
   difference is at most :data:`MAX_MEAN_ABS_DIFF` (of 255), the Pearson correlation of their
   grey levels is at least :data:`MIN_CORRELATION` *and* at most :data:`MAX_DIFFERING_FRACTION`
   of the grid's pixels differ by more than :data:`DIFFERING_LEVEL` grey levels. Resizing and
   JPEG re-encoding change pixels by a few levels on average and almost none by much (measured
   on 28-224 px copies, MedMNIST crops and JPEG quality 30-95: real PBC sample mean <= 4.4,
   correlation >= 0.991, differing 0; synthetic crops mean <= 4.3, correlation >= 0.988,
   differing <= 0.008); two different cells of one smear (same stain, background and framing)
   differ wherever their cells and neighbours are not in the same place (real PBC, also at 28 px:
   mean >= 22, correlation <= 0.81, differing >= 0.29; the closest synthetic pair: correlation
   0.943, differing 0.024). Tests: tests/test_integrity_neardup.py; numbers per 10k
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
HASH_WORK_SIZE = 64            # images are reduced to >= 64 px (shorter side) before hashing
CENTRE_FRACTION = 5 / 9        # MedMNIST: centre 200 x 200 of PBC's 360 x 363
INDEX_CHUNKS = 5               # 64-bit hash = 5 chunks (13,13,13,13,12 bits) in the candidate index
MAX_HASH_BITS = 9              # candidate threshold (of 64 bits) = 2 * INDEX_CHUNKS - 1; copies measured: 0-8
COMPARE_SIZE = 64
MAX_MEAN_ABS_DIFF = 12.0       # of 255, RGB
MIN_CORRELATION = 0.97
DIFFERING_LEVEL = 32           # grey levels
MAX_DIFFERING_FRACTION = 0.015  # of the grid's pixels
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


def image_phashes(data: bytes, gray=None) -> list[str]:
    """``[whole, centre]`` perceptual hashes (16 hex digits each) of an encoded image: the image
    is decoded in grey (JPEG at a reduced scale, still >= 128 px), then the whole image and its
    centre crop are each box-reduced to a shorter side of 64-127 px and hashed by :func:`phash_hex`
    (``imagehash.phash``, bit for bit). The same pipeline for every image, so
    copies at any size meet.

    ``gray``: the grey pixels of that reduced decode when the caller already has them (a
    (H', W') uint8 array: :attr:`unihema_data.images.StoredImage.gray`, the strict JPEG check's
    output, pixel-identical to Pillow's ``draft("L", (128, 128))`` decode); ``data`` is then not
    decoded again."""
    from PIL import Image

    if gray is not None:
        img = Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), "L")
    else:
        img = Image.open(io.BytesIO(data))
        img.draft("L", (2 * HASH_WORK_SIZE, 2 * HASH_WORK_SIZE))  # JPEG: decode at a reduced scale (DCT domain)
        img.load()
    if img.mode != "L":
        img = img.convert("L")  # what phash does first; once for both crops
    return [phash_hex(_reduced(img)), phash_hex(_reduced(centre_crop(img)))]


def phash_hex(img) -> str:
    """``str(imagehash.phash(img, hash_size=8))`` of a mode-``L`` image, bit for bit (the same
    LANCZOS resize to 32x32, the same ``scipy.fftpack`` DCT, the same median of the 8x8 low
    frequencies; ``tests/test_integrity_neardup.py`` compares them), without ``imagehash``'s per-call
    overhead (a second ``convert``, ``ImageHash`` objects, ``numpy.median``): a third of the
    conversion's per-image Python time went there."""
    from PIL import Image
    from scipy.fftpack import dct

    size = HASH_SIZE * 4
    pixels = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS))
    low = dct(dct(pixels, axis=0), axis=1)[:HASH_SIZE, :HASH_SIZE]
    ordered = np.sort(low, axis=None)
    mid = ordered.size // 2
    median = (ordered[mid - 1] + ordered[mid]) / 2  # numpy.median of an even count
    return np.packbits(low > median).tobytes().hex()


def _reduced(img):
    """Box-reduce a large image to a shorter side of 64-127 px (phash's own 32x32 resize then
    reads few pixels); the crop is taken before this, at the decoded resolution."""
    factor = min(img.size) // HASH_WORK_SIZE
    return img.reduce(factor) if factor > 1 else img


def _as_uint64(hexes: Iterable[str]) -> np.ndarray:
    return np.array([int(h, 16) if h else 0 for h in hexes], dtype=np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    b = x.view(np.uint8).reshape(*x.shape, 8)  # pragma: no cover - numpy < 2
    return np.unpackbits(b, axis=-1).sum(axis=-1)


def _directed_pairs(a: np.ndarray, b: np.ndarray, max_bits: int, block_pairs: int = 1 << 22) -> np.ndarray:
    """Sorted unique ``i * m + j`` (``i != j``) with ``popcount(a[i] ^ b[j]) <= max_bits``, found
    with a multi-index: one sorted index per chunk (:data:`INDEX_CHUNKS` nearly equal chunks of
    the 64 bits), probed with the chunk itself and its one-bit variants. Two hashes within
    ``2 * INDEX_CHUNKS - 1`` bits have a chunk differing in at most one bit (pigeonhole), so every
    pair within ``min(max_bits, 2 * INDEX_CHUNKS - 1)`` bits is found.
    Vectorized; memory bounded by ``block_pairs``."""
    m = len(a)
    found = []
    chunks = []  # (shift, width): 64 bits in INDEX_CHUNKS nearly equal chunks
    pos = 0
    for c in range(INDEX_CHUNKS):
        width = (64 - pos) // (INDEX_CHUNKS - c)
        chunks.append((pos, width))
        pos += width
    for (shift, width), probe in ((ch, p) for ch in chunks for p in [0, *(1 << f for f in range(ch[1]))]):
        mask = np.uint64((1 << width) - 1)
        ka = ((a >> np.uint64(shift)) & mask).astype(np.int64) ^ probe
        kb = ((b >> np.uint64(shift)) & mask).astype(np.int64)
        order = np.argsort(kb, kind="stable")
        sb = kb[order]
        lo, hi = np.searchsorted(sb, ka, "left"), np.searchsorted(sb, ka, "right")
        counts = hi - lo
        start = 0
        while start < m:
            # rows [start, stop) whose bucket pairs fit in one block (at least one row)
            cum = np.cumsum(counts[start:])
            stop = start + max(1, int(np.searchsorted(cum, block_pairs, "right")))
            cnt = counts[start:stop]
            total = int(cnt.sum())
            if total:
                ii = np.repeat(np.arange(start, stop), cnt)
                pos = np.arange(total) + np.repeat(lo[start:stop] - (np.cumsum(cnt) - cnt), cnt)
                jj = order[pos]
                keep = (ii != jj) & (_popcount(a[ii] ^ b[jj]) <= max_bits)
                found.append(ii[keep].astype(np.int64) * m + jj[keep])
            start = stop
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def candidate_pairs(phashes: list[list[str]], max_bits: int = MAX_HASH_BITS) -> list[tuple[int, int, int]]:
    """Every pair ``(i, j, mode)`` with ``i < j`` whose hashes (whole~whole, centre of ``i`` ~
    whole of ``j``, whole of ``i`` ~ centre of ``j``: ``mode``, whole~whole winning) differ in at
    most ``max_bits`` (<= ``2 * INDEX_CHUNKS - 1``) bits: exactly the all-pairs result (tested against
    :func:`exhaustive_pairs`), found through a multi-index (:func:`_directed_pairs`) in
    near-linear time instead of comparing all pairs. Rows without a hash (``[]``) are skipped."""
    if max_bits > 2 * INDEX_CHUNKS - 1:
        raise ValueError(f"the chunk index finds every pair within {2 * INDEX_CHUNKS - 1} bits; max_bits must not exceed it")
    ok = np.array([len(p) == 2 for p in phashes], dtype=bool)
    idx = np.nonzero(ok)[0]
    whole = _as_uint64(phashes[i][0] for i in idx)
    centre = _as_uint64(phashes[i][1] for i in idx)
    m = len(idx)
    found: dict[tuple[int, int], int] = {}
    for mode, a, b in ((CENTRE_WHOLE, centre, whole), (WHOLE_WHOLE, whole, whole)):
        codes = _directed_pairs(a, b, max_bits)
        ii, jj = (codes // max(m, 1)).tolist(), (codes % max(m, 1)).tolist()
        for i, j in zip(ii, jj):
            if mode == WHOLE_WHOLE:
                key, md = (min(i, j), max(i, j)), WHOLE_WHOLE
            elif i < j:
                key, md = (i, j), CENTRE_WHOLE
            else:  # centre of i ~ whole of j with i > j: the pair (j, i) matched whole~centre
                key, md = (j, i), WHOLE_CENTRE
            if key not in found or md == WHOLE_WHOLE:
                found[key] = md
    return sorted((int(idx[i]), int(idx[j]), md) for (i, j), md in found.items())


def exhaustive_pairs(phashes: list[list[str]], max_bits: int = MAX_HASH_BITS) -> set[tuple[int, int]]:
    """Reference for the tests and the benchmark: every pair within ``max_bits`` in any mode,
    by all-pairs comparison (quadratic)."""
    out = set()
    ok = [i for i, p in enumerate(phashes) if len(p) == 2]
    w = {i: int(phashes[i][0], 16) for i in ok}
    c = {i: int(phashes[i][1], 16) for i in ok}
    for x in range(len(ok)):
        for y in range(x + 1, len(ok)):
            i, j = ok[x], ok[y]
            if min(bin(w[i] ^ w[j]).count("1"), bin(c[i] ^ w[j]).count("1"), bin(w[i] ^ c[j]).count("1")) <= max_bits:
                out.add((i, j))
    return out


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
