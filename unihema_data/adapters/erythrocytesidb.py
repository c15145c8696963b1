"""ErythrocytesIDB (González-Hidalgo et al., IEEE JBHI 19(4), 2015; Zenodo 10.5281/zenodo.18299473):
sickle-cell anaemia smears with per-cell contours and per-class JPEG masks.

Native layout (``locate`` accepts up to two levels above the folder holding the IDB folders)::

    <root>/erythrocytesIDB2/<NN>erythrocytesIDB2/source.jpg        smear image
                                                 labeled.jpg       specialist's overlay (not a mask: ignored)
                                                 mask.jpg          all cells (redundant with the class masks: ignored)
                                                 mask-circular.jpg / mask-elongated.jpg / mask-other.jpg
                                                 ground.csv        one row per cell: class, then contour x,y pairs
    <root>/erythrocytesIDB3/<NN>erythrocytesIDB3/... (same files)
    <root>/erythrocytesIDB1/<circular|elongated|other>/<image>   single-cell crops (see below)

Conventions:
* One sample per ``<NN>erythrocytesIDB{2,3}`` folder; ``subset`` = ``erythrocytesIDB2`` /
  ``erythrocytesIDB3``; ``group_id`` = the sample folder name. ``source.jpg`` and ``ground.csv`` are
  required (an error names the folder).
* Objects (exact, from ``ground.csv``): each row is ``class, x1, y1, x2, y2, ...`` (class ``0``
  circular, ``1`` elongated, ``2`` other; separators ``,`` ``;`` or whitespace; the row format is
  UNCONFIRMED beyond the README text, so anything else is an error naming file and line) -> a
  lazy :class:`~unihema_data.refs.Polygon` rasterized by pycocotools in the worker; the box is
  derived from the mask (``bbox_source = from_mask``). A row with fewer than 3 points is an error.
* Semantic mask (from the three JPEG class masks, decoded in the worker): each class mask is
  quantized to the nearest of its three README levels by a documented rule, ``< 64`` -> 0,
  ``64..191`` -> 0.5 (overlap), ``>= 192`` -> 1. Combined native values: ``0`` background,
  ``1`` circular, ``2`` elongated, ``3`` other (the one class mask at 1, none at 0.5), ``4``
  overlap (any class mask at 0.5, or two at 1; mapped to ``ignore``). Rows are flagged
  ``mask_thresholded:64/192``. A sample missing one class mask (``37erythrocytesIDB2`` has no
  ``mask-circular.jpg``) gets no semantic mask (objects still converted) and is reported
  (``repaired``), never a map with that class silently dropped.
* Annotation is partial (some real cells are unannotated; nothing to fix). ``__MACOSX/`` and
  ``.DS_Store`` in the archive are skipped and reported.

* Single-cell view (classification): ``erythrocytesIDB1`` holds pre-isolated cell images sorted
  into ``circular`` / ``elongated`` / ``other`` folders (research note datasets-classification.md
  §14b; a third-party YOLO classifier uses exactly these three classes; the folder names are
  UNCONFIRMED, matched case-insensitively). Each image is one row, label = its folder
  (``sources.erythrocytesidb.labels``), ``subset = erythrocytesIDB1``, ``granularity =
  single_cell``, tasks ``[classification]``; no smear id is published for them, so ``group_id``
  is the image itself. The layout found is reported (``report.info["idb1"]``); an
  ``erythrocytesIDB1`` folder with another shape (e.g. whole fields with their own files) is
  skipped and reported, never guessed at, and a sub-folder other than the three classes in an
  otherwise class-sorted IDB1 is an error naming it.

Evidence: research note ``datasets-segmentation.md`` section 2 (no real sample exists).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..formats.jpegmask import read_gray
from ..refs import Polygon
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawObject, RawSample
from .families import refuse_case_collisions, refuse_unreadable_names

SUBSET_RE = re.compile(r"^erythrocytesIDB([23])$")
SAMPLE_RE = re.compile(r"^(\d+)erythrocytesIDB([23])$")
CLASS_MASKS = ("mask-circular.jpg", "mask-elongated.jpg", "mask-other.jpg")
MASK_VALUES = {0: "background", 1: "circular", 2: "elongated", 3: "other", 4: "overlap"}
LOW, HIGH = 64, 192


def quantize(path: Path) -> np.ndarray:
    """A class mask (JPEG) as levels 0 / 1 (overlap, 0.5) / 2 (cell) by the documented rule."""
    g = read_gray(path)  # strict JPEG decode: a damaged mask is an error, not a wrong map
    return (g >= LOW).astype(np.uint8) + (g >= HIGH).astype(np.uint8)


def combine(levels: list[np.ndarray]) -> np.ndarray:
    """Native values (see ``MASK_VALUES``) from the three quantized class masks."""
    full = np.stack([lv == 2 for lv in levels])
    half = np.stack([lv == 1 for lv in levels]).any(axis=0)
    n_full = full.sum(axis=0)
    out = np.zeros(levels[0].shape, np.uint8)
    one = (n_full == 1) & ~half
    out[one] = (full.argmax(axis=0) + 1)[one].astype(np.uint8)
    out[half | (n_full > 1)] = 4
    return out


@dataclass(frozen=True)
class EryRecord:
    rel_path: str
    folder: Path
    subset: str


@dataclass(frozen=True)
class EryCellRecord:
    rel_path: str
    image: Path
    label: str                      # circular / elongated / other (the folder name, lower case)


IDB1 = "erythrocytesIDB1"
IDB1_CLASSES = ("circular", "elongated", "other")


class ErythrocytesIDBAdapter(Adapter):
    id = "erythrocytesidb"
    version = "2"
    tasks = ("detection", "segmentation", "classification")
    markers = ("erythrocytesIDB*",)
    mask_values = dict(MASK_VALUES)

    def signature(self, path: Path) -> bool:
        return any(SUBSET_RE.match(d.name) and any(SAMPLE_RE.match(s.name) for s in disk.subdirs(d))
                   for d in disk.subdirs(path))

    def records(self, root: Path) -> Iterator[EryRecord]:
        found = False
        dirs, files = disk.list_dir(root, self.report, root)
        for f in files:
            self.report.skip(disk.rel(f, root), "file outside an erythrocytesIDB folder")
        for d in dirs:
            if d.name.lower() == IDB1.lower():
                cells = list(self._idb1(root, d))
                found |= bool(cells)
                yield from cells
                continue
            if not SUBSET_RE.match(d.name):
                self.report.skip(disk.rel(d, root) + "/", "not an erythrocytesIDB1/2/3 folder")
                continue
            samples, stray = disk.list_dir(d, self.report, root)
            for f in stray:
                self.report.skip(disk.rel(f, root), "file outside a sample folder")
            for s in sorted(samples, key=lambda p: (int(SAMPLE_RE.match(p.name).group(1)) if SAMPLE_RE.match(p.name) else -1, p.name)):
                if not SAMPLE_RE.match(s.name):
                    self.report.skip(disk.rel(s, root) + "/", "not an <NN>erythrocytesIDB sample folder")
                    continue
                files = disk.list_dir(s, self.report, root)[1]
                refuse_case_collisions(files)
                refuse_unreadable_names(files)  # the names inside are fixed: an unreadable one is not guessed at
                for need in ("source.jpg", "ground.csv"):
                    if not ((s / need).exists() or (s / need).is_symlink()):
                        raise MissingInputError(f"{disk.show(s)}: {need} is missing")
                # present = any entry: a FIFO or a broken link is refused when read, naming it
                missing = [m for m in CLASS_MASKS if not ((s / m).exists() or (s / m).is_symlink())]
                if missing:
                    self.report.repair(disk.rel(s, root) + "/", f"{', '.join(missing)} missing: converted without a semantic mask")
                found = True
                yield EryRecord(f"{d.name}/{s.name}/source.jpg", s, d.name)
        if not found:
            raise MissingInputError(f"{self.id}: no <NN>erythrocytesIDB2/3 sample folders under {disk.show(root)}")

    def _idb1(self, root: Path, d: Path) -> Iterator[EryCellRecord]:
        """The single-cell crops of ``erythrocytesIDB1/<class>/`` (see the module doc)."""
        sub, stray = disk.list_dir(d, self.report, root)
        known = [s for s in sub if s.name.lower() in IDB1_CLASSES]
        if not known:
            self.report.skip(disk.rel(d, root) + "/", "erythrocytesIDB1 without circular/elongated/other folders "
                                                      "(layout not recognised, not converted)")
            self.report.info["idb1"] = "not converted (no class folders)"
            return
        for s in sub:
            if s.name.lower() not in IDB1_CLASSES:
                raise CorruptInputError(f"{disk.show(s)}: unknown class folder {disk.show(s.name)!r} in {IDB1} "
                                        f"(expected {', '.join(IDB1_CLASSES)})")
        for f in stray:
            self.report.skip(disk.rel(f, root), f"file outside a {IDB1} class folder")
        n = 0
        for s in sub:
            files = disk.list_files(s, disk.IMAGE_SUFFIXES, self.report, root, "an image file")
            refuse_case_collisions(files)
            for f in files:
                n += 1
                yield EryCellRecord(disk.rel(f, root), f, s.name.lower())
        self.report.info["idb1"] = f"class folders ({', '.join(x.name for x in sub)}): {n} single-cell images"

    def read_ground(self, path: Path, width: int, height: int) -> list[tuple[str, tuple[float, ...]]]:
        """Cell rows of ``ground.csv``; every contour point must lie on the image (0..W, 0..H)."""
        cells = []
        for lineno, line in disk.read_lines(path, "ground.csv"):
            parts = [p for p in re.split(r"[\s,;]+", line) if p]
            if lineno == 1 and parts and not parts[0].lstrip("-").isdigit():
                continue  # a header line
            try:
                cls, coords = parts[0], tuple(float(v) for v in parts[1:])
            except (ValueError, IndexError):
                raise CorruptInputError(f"{disk.show(path)}:{lineno}: expected 'class, x1, y1, x2, y2, ...'") from None
            if cls not in ("0", "1", "2"):
                raise CorruptInputError(f"{disk.show(path)}:{lineno}: class {cls!r} is not 0, 1 or 2")
            if len(coords) < 6 or len(coords) % 2:
                raise CorruptInputError(f"{disk.show(path)}:{lineno}: a contour needs at least 3 x,y pairs "
                                        f"(got {len(coords)} numbers)")
            xs, ys = coords[0::2], coords[1::2]
            if not all(0 <= x <= width for x in xs) or not all(0 <= y <= height for y in ys):
                raise CorruptInputError(f"{disk.show(path)}:{lineno}: contour point outside the {width}x{height} image")
            cells.append((cls, coords))
        if not cells:
            raise CorruptInputError(f"{disk.show(path)}: no cell rows (every IDB2/IDB3 sample has annotated cells)")
        return cells

    def parse(self, rec) -> RawSample:
        if isinstance(rec, EryCellRecord):
            return RawSample(rel_path=rec.rel_path, image_path=rec.image, label=rec.label, subset=IDB1,
                             annotation_file=disk.show(rec.image), meta={"granularity": "single_cell"})
        w, h = disk.image_size(rec.folder / "source.jpg")
        cells = self.read_ground(rec.folder / "ground.csv", w, h)
        semantic, flags = None, []
        if all((rec.folder / m).exists() or (rec.folder / m).is_symlink() for m in CLASS_MASKS):
            levels = [quantize(rec.folder / m) for m in CLASS_MASKS]
            shapes = {lv.shape for lv in levels}
            if len(shapes) > 1:
                raise CorruptInputError(f"{disk.show(rec.folder)}: the class masks differ in size: {sorted(shapes)}")
            semantic = combine(levels)
            flags.append(f"mask_thresholded:{LOW}/{HIGH}")
            if semantic.shape != (h, w):
                raise CorruptInputError(f"{disk.show(rec.folder / CLASS_MASKS[0])}: mask is {semantic.shape[1]}x"
                                        f"{semantic.shape[0]} but image {disk.show(rec.folder / 'source.jpg')} is {w}x{h}")
        return RawSample(
            rel_path=rec.rel_path, image_path=rec.folder / "source.jpg", subset=rec.subset, group_id=rec.folder.name,
            objects=[RawObject(cls, None, mask=Polygon.of(coords)) for cls, coords in cells],
            semantic_mask=semantic, mask_values=dict(MASK_VALUES) if semantic is not None else {},
            annotation_file=disk.show(rec.folder / "ground.csv"), qc_flags=flags,
        )

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/erythrocytesIDB/`` with IDB2 samples 01, 02 and 37 (37 without
        ``mask-circular.jpg``) and IDB3 sample 01: ``source.jpg``, ``labeled.jpg``, ``mask.jpg``,
        JPEG class masks with the 0.5 overlap level where two cells overlap, ``ground.csv``
        contours of all three classes; plus ``__MACOSX/`` and ``.DS_Store`` junk and an
        ``erythrocytesIDB1/{circular,elongated,other}/`` folder of single-cell crops (JPEG and PNG)."""
        from pycocotools import mask as mask_utils

        rng = np.random.default_rng(seed)
        root = Path(out) / "erythrocytesIDB"
        W, H = 90, 70
        truth: dict[str, FakeSample] = {}
        for subset, num in (("erythrocytesIDB2", 1), ("erythrocytesIDB2", 2), ("erythrocytesIDB2", 37), ("erythrocytesIDB3", 1)):
            folder = root / subset / f"{num:02d}{subset}"
            folder.mkdir(parents=True, exist_ok=True)
            cells = []
            for k, cls in enumerate(["0", "1", "2", "0"]):
                cx, cy = float(rng.uniform(18, W - 18)), float(rng.uniform(18, H - 18))
                if k == 3:  # overlaps cell 0
                    cx, cy = cells[0][2][0] + 8, cells[0][2][1] + 3
                rx, ry = (10, 4) if cls == "1" else (8, 8)
                ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
                pts = [round(v, 1) for a in ang for v in (cx + rx * np.cos(a), cy + ry * np.sin(a))]
                cells.append((cls, pts, (cx, cy)))
            boxes = [[c[2][0] - 9, c[2][1] - 9, 18, 18] for c in cells]
            syn.smear(W, H, [(b, "rbc") for b in boxes], seed * 100 + num).save(folder / "source.jpg", quality=92)
            syn.smear(W, H, [(b, "rbc") for b in boxes], seed).save(folder / "labeled.jpg", quality=80)
            masks, sem_classes = [], np.zeros((3, H, W), np.uint8)
            objs, cats = [], []
            for cls, pts, _c in cells:
                m = mask_utils.decode(mask_utils.frPyObjects([pts], H, W)[0]).astype(bool)
                masks.append(m)
                objs.append(m)
                cats.append(cls)
            count = np.sum(masks, axis=0)
            for (cls, _p, _c), m in zip(cells, masks):
                sem_classes[int(cls)][m] = 2
            sem_classes[:, count > 1] = np.where(sem_classes[:, count > 1] > 0, 1, 0)  # overlap: 0.5
            for i, name in enumerate(CLASS_MASKS):
                if num == 37 and name == "mask-circular.jpg":
                    continue
                Image.fromarray((sem_classes[i] * 127.5).round().astype(np.uint8), "L").save(folder / name, quality=95)
            Image.fromarray((count > 0).astype(np.uint8) * 255, "L").save(folder / "mask.jpg", quality=95)
            (folder / "ground.csv").write_text("".join(f"{cls}," + ",".join(f"{v:g}" for v in pts) + "\n" for cls, pts, _c in cells))
            rel = f"{subset}/{folder.name}/source.jpg"
            fb = []
            for m in objs:
                ys, xs = np.nonzero(m)
                fb.append([float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)])
            truth[rel] = FakeSample(rel_path=rel, boxes=fb, categories=cats, object_masks=objs, group_id=folder.name,
                                    semantic_mask=None if num == 37 else combine([sem_classes[i] for i in range(3)]))
        (root / "__MACOSX").mkdir(exist_ok=True)
        (root / "__MACOSX" / "._source.jpg").write_bytes(b"\0\5\26\7junk")
        (root / "erythrocytesIDB2" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        for k, (cls, name) in enumerate((("circular", "1.jpg"), ("circular", "2.jpg"), ("elongated", "1.jpg"),
                                         ("other", "7.png"))):
            (root / IDB1 / cls).mkdir(parents=True, exist_ok=True)
            syn.single_cell(20 + k, "rbc", seed + k).save(root / IDB1 / cls / name)
            truth[f"{IDB1}/{cls}/{name}"] = FakeSample(f"{IDB1}/{cls}/{name}", label=cls)
        (root / IDB1 / "Thumbs.db").write_bytes(b"junk")
        return FakeTruth(root=root, samples=truth)


ADAPTER = ErythrocytesIDBAdapter
