"""Sickle Cell Disease dataset (Tushabe et al. 2024; Kaggle florencetushabe/sickle-cell-disease-dataset):
phone photos of thin smears, positive and negative patients; the boxes exist only *drawn into the
pixels* of a second copy of each positive photo.

Native layout (third-party inspection of the Kaggle release, research note datasets-detection.md
section 5; UNCONFIRMED beyond it; ``locate`` accepts up to two levels above)::

    <root>/Positive/Labelled/<n>.jpg      422 positive photos with bounding boxes drawn into the pixels
    <root>/Positive/Unlabelled/<n>.jpg    the same 422 photos without the drawings
    <root>/Negative/Clear/<n>.jpg         147 negative photos

The layout found is reported (``report.info["layout"]``); a ``Positive`` or ``Negative`` folder
without these sub-folders is an error saying what was expected.

Conventions:

* Rows: ``Positive/Unlabelled`` and ``Negative/Clear`` images. Native label = the diagnosis folder
  (``Positive`` / ``Negative``), mapped to ``unlabeled`` (no cell type is given for the photo as a whole) with the patient-level diagnosis in ``disease``
  (``sources.sickle_tushabe.diagnosis``: Positive -> ``sickle_cell``, Negative -> ``normal``);
  ``subset`` = ``Positive`` / ``Negative``.
* ``Positive/Labelled`` photos are not converted as rows (the drawn boxes are a shortcut a model
  would learn; the photo is already converted from ``Unlabelled``), each reported ``skipped``.
* Detection (positive photos): the boxes are **recovered** from the pixel difference between the
  ``Labelled`` and the ``Unlabelled`` copy of the same file name (:func:`recover_drawn_boxes`):
  pixels differing by more than :data:`DIFF_THRESHOLD` in some channel are grouped into 8-connected
  components; specks under :data:`MIN_COMPONENT` pixels (JPEG noise) are dropped and counted; every
  other component must be a rectangle *outline* (at least 90 % of its pixels within the stroke
  width of its bounding rectangle's border, and the border at least 60 % covered). The box is the
  outer edge of the drawn stroke (COCO ``[x0, y0, x1 - x0 + 1, y1 - y0 + 1]``; where the
  annotator's box lies inside a stroke of width ``s`` is UNCONFIRMED, so boxes may be up to ``s``
  pixels larger than the annotator's). Category ``sickle_cell_drawn`` (taxonomy: ``sickle_cell``;
  UNCONFIRMED that every drawn box marks a sickle cell). Rows with recovered boxes carry
  ``boxes_recovered_from_drawing:<stroke>``; when the drawn copy is a chroma-subsampled JPEG (4:2:0,
  as phone and OpenCV JPEGs usually are) colour edges blur by about one pixel and the row also carries
  ``drawn_copy_chroma_subsampling:<mode>`` (box edges then within ~1 px, not exact). When any component is not a rectangle outline
  (overlapping boxes, drawn text) or the two copies differ in size, **no box** of that photo is
  kept (a partial set would claim the other cells are not sickle cells): the row is flagged
  ``drawn_boxes_unrecovered:<reason>`` and reported, and it carries only classification. A positive
  photo without a ``Labelled`` twin is flagged ``no_labelled_copy`` and reported; a ``Labelled``
  photo without an ``Unlabelled`` twin is reported (``orphaned``). Colour, stroke width and whether
  labels are drawn next to the boxes are UNCONFIRMED: all of it is detected per photo.
* ``report.info["drawn_boxes"]`` is not aggregated from the workers; every unrecovered photo is a
  ``flagged`` run-report entry naming the reason.
* No published split, no patient ids: grouped split by photo (a photo's two copies are one row).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..formats.disk import show
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawObject, RawSample
from ..boxes import BoxFormat

DIFF_THRESHOLD = 60
MIN_COMPONENT = 30
FOLDERS = {"Positive": ("Labelled", "Unlabelled"), "Negative": ("Clear",)}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CATEGORY = "sickle_cell_drawn"


def recover_drawn_boxes(clean: np.ndarray, drawn: np.ndarray) -> tuple[Optional[list[list[float]]], str, int]:
    """``(boxes, reason, stroke)`` from two HxWx3 uint8 copies of one photo: COCO boxes of the
    rectangle outlines drawn into ``drawn``, or ``None`` with the reason they cannot be trusted."""
    from scipy import ndimage

    if clean.shape != drawn.shape:
        return None, f"size {drawn.shape[1]}x{drawn.shape[0]} != {clean.shape[1]}x{clean.shape[0]}", 0
    diff = np.abs(drawn.astype(np.int16) - clean.astype(np.int16)).max(axis=2) > DIFF_THRESHOLD
    lab, n = ndimage.label(diff, structure=np.ones((3, 3), bool))
    if n == 0:
        return [], "", 0
    sizes = ndimage.sum_labels(diff, lab, index=np.arange(1, n + 1))
    boxes, strokes = [], []
    for k, sl in enumerate(ndimage.find_objects(lab), 1):
        if sizes[k - 1] < MIN_COMPONENT:
            continue
        comp = lab[sl] == k
        h, w = comp.shape
        if h < 5 or w < 5:
            return None, f"component {k} is {w}x{h} px, not a box outline", 0
        # stroke width: thickness of the outline along the middle row / column
        s = max(int(comp[h // 2, : w // 2].sum()), int(comp[: h // 2, w // 2].sum()), 1)
        if 2 * s >= min(h, w):
            return None, f"component {k} ({w}x{h} px) is filled, not a box outline", 0
        ring = np.zeros_like(comp)
        ring[:s, :] = ring[-s:, :] = ring[:, :s] = ring[:, -s:] = True
        inside = (comp & ring).sum() / comp.sum()
        covered = (comp & ring).sum() / ring.sum()
        if inside < 0.9 or covered < 0.6:
            return None, f"component {k} ({w}x{h} px at {sl[1].start},{sl[0].start}) is not a rectangle outline", 0
        boxes.append([float(sl[1].start), float(sl[0].start), float(w), float(h)])
        strokes.append(s)
    return boxes, "", max(strokes, default=0)


@dataclass(frozen=True)
class SickleRecord:
    rel_path: str
    image: Path
    diagnosis: str            # Positive / Negative
    drawn: Optional[Path]     # the Labelled twin of a positive photo


class SickleTushabeAdapter(Adapter):
    id = "sickle_tushabe"
    version = "1"
    tasks = ("detection", "classification")
    box_format = BoxFormat.XYWH
    markers = ("Positive", "Negative")

    def signature(self, path: Path) -> bool:
        return (path / "Positive" / "Unlabelled").is_dir() or (path / "Negative" / "Clear").is_dir()

    def records(self, root: Path) -> Iterator[SickleRecord]:
        from ..taxonomy import load_taxonomy

        tax = load_taxonomy()
        found = []
        for diag, subs in FOLDERS.items():
            dirs, files = disk.list_dir(root / diag, self.report, root)
            for f in files:
                self.report.skip(disk.rel(f, root), f"file outside {'/'.join(subs)}")
            names = {d.name for d in dirs}
            for d in dirs:
                if d.name not in subs:
                    raise CorruptInputError(f"{show(d)}: unknown folder {show(d.name)!r} under {diag}/ "
                                            f"(expected {', '.join(subs)})")
            missing = [s for s in subs if s not in names]
            if missing:
                raise MissingInputError(f"{self.id}: unknown layout: {show(root / diag)} has no "
                                        f"{', '.join(missing)}/ folder (expected Positive/Labelled, Positive/Unlabelled "
                                        f"and Negative/Clear)")
            found += [f"{diag}/{s}" for s in subs]
            tax.map_diagnosis(self.id, diag, file=disk.rel(root / diag, root))
        self.report.info["layout"] = " + ".join(found)
        drawn = disk.list_files(root / "Positive" / "Labelled", IMAGE_SUFFIXES, self.report, root, "an image file")
        clean = disk.list_files(root / "Positive" / "Unlabelled", IMAGE_SUFFIXES, self.report, root, "an image file")
        neg = disk.list_files(root / "Negative" / "Clear", IMAGE_SUFFIXES, self.report, root, "an image file")
        for group in (drawn, clean, neg):
            disk.refuse_case_collisions(group)
        drawn_by = disk.index_by_stem(drawn, "image")
        clean_by = disk.index_by_stem(clean, "image")
        for stem in sorted(set(drawn_by) - set(clean_by), key=_key):
            self.report.orphan(disk.rel(drawn_by[stem], root), "drawn copy without an Unlabelled photo (not converted)")
        for stem in sorted(set(drawn_by) & set(clean_by), key=_key):
            self.report.skip(disk.rel(drawn_by[stem], root), "same photo as Positive/Unlabelled with boxes drawn into "
                                                             "the pixels (used to recover the boxes, not converted)")
        for stem in sorted(clean_by, key=_key):
            yield SickleRecord(disk.rel(clean_by[stem], root), clean_by[stem], "Positive", drawn_by.get(stem))
        for f in sorted(neg, key=lambda p: _key(p.stem)):
            yield SickleRecord(disk.rel(f, root), f, "Negative", None)

    def parse(self, rec: SickleRecord) -> RawSample:
        from ..taxonomy import load_taxonomy

        disease = load_taxonomy().map_diagnosis(self.id, rec.diagnosis, file=rec.rel_path)
        flags: list[str] = []
        notes: list[tuple[str, str, str]] = []
        objects: list[RawObject] = []
        if rec.diagnosis == "Positive":
            if rec.drawn is None:
                flags.append("no_labelled_copy")
                notes.append(("flagged", rec.rel_path, "no Positive/Labelled copy: no boxes"))
            else:
                boxes, why, stroke = recover_drawn_boxes(_rgb(rec.image), _rgb(rec.drawn))
                if boxes is None:
                    flags.append(f"drawn_boxes_unrecovered:{why}")
                    notes.append(("flagged", rec.rel_path, f"boxes drawn in Positive/Labelled/{rec.drawn.name} not "
                                                           f"recovered: {why} (no box kept)"))
                else:
                    objects = [RawObject(CATEGORY, b) for b in boxes]
                    flags.append(f"boxes_recovered_from_drawing:{stroke}")
                    sub = _chroma_subsampling(rec.drawn)
                    if boxes and sub not in ("", "4:4:4"):  # colour edges blur by ~1 px: said on the row
                        flags.append(f"drawn_copy_chroma_subsampling:{sub}")
        return RawSample(rel_path=rec.rel_path, image_path=rec.image, label=rec.diagnosis, subset=rec.diagnosis,
                         objects=objects, annotation_file=show(rec.drawn or rec.image), meta={"disease": disease},
                         qc_flags=flags, notes=notes)

    def input_files(self, root: Path) -> Iterator[Path]:
        for diag, subs in FOLDERS.items():
            for s in subs:
                if (root / diag / s).is_dir():
                    yield from disk.list_files(root / diag / s)

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """``out/sickle-cell-disease-dataset/{Positive/{Labelled,Unlabelled},Negative/Clear}``: positive
        photos with 2-4 sickle-like cells boxed in green (stroke 3) in the Labelled copy, one with a
        box whose outline is broken by a caption (recovery refused, flagged), one without a Labelled
        copy, a drawn copy without its photo, and negatives. JPEG, like the release."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "sickle-cell-disease-dataset"
        for d in ("Positive/Labelled", "Positive/Unlabelled", "Negative/Clear"):
            (root / d).mkdir(parents=True, exist_ok=True)
        W, H = 320, 240
        truth: dict[str, FakeSample] = {}
        for n in range(1, 6):
            k = int(rng.integers(2, 5))
            cells = []
            while len(cells) < k:  # non-overlapping, 8 px apart
                x, y = int(rng.integers(6, W - 60)), int(rng.integers(6, H - 50))
                w, h = int(rng.integers(25, 50)), int(rng.integers(18, 40))
                if all(x + w + 8 < a or a + c + 8 < x or y + h + 8 < b or b + d + 8 < y for a, b, c, d in cells):
                    cells.append((x, y, w, h))
            clean = syn.smear(W, H, [(c, "rbc") for c in cells], seed * 100 + n)
            (root / "Positive" / "Unlabelled" / f"{n}.jpg").write_bytes(syn.encode(clean, "JPEG", quality=95, subsampling=0))
            rel = f"Positive/Unlabelled/{n}.jpg"
            if n == 4:  # no Labelled copy
                truth[rel] = FakeSample(rel_path=rel, label="Positive")
                continue
            drawn = clean.copy()
            dr = ImageDraw.Draw(drawn)
            for x, y, w, h in cells:
                dr.rectangle([x, y, x + w - 1, y + h - 1], outline=(0, 255, 0), width=3)
            if n == 5:  # a caption drawn over a box: not a clean outline -> refused
                x, y, w, h = cells[0]
                dr.rectangle([x + 4, y + 4, x + 16, y + 12], fill=(0, 255, 0))
            (root / "Positive" / "Labelled" / f"{n}.jpg").write_bytes(syn.encode(drawn, "JPEG", quality=95, subsampling=0))
            if n == 5:
                truth[rel] = FakeSample(rel_path=rel, label="Positive")
            else:
                cells.sort(key=lambda c: (c[1], c[0]))  # recovered in raster order of the boxes' top edges
                truth[rel] = FakeSample(rel_path=rel, label="Positive", boxes=[[float(v) for v in c] for c in cells],
                                        categories=[CATEGORY] * len(cells))
        (root / "Positive" / "Labelled" / "99.jpg").write_bytes(
            syn.encode(syn.smear(W, H, [], seed + 99), "JPEG", quality=90))
        for n in range(1, 4):
            im = syn.smear(W, H, [((int(rng.integers(0, W - 40)), int(rng.integers(0, H - 40)), 30, 30), "rbc")], seed * 7 + n)
            (root / "Negative" / "Clear" / f"{n}.jpg").write_bytes(syn.encode(im, "JPEG", quality=95))
            truth[f"Negative/Clear/{n}.jpg"] = FakeSample(rel_path=f"Negative/Clear/{n}.jpg", label="Negative")
        return FakeTruth(root=root, samples=truth)


def _rgb(path: Path) -> np.ndarray:
    """Pixels of one copy, after the core's strict integrity check (damaged JPEG data is refused
    naming the file, never read as other pixels by a lenient decoder)."""
    from ..images import ImageDecodeError, image_from_bytes

    data = disk.read_bytes(path, "image file")
    try:
        image_from_bytes(data, show(path))
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except ImageDecodeError as e:
        raise CorruptInputError(str(e)) from None
    except (OSError, ValueError) as e:
        raise CorruptInputError(f"{show(path)}: unreadable image ({e})") from None


def _chroma_subsampling(path: Path) -> str:
    """JPEG chroma subsampling of ``path`` ("4:4:4", "4:2:2", "4:2:0"; "" when not a JPEG)."""
    from PIL import JpegImagePlugin

    with Image.open(path) as im:
        if im.format != "JPEG":
            return ""
        return {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(im), "other")


def _key(stem: str) -> tuple[int, str]:
    return (int(stem), stem) if stem.isdigit() else (1 << 62, stem)


ADAPTER = SickleTushabeAdapter
