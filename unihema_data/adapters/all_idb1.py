"""ALL-IDB1 (Donida Labati, Piuri, Scotti, ICIP 2011): 108 blood-smear fields with blast centroids,
plus the third-party per-type RBC / WBC masks of andrealoddo/ALL-IDB1-masks (Im001-Im010 only).

Native layout (the located root holds both downloads one level below; the images are
request-only, so the adapter works from a manual download)::

    <root>/ALL_IDB1/im/ImNNN_Y.jpg         fields (ALL_IDB1.zip; folder names UNCONFIRMED: found by content)
    <root>/ALL_IDB1/xyc/ImNNN_Y.xyc        blast centroids, one "x y" per line (may share the image folder)
    <root>/ALL-IDB1-masks-<commit>/ImNNN_1_RBC.tif, ImNNN_1_WBCs.tif     masks (GitHub archive)

The root is the folder with ``*/Im*_WBCs.tif`` one level below (the masks repository). Image and
``.xyc`` folders are found by content (up to three levels below the root); two candidate folders
for one role are an error naming both; no image folder is an error explaining the manual download.

Conventions:
* Image ``ImNNN_Y.jpg``: ``Y`` = 1 for an ALL patient's field, 0 for a healthy one (``meta``
  disease ``leukemia`` / ``normal``); no image-level class label.
* Blasts: each ``.xyc`` line is one blast centroid ``x y`` (whitespace, comma or semicolon
  separated; pixel coordinates used as they are, 0- vs 1-based UNCONFIRMED) -> a point object of
  category ``blast`` (box ``[x, y, 0, 0]``, ``bbox_source = from_point``). A point outside the image or
  a malformed line is an error naming file and line. An image without a ``.xyc`` file is reported
  (``orphaned``) and read as no blasts.
* Masks (checked on the masks repository per the research note: most are 1-bit CCITT TIFF, True =
  cell; ``Im005_1_WBCs.tif`` is 8-bit L {0,255} PackBits): both encodings are read to {0, 255}
  (1-bit as PIL's ``convert("L")``). The two binary masks of an image are combined in the worker
  into one semantic map of native values ``0`` background, ``1`` RBC, ``2`` WBCs, ``3`` a pixel in
  both (``RBC+WBCs``, mapped to ``ignore``), so the round trip to both native masks is exact. Any
  other mask value, a mask of the wrong size (names both files) or one of the pair missing is an
  error. Masks exist for Im001-Im010 only: the other images carry points only. A mask pair
  without an image is reported (``orphaned``).
* Mask size 1712x1368 vs the site-wide 2592x1944 claim: the size check against the image is done
  by the core (an error names both files), nothing assumes either size.
* No split, no patient ids (``group_id`` empty; UNCONFIRMED whether fields share a patient).

Evidence: research note ``datasets-segmentation.md`` section 4 (no real sample: neither the
images nor the ALL-IDB1 masks are in ``shared/real-samples``).
"""
from __future__ import annotations

import io

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw

from ..formats import disk
from . import _synthetic as syn
from .base import Adapter, CorruptInputError, FakeSample, FakeTruth, MissingInputError, RawObject, RawSample
from .families import refuse_case_collisions

IMAGE_RE = re.compile(r"^Im(\d+)_([01])$")
MASK_RE = re.compile(r"^(Im\d+_[01])_(RBC|WBCs)$")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".tif", ".tiff", ".png")
MASK_TYPES = ("RBC", "WBCs")
MASK_VALUES = {0: "background", 1: "RBC", 2: "WBCs", 3: "RBC+WBCs"}


def _files(folder: Path, pattern: re.Pattern, suffixes: tuple[str, ...]) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.suffix.lower() in suffixes and pattern.match(p.stem)]
    except OSError:
        return []


def read_binary(path: Path) -> np.ndarray:
    """A 1-bit or 8-bit {0,255} mask as a boolean array; other values are an error naming the file."""
    from ..images import check_pixel_file

    data = disk.read_bytes(path, "mask file")
    try:
        check_pixel_file(data, disk.show(path))  # e.g. a TIFF whose polarity tag is unreadable
        with Image.open(io.BytesIO(data)) as im:
            a = np.asarray(im)
    except (OSError, ValueError) as e:
        raise CorruptInputError(f"{disk.show(path)}: unreadable mask ({e})") from None
    if a.dtype == bool:
        return a
    if a.ndim != 2:
        raise CorruptInputError(f"{disk.show(path)}: expected a 1-bit or 8-bit gray mask, got shape {a.shape}")
    bad = sorted(set(np.unique(a).tolist()) - {0, 255})
    if bad:
        raise CorruptInputError(f"{disk.show(path)}: unexpected mask value(s) {bad[:8]} (expected 0 and 255)")
    return a == 255


