"""Generate a BCCD-layout Pascal VOC corpus for the conversion benchmarks.

Layout written under ``OUT`` (the layout the ``bccd`` adapter reads)::

    OUT/BCCD/Annotations/BloodImage_NNNNN.xml     VOC: 1-based inclusive xmin ymin xmax ymax
    OUT/BCCD/JPEGImages/BloodImage_NNNNN.jpg      640x480 RGB JPEG, ~50-100 KB
    OUT/BCCD/ImageSets/Main/{train,val,test,trainval}.txt   70 / 15 / 15 % of the images

Speed: a small pool of smear images (``--pool``, default 24) is rendered once with
``unihema_data.adapters._synthetic.smear`` (5-25 cells each: 1 WBC, platelets, RBCs). Every output
image is a pool image with a fresh random noise patch (so **every file has distinct bytes**:
``convert`` deduplicates identical bytes, which would distort the benchmark) encoded at a random
JPEG quality in 86-93 (file sizes ~50-100 KB, like the real BCCD's ~60-110 KB). Uniqueness is
checked with sha256 before the function returns. Deterministic for a given ``--seed``.

``--kind noisy`` writes the second benchmark corpus: large, poorly compressible JPEGs like camera
captures with sensor noise. Every image is a smear with exactly 20 boxes plus Gaussian noise
(sigma 25) over the whole frame, encoded at quality 95: ~230 KB per 640x480 image (real smear
photographs from phone/microscope cameras are in this range), so reading, hashing and writing the
bytes dominate, not annotation parsing.

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
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from unihema_data.adapters import _synthetic as syn
from unihema_data.formats.voc import VocObject, write_voc

W, H = 640, 480
NAMES = {"wbc": "WBC", "rbc": "RBC", "platelet": "Platelets"}
PATCH = 96  # side of the per-image noise patch, pixels


KINDS = ("smear", "noisy")
NOISY_BOXES, NOISY_SIGMA, NOISY_QUALITY = 20, 25.0, 95


def _render_pool(rng: np.random.Generator, size: int, seed: int,
                 n_boxes: int | None = None) -> list[tuple[np.ndarray, list, list]]:
    """``size`` (pixels HxWx3 uint8, COCO boxes [x, y, w, h] ints, kinds) triples."""
    pool = []
    for k in range(size):
        n = n_boxes if n_boxes is not None else int(rng.integers(5, 26))
        n_plt = int(rng.integers(0, 3))
        kinds = ["wbc"] + ["platelet"] * n_plt + ["rbc"] * max(n - 1 - n_plt, 0)
        boxes = syn.random_boxes(rng, W, H, len(kinds), lo=20, hi=110)
        im = syn.smear(W, H, list(zip(boxes, kinds)), seed * 1000 + k)
        pool.append((np.asarray(im), boxes, kinds))
    return pool


def make_corpus(out: Path | str, n: int = 2000, seed: int = 0, pool_size: int = 24, kind: str = "smear") -> Path:
    """Write the corpus; returns the ``BCCD`` folder. Raises if any two images share bytes."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    root = Path(out) / "BCCD"
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True, exist_ok=True)
    pool = _render_pool(rng, min(pool_size, n), seed, NOISY_BOXES if kind == "noisy" else None)
    hashes: set[str] = set()
    split_of: dict[str, str] = {}
    for i in range(n):
        pixels, boxes, kinds = pool[int(rng.integers(0, len(pool)))]
        if kind == "noisy":
            noisy = pixels.astype(np.float32) + rng.normal(0.0, NOISY_SIGMA, size=pixels.shape).astype(np.float32)
            arr = np.clip(noisy, 0, 255).astype(np.uint8)
            quality = NOISY_QUALITY
        else:
            arr = pixels.copy()
            y0 = int(rng.integers(0, H - PATCH))
            x0 = int(rng.integers(0, W - PATCH))
            noise = rng.integers(-8, 9, size=(PATCH, PATCH, 3), dtype=np.int16)
            patch = arr[y0:y0 + PATCH, x0:x0 + PATCH].astype(np.int16) + noise
            arr[y0:y0 + PATCH, x0:x0 + PATCH] = np.clip(patch, 0, 255).astype(np.uint8)
            quality = int(rng.integers(86, 94))
        buf = io.BytesIO()
        Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=quality)
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        if digest in hashes:
            raise RuntimeError(f"image {i}: bytes identical to an earlier image (seed {seed})")
        hashes.add(digest)
        stem = f"BloodImage_{i:05d}"
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(data)
        objs = [VocObject(NAMES[kd], (x + 1, y + 1, x + w, y + h)) for (x, y, w, h), kd in zip(boxes, kinds)]
        write_voc(root / "Annotations" / f"{stem}.xml", f"{stem}.jpg", W, H, objs)
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
    ap.add_argument("--pool", type=int, default=24, help="pre-rendered base images (default 24)")
    ap.add_argument("--kind", choices=KINDS, default="smear",
                    help="smear: ~50-100 KB JPEGs, 5-25 boxes; noisy: ~230 KB poorly compressible JPEGs, 20 boxes")
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
