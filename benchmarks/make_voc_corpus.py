"""Generate a BCCD-layout Pascal VOC corpus for the conversion benchmarks.

Layout written under ``OUT`` (the layout the ``bccd`` adapter reads)::

    OUT/BCCD/Annotations/BloodImage_NNNNN.xml     VOC: 1-based inclusive xmin ymin xmax ymax
    OUT/BCCD/JPEGImages/BloodImage_NNNNN.jpg      640x480 RGB JPEG, ~50-100 KB (kind smear)
    OUT/BCCD/ImageSets/Main/{train,val,test,trainval}.txt   70 / 15 / 15 % of the images

Every image has its **own random cell layout** (5-25 cells: 1 WBC, 0-2 platelets, RBCs) drawn on
a pale background with sensor-like noise, encoded at a random JPEG quality in 86-93 (~50-100 KB,
like the real BCCD's ~60-110 KB). So every file has distinct bytes (``convert`` deduplicates
identical bytes) and no two images are near-duplicates (``convert`` also finds and confirms
near-duplicate candidates by their perceptual hashes; a corpus made of a few base pictures with
a changed patch each, as this generator used to write, turned that confirmation into the main
cost of the benchmark). Speed: ``--pool`` (default 24) noise fields are drawn once and rolled by
a random offset per image. Uniqueness is checked with sha256 before the function returns.
Deterministic for a given ``--seed``.

``--kind noisy`` writes the second benchmark corpus: large, poorly compressible JPEGs like camera
captures with sensor noise. Every image has exactly 20 boxes and Gaussian noise (sigma 25) over
the whole frame, encoded at quality 95: ~230 KB per 640x480 image (real smear photographs from
phone/microscope cameras are in this range), so reading, hashing and writing the bytes dominate,
not annotation parsing.

``--kind small`` writes 160x120 smears (3-8 cells, ~5 KB): many images at little disk cost, for
the check that peak memory stays flat from 10k to 50k images.

Usage::

    python benchmarks/make_voc_corpus.py OUT [--n 2000] [--seed 0] [--kind smear|noisy]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from unihema_data.adapters import _synthetic as syn
from unihema_data.formats.voc import VocObject, write_voc

W, H = 640, 480
NAMES = {"wbc": "WBC", "rbc": "RBC", "platelet": "Platelets"}
BASE = np.array([236, 222, 226], dtype=np.int16)  # pale smear background (as ``_synthetic.smear``)
COLOURS = {kind: tuple(int(v) for v in syn._COLOURS[kind]) for kind in NAMES}
NUCLEUS = (70, 30, 110)

KINDS = ("smear", "noisy", "small")
NOISY_BOXES, NOISY_SIGMA, NOISY_QUALITY = 20, 25.0, 95
SMALL_W, SMALL_H = 160, 120  # ``small``: the many-images corpus of the RSS check (~5 KB files)


def _noise_pool(rng: np.random.Generator, size: int, sigma: float, h: int, w: int) -> list[np.ndarray]:
    """``size`` int16 Gaussian noise fields (``h`` x ``w`` x 3), rolled per image (cheap; drawing a
    fresh field per image cost ~40 ms)."""
    return [np.rint(rng.normal(0.0, sigma, size=(h, w, 3))).astype(np.int16) for _ in range(size)]


def _layout(rng: np.random.Generator, n: int, w: int, h: int, lo: int, hi: int) -> tuple[list, list]:
    """One WBC, 0-2 platelets, the rest RBCs; COCO boxes fully inside the image."""
    n_plt = int(rng.integers(0, 3))
    kinds = ["wbc"] + ["platelet"] * n_plt + ["rbc"] * max(n - 1 - n_plt, 0)
    return syn.random_boxes(rng, w, h, len(kinds), lo=lo, hi=hi), kinds


def _shading(rng: np.random.Generator, h: int, w: int, amplitude: float = 24.0) -> np.ndarray:
    """A smooth random illumination field (a 4x4 grid of offsets, bicubically upsampled), as
    uneven lighting across a field gives. Used by ``small``: 160x120 smears of a few cells on the
    same pale background are otherwise alike to a 64-bit perceptual hash (its 8x8 low
    frequencies), and at 50k images the near-duplicate candidates to confirm grew faster than
    linearly, which real fields of view, and this corpus's purpose (memory, not near-duplicate
    confirmation), do not call for."""
    grid = rng.normal(0.0, amplitude, size=(4, 4)).astype(np.float32)
    field = np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC))
    return np.rint(field)[..., None].astype(np.int16)


def _render(rng: np.random.Generator, noise: np.ndarray, boxes: list, kinds: list, over: bool,
            shading: bool = False) -> np.ndarray:
    """One ellipse per box (WBCs get a nucleus) on the pale background, with a rolled noise field
    under the cells (``over=False``: a smear's background grain) or over the whole frame
    (``over=True``: camera sensor noise, cells included)."""
    h, w = noise.shape[:2]
    field = np.roll(noise, (int(rng.integers(0, h)), int(rng.integers(0, w))), axis=(0, 1))
    bg = np.broadcast_to(BASE, field.shape) if over else BASE + field
    if shading:
        bg = bg + _shading(rng, h, w)
    im = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    for (x, y, bw, bh), kd in zip(boxes, kinds):
        draw.ellipse([x, y, x + max(bw - 1, 0), y + max(bh - 1, 0)], fill=COLOURS[kd])
        if kd == "wbc" and bw > 6 and bh > 6:
            draw.ellipse([x + bw * 0.25, y + bh * 0.25, x + bw * 0.7, y + bh * 0.7], fill=NUCLEUS)
    arr = np.asarray(im)
    return np.clip(arr + field, 0, 255).astype(np.uint8) if over else arr


def make_corpus(out: Path | str, n: int = 2000, seed: int = 0, pool_size: int = 24, kind: str = "smear") -> Path:
    """Write the corpus; returns the ``BCCD`` folder. Raises if any two images share bytes.

    Every image has its own random cell layout (so no two images are near-duplicates: ``convert``
    finds and confirms near-duplicate candidates, which a corpus made of a few base pictures would
    turn into its main cost); ``pool_size`` noise fields are drawn once and rolled per image."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    root = Path(out) / "BCCD"
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True, exist_ok=True)
    w, h = (SMALL_W, SMALL_H) if kind == "small" else (W, H)
    sigma = NOISY_SIGMA if kind == "noisy" else 6.0
    pool = _noise_pool(rng, max(1, min(pool_size, n)), sigma, h, w)
    hashes: set[str] = set()
    split_of: dict[str, str] = {}
    for i in range(n):
        if kind == "noisy":
            boxes, kinds = _layout(rng, NOISY_BOXES, w, h, 20, 110)
            quality = NOISY_QUALITY
        elif kind == "small":
            boxes, kinds = _layout(rng, int(rng.integers(3, 9)), w, h, 6, 30)
            quality = int(rng.integers(86, 94))
        else:
            boxes, kinds = _layout(rng, int(rng.integers(5, 26)), w, h, 20, 110)
            quality = int(rng.integers(86, 94))
        arr = _render(rng, pool[int(rng.integers(0, len(pool)))], boxes, kinds, over=kind == "noisy",
                      shading=kind == "small")
        buf = io.BytesIO()
        Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=quality)
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        if digest in hashes:
            raise RuntimeError(f"image {i}: bytes identical to an earlier image (seed {seed})")
        hashes.add(digest)
        stem = f"BloodImage_{i:05d}"
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(data)
        objs = [VocObject(NAMES[kd], (x + 1, y + 1, x + bw, y + bh)) for (x, y, bw, bh), kd in zip(boxes, kinds)]
        write_voc(root / "Annotations" / f"{stem}.xml", f"{stem}.jpg", w, h, objs)
        u = rng.random()
        split_of[stem] = "train" if u < 0.70 else ("val" if u < 0.85 else "test")
    main = root / "ImageSets" / "Main"
    for split in ("train", "val", "test"):
        (main / f"{split}.txt").write_text("".join(f"{s}\n" for s, v in split_of.items() if v == split))
    (main / "trainval.txt").write_text("".join(f"{s}\n" for s, v in split_of.items() if v in ("train", "val")))
    return root


def corpus_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to create; the corpus goes to OUT/BCCD")
    ap.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=24, help="noise fields drawn once, rolled per image (default 24)")
    ap.add_argument("--kind", choices=KINDS, default="smear",
                    help="smear: ~50-100 KB JPEGs, 5-25 boxes; noisy: ~230 KB poorly compressible JPEGs, 20 boxes; small: 160x120, ~5 KB")
    a = ap.parse_args(argv)
    if a.n < 1:
        ap.error("--n must be >= 1")
    t0 = time.perf_counter()
    root = make_corpus(a.out, a.n, a.seed, a.pool, a.kind)
    size = corpus_bytes(root)
    print(f"{root}: {a.n} images, {size / 2**20:.1f} MiB, {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