@dataclass(frozen=True)
class Idb1Record:
    rel_path: str
    image: Path
    xyc: Optional[Path]
    masks: Optional[tuple[Path, Path]]  # (RBC, WBCs)


class AllIdb1Adapter(Adapter):
    id = "all_idb1"
    version = "1"
    tasks = ("detection", "segmentation")
    markers = ("*/Im*_WBCs.tif",)
    mask_values = dict(MASK_VALUES)

    # ---------------------------------------------------------------- layout
    def _layout(self, root: Path) -> tuple[Path, Path, Optional[Path]]:
        masks = [d for d in disk.subdirs(root) if _files(d, MASK_RE, (".tif", ".tiff"))]
        if len(masks) != 1:
            raise CorruptInputError(f"{self.id}: expected one mask folder under {disk.show(root)}, found "
                                    + (" and ".join(disk.show(m) for m in masks[:2]) or "none"))
        dirs = [d for d in disk.walk_dirs(root) if d != masks[0]]
        images = [d for d in dirs if _files(d, IMAGE_RE, IMAGE_SUFFIXES)]
        if not images:
            raise MissingInputError(
                f"{self.id}: masks found in {disk.show(masks[0])} but no ALL-IDB1 images (ImNNN_Y.jpg) under "
                f"{disk.show(root)}. The images are request-only: see https://homes.di.unimi.it/scotti/all/, "
                f"then extract ALL_IDB1.zip next to the masks folder.")
        xycs = [d for d in dirs if _files(d, IMAGE_RE, (".xyc",))]
        for what, found in (("image", images), (".xyc", xycs)):
            if len(found) > 1:
                raise CorruptInputError(f"{self.id}: two {what} folders under {disk.show(root)}: "
                                        f"{disk.show(found[0])} and {disk.show(found[1])}; keep one copy")
        return images[0], masks[0], (xycs[0] if xycs else None)

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        img, msk, xyc = self._layout(root)
        self.report.info["layout"] = (f"images in {disk.rel(img, root)}/, centroids in "
                                      f"{disk.rel(xyc, root) + '/' if xyc else '(none)'}, masks in {disk.rel(msk, root)}/")

    def records(self, root: Path) -> Iterator[Idb1Record]:
        img_dir, mask_dir, xyc_dir = self._layout(root)
        for d in (img_dir, mask_dir, xyc_dir):
            if d is not None:
                refuse_case_collisions(disk.list_dir(d, None, root)[1])
        images = disk.index_by_stem(disk.list_files(img_dir, IMAGE_SUFFIXES, self.report, root, "an image file"), "image")
        xycs = disk.index_by_stem(_files(xyc_dir, IMAGE_RE, (".xyc",)), ".xyc file") if xyc_dir else {}
        pairs: dict[str, dict[str, Path]] = {}
        for m in disk.list_files(mask_dir, (".tif", ".tiff"), self.report, root, "a mask file"):
            mm = MASK_RE.match(m.stem)
            if not mm:
                self.report.skip(disk.rel(m, root), "not an ImNNN_Y_{RBC,WBCs}.tif mask")
                continue
            pairs.setdefault(mm.group(1), {})[mm.group(2)] = m
        for stem, got in sorted(pairs.items()):
            if stem not in images:
                for m in got.values():
                    self.report.orphan(disk.rel(m, root), "mask without an image (not converted)")
            elif len(got) != 2:
                have = next(iter(got.values()))
                missing = [t for t in MASK_TYPES if t not in got][0]
                raise MissingInputError(f"{disk.show(have)}: its pair {stem}_{missing}.tif is missing")
        for stem in sorted(set(xycs) - set(images)):
            self.report.orphan(disk.rel(xycs[stem], root), ".xyc file without an image")
        for stem, img in sorted(images.items()):
            if not IMAGE_RE.match(stem):
                raise CorruptInputError(f"{disk.show(img)}: unexpected image name (expected ImNNN_0 or ImNNN_1)")
            if stem not in xycs:
                self.report.orphan(disk.rel(img, root), "image without a .xyc file (read as no blasts)")
            got = pairs.get(stem, {})
            masks = (got["RBC"], got["WBCs"]) if len(got) == 2 else None
            yield Idb1Record(disk.rel(img, root), img, xycs.get(stem), masks)

    # ---------------------------------------------------------------- parsing
    def read_xyc(self, path: Path, width: int, height: int) -> list[tuple[float, float]]:
        points = []
        for lineno, line in disk.read_lines(path, ".xyc file"):
            parts = [p for p in re.split(r"[\s,;]+", line) if p]
            try:
                x, y = (float(v) for v in parts)
            except ValueError:
                raise CorruptInputError(f"{disk.show(path)}:{lineno}: expected 'x y', got {line[:60]!r}") from None
            if not (0 <= x <= width and 0 <= y <= height):
                raise CorruptInputError(f"{disk.show(path)}:{lineno}: point ({x:g}, {y:g}) is outside the "
                                        f"{width}x{height} image")
            points.append((x, y))
        return points

    def parse(self, rec: Idb1Record) -> RawSample:
        w, h = disk.image_size(rec.image)
        points = self.read_xyc(rec.xyc, w, h) if rec.xyc else []
        semantic = None
        if rec.masks:
            rbc, wbc = (read_binary(m) for m in rec.masks)
            if rbc.shape != wbc.shape:
                raise CorruptInputError(f"{disk.show(rec.masks[0])} is {rbc.shape[1]}x{rbc.shape[0]} but "
                                        f"{disk.show(rec.masks[1])} is {wbc.shape[1]}x{wbc.shape[0]}")
            if rbc.shape != (h, w):
                raise CorruptInputError(f"{disk.show(rec.masks[0])}: mask is {rbc.shape[1]}x{rbc.shape[0]} but image "
                                        f"{disk.show(rec.image)} is {w}x{h}")
            semantic = rbc.astype(np.uint8) + 2 * wbc.astype(np.uint8)
        stem = rec.image.stem
        return RawSample(
            rel_path=rec.rel_path, image_path=rec.image,
            objects=[RawObject("blast", None, point=p) for p in points],
            semantic_mask=semantic, mask_values=dict(MASK_VALUES) if rec.masks else {},
            annotation_file=disk.show(rec.xyc or rec.image),
            meta={"disease": "leukemia" if stem.endswith("_1") else "normal"},
        )

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/ALL_IDB1_download/`` with ``ALL_IDB1/im`` (4 JPEG fields, both labels),
        ``ALL_IDB1/xyc`` (blast centroids, comma- and space-separated, an empty file for a healthy
        field, one image without a .xyc), and ``ALL-IDB1-masks-ea56e19/`` masks for two images
        (1-bit CCITT RBC masks, one 8-bit {0,255} PackBits WBC mask, overlapping cells) plus a
        mask pair without an image."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "ALL_IDB1_download"
        im_dir, xyc_dir, m_dir = root / "ALL_IDB1" / "im", root / "ALL_IDB1" / "xyc", root / "ALL-IDB1-masks-ea56e19"
        for d in (im_dir, xyc_dir, m_dir):
            d.mkdir(parents=True, exist_ok=True)
        W, H = 96, 72
        truth: dict[str, FakeSample] = {}
        for k, stem in enumerate(["Im001_1", "Im002_1", "Im003_1", "Im004_0"]):
            boxes = syn.random_boxes(rng, W, H, 4, lo=12, hi=22)
            syn.smear(W, H, [(b, "wbc" if i == 0 else "rbc") for i, b in enumerate(boxes)], seed * 10 + k).save(
                im_dir / f"{stem}.jpg", quality=90)
            pts = [(float(x + bw // 2), float(y + bh // 2)) for x, y, bw, bh in boxes[:1 + k % 2]] if stem.endswith("_1") else []
            sep = ", " if k == 1 else " "
            if stem != "Im003_1":  # Im003_1 has no .xyc file: reported, read as no blasts
                (xyc_dir / f"{stem}.xyc").write_text("".join(f"{int(x)}{sep}{int(y)}\n" for x, y in pts))
            else:
                pts = []
            sem = None
            if k < 2:
                rbc, wbc = _ellipses(W, H, boxes[1:]), _ellipses(W, H, boxes[:1])
                wbc |= _ellipses(W, H, [boxes[1]]) & (np.arange(W)[None, :] % 2 == 0)  # a few pixels in both
                Image.fromarray(rbc).convert("1").save(m_dir / f"{stem}_RBC.tif", compression="group4")
                if k == 0:
                    Image.fromarray(wbc.astype(np.uint8) * 255, "L").save(m_dir / f"{stem}_WBCs.tif", compression="packbits")
                else:
                    Image.fromarray(wbc).convert("1").save(m_dir / f"{stem}_WBCs.tif", compression="group4")
                sem = rbc.astype(np.uint8) + 2 * wbc.astype(np.uint8)
            rel = f"ALL_IDB1/im/{stem}.jpg"
            truth[rel] = FakeSample(rel_path=rel, boxes=[[x, y, 0.0, 0.0] for x, y in pts],
                                    categories=["blast"] * len(pts), semantic_mask=sem)
        for t in MASK_TYPES:  # masks of an image absent from the archive copy
            Image.fromarray(np.zeros((H, W), bool)).convert("1").save(m_dir / f"Im009_1_{t}.tif", compression="group4")
        return FakeTruth(root=root, samples=truth)


def _ellipses(w: int, h: int, boxes) -> np.ndarray:
    im = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(im)
    for x, y, bw, bh in boxes:
        d.ellipse([x, y, x + bw - 1, y + bh - 1], fill=255)
    return np.asarray(im) > 0


ADAPTER = AllIdb1Adapter
