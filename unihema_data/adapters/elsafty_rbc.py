"""Elsafty RBCs for AI (Elsafty, Soliman, Ahmed, Scientific Data 11:722, 2024; figshare file
43957974): red cells of 25 manual smears (one patient each), segmented cell by cell, 240K+ of them
classified into 9 shapes by two haematologists.

**The release layout is UNCONFIRMED** (research notes ``datasets-segmentation.md`` section 10 and
``datasets-classification.md`` section 13: the full text and the figshare README could not be
read). What is documented: the one public file of the set, Uni-Hema's sample
``326Slide 1 (142,886,44,953,93).png``, an 80x80 RGB single-cell crop whose background was set to
pure white (72 % of its pixels are (255, 255, 255)) and whose name carries a crop number, the slide
and five numbers (coordinates, UNCONFIRMED meaning). The adapter converts exactly that documented
form and refuses anything else with a message saying what it expected:

    <root>/<folder>/<n>Slide <k> (<a>,<b>,<c>,<d>,<e>).png

Each ``<folder>`` is detected at run time and reported (``report.info["layout"]``):

* a **shape folder** (the classification part): its name is one of the shape names of
  ``taxonomy.yaml`` ``sources.elsafty_rbc.labels`` (the 9 names are UNCONFIRMED; the table lists
  plausible spellings, and an unlisted folder fails naming it, so a real name is never guessed);
  the crops get that label;
* a **slide folder** (the segmentation part without shapes): ``Slide <k>``, ``Smear <k>``,
  ``Group <k>``, ``Patient <k>``, ``unclassified`` or ``segmented`` (any case): no label.

Any other folder name is an error naming it. Files that are not crops (tables such as the per-field
XYWH lists the abstract mentions, READMEs) are reported as skipped: the field-of-view layout is not
converted because its columns are UNCONFIRMED.

Conventions (both parts):
* Mask rule, polarity detected per crop: the background colour is the one pure colour, white
  (255, 255, 255) or black (0, 0, 0), that covers more than half of the crop's border pixels
  (flag ``mask_background:white|black``); the cell (``rbc``) is every pixel not of that colour.
  A crop with neither is an error naming it. The crops must be lossless (PNG / BMP / TIFF): a JPEG
  crop has no exact background colour and is an error.
* One object per crop: the cell mask (``mask_rle``; ``bbox`` from the mask), category = the shape
  label, or ``rbc`` in a slide folder. Round trip: a pixel is background exactly where the image
  has the background colour.
* ``group_id`` = ``slide:<k>`` from the name: one slide is one smear of one patient, so a
  patient's crops never straddle splits. A crop name outside the documented pattern is an error
  naming the file (the slide could not be read).
* Names differing only in case are an error naming both.

Disease: anaemias (catalog). No published split.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..refs import Rle
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawObject, RawSample
from .families import FileRecord, refuse_unreadable_names

CROP_RE = re.compile(r"^(?P<n>\d+)\s*Slide\s*(?P<slide>\d+)\s*\((?P<nums>-?\d+(?:\s*,\s*-?\d+){4})\)$", re.IGNORECASE)
SLIDE_DIR_RE = re.compile(r"^(?:(?:slide|smear|group|patient)[ _-]*\d+|unclassified|segmented)$", re.IGNORECASE)
LOSSLESS = (".png", ".bmp", ".tif", ".tiff")
CROP_SUFFIXES = (*LOSSLESS, ".jpg", ".jpeg")
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}
MASK_VALUES = {0: "background", 1: "rbc"}


def crop_mask(path: Path) -> tuple[np.ndarray, str]:
    """``(cell mask, background name)`` of one crop, by the documented rule."""
    data = disk.read_bytes(path, "crop")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:
        raise CorruptInputError(f"{disk.show(path)}: unreadable crop ({type(e).__name__}: {e})") from None
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    for name, colour in BACKGROUNDS.items():
        if (border == colour).all(axis=1).mean() > 0.5:
            return ~(rgb == colour).all(axis=2), name
    raise CorruptInputError(f"{disk.show(path)}: no pure white or black background on the crop border: "
                            "not a background-cleared single-cell crop")


class ElsaftyRbcAdapter(Adapter):
    id = "elsafty_rbc"
    version = "1"
    tasks = ("segmentation", "classification", "detection")
    mask_values = dict(MASK_VALUES)
    markers = ("*/*Slide*",)
    layout_hint = "folders of '<n>Slide <k> (<5 numbers>).png' single-cell crops"

    # ---------------------------------------------------------------- layout
    def _crop_folders(self, path: Path) -> list[Path]:
        out = []
        for d in disk.subdirs(path):
            try:
                names = [e.name for e in d.iterdir()]
            except OSError:
                continue
            if any(CROP_RE.match(Path(n).stem) and Path(n).suffix.lower() in CROP_SUFFIXES for n in names[:5000]):
                out.append(d)
        return out

    def signature(self, path: Path) -> bool:
        return bool(self._crop_folders(path))

    def check(self, root: Path) -> None:
        if not self._crop_folders(root):
            raise MissingInputError(f"{self.id}: no folder of crops under {disk.show(root)} ({self.layout_hint})")

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        from ..taxonomy import load_taxonomy

        self._shapes = set(load_taxonomy().source_aliases(self.id).get("labels") or {})

    def records(self, root: Path) -> Iterator[FileRecord]:
        if not hasattr(self, "_shapes"):
            self.prepare(root)
        dirs, files = disk.list_dir(root, self.report, root)
        for f in files:
            self.report.skip(disk.rel(f, root), "not in a crop folder (tables and field images are not converted: layout UNCONFIRMED)")
        shape_dirs, slide_dirs = [], []
        for d in dirs:
            if d.name in self._shapes:
                shape_dirs.append(d)
            elif SLIDE_DIR_RE.match(d.name):
                slide_dirs.append(d)
            else:
                raise CorruptInputError(
                    f"{disk.show(d)}: folder {disk.show(d.name)!r} is neither a known shape class (taxonomy.yaml "
                    f"sources.elsafty_rbc.labels: {', '.join(sorted(self._shapes))}) nor a slide folder "
                    "('Slide <k>', 'unclassified'); the Elsafty layout is UNCONFIRMED: add the real shape name to the taxonomy")
        parts = []
        if shape_dirs:
            parts.append(f"classified crops in {len(shape_dirs)} shape folder(s)")
        if slide_dirs:
            parts.append(f"unclassified crops in {len(slide_dirs)} slide folder(s)")
        self.report.info["layout"] = "; ".join(parts) or "no crop folder"
        n = 0
        for d in sorted(shape_dirs + slide_dirs, key=lambda p: p.name.encode("utf-8", "surrogateescape")):
            sub, files = disk.list_dir(d, self.report, root)
            for s in sub:
                self.report.skip(disk.rel(s, root) + "/", "folder inside a crop folder: not converted")
            crops = [f for f in files if f.suffix.lower() in disk.IMAGE_SUFFIXES]
            for f in files:
                if f not in crops:
                    self.report.skip(disk.rel(f, root), "not an image")
            disk.refuse_case_collisions(crops)
            refuse_unreadable_names(crops)
            for f in crops:
                m = CROP_RE.match(f.stem)
                if not m:
                    raise CorruptInputError(f"{disk.show(f)}: unexpected crop name (expected '<n>Slide <k> (<5 numbers>)"
                                            f"{f.suffix}', as in '326Slide 1 (142,886,44,953,93).png')")
                if f.suffix.lower() not in LOSSLESS:
                    raise CorruptInputError(f"{disk.show(f)}: a {f.suffix} crop is lossy: its background colour is not exact, "
                                            "the cell mask cannot be read (expected PNG)")
                label = d.name if d in shape_dirs else ""
                n += 1
                yield FileRecord(disk.rel(f, root), f, (("class", label),), (f"slide:{int(m.group('slide'))}",))
        if not n:
            raise MissingInputError(f"{self.id}: no crops under {disk.show(root)} ({self.layout_hint})")

    def parse(self, rec: FileRecord) -> RawSample:
        cell, bg = crop_mask(rec.path)
        label = rec.part("class") or None
        H, W = cell.shape
        from ..masks import encode_rle

        objects = [RawObject(label or "rbc", None, mask=Rle(encode_rle(cell), (H, W)))] if cell.any() else []
        flags = [f"mask_background:{bg}"] + ([] if cell.any() else ["empty_crop"])
        return RawSample(rel_path=rec.rel_path, image_path=rec.path, label=label, group_id=rec.extra[0],
                         objects=objects, semantic_mask=cell.astype(np.uint8), mask_values=dict(MASK_VALUES),
                         annotation_file=disk.show(rec.path), qc_flags=flags)

    def input_files(self, root: Path) -> Iterator[Path]:
        yield from disk.walk_files(root)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/Elsafty_RBCs_for_AI/`` with crops in four shape folders (classification
        part) and one ``Slide 2`` folder (unclassified), 80x80 crops on pure white except one on
        black, names in the documented ``<n>Slide <k> (<5 numbers>).png`` form, and a
        ``boxes.csv`` table at the top (reported, not converted)."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "Elsafty_RBCs_for_AI"
        S = 40
        plan = [("Circular", 1, "white"), ("Circular", 3, "white"), ("Elongated", 1, "white"), ("Teardrop", 2, "black"),
                ("Schistocyte", 3, "white"), ("Slide 2", 2, "white"), ("Slide 2", 2, "white")]
        truth: dict[str, FakeSample] = {}
        for k, (folder, slide, bg) in enumerate(plan):
            n = 100 + k * 37
            nums = ",".join(str(int(v)) for v in rng.integers(0, 1000, 5))
            name = f"{n}Slide {slide} ({nums}).png"
            (root / folder).mkdir(parents=True, exist_ok=True)
            cell_im = syn.single_cell(S, "rbc", seed * 100 + k)
            m = Image.new("L", (S, S), 0)
            w = int(rng.integers(12, 20)) if folder != "Elongated" else 30
            h = int(rng.integers(12, 20)) if folder != "Elongated" else 10
            ImageDraw.Draw(m).ellipse([S / 2 - w / 2, S / 2 - h / 2, S / 2 + w / 2, S / 2 + h / 2], fill=1)
            cell = np.asarray(m).astype(bool)
            rgb = np.asarray(cell_im).copy()
            rgb[~cell] = BACKGROUNDS[bg]
            # a cell pixel never has the background's exact colour
            same = (rgb == BACKGROUNDS[bg]).all(axis=2) & cell
            rgb[same] = (200, 120, 130)
            Image.fromarray(rgb, "RGB").save(root / folder / name)
            rel = f"{folder}/{name}"
            ys, xs = np.nonzero(cell)
            label = None if folder.startswith("Slide") else folder
            truth[rel] = FakeSample(rel_path=rel, label=label, group_id=f"slide:{slide}", semantic_mask=cell.astype(np.uint8),
                                    object_masks=[cell], categories=[label or "rbc"],
                                    boxes=[[float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]])
        (root / "boxes.csv").write_text("slide,x,y,w,h\n1,142,886,44,53\n", encoding="utf-8")
        return FakeTruth(root=root, samples=truth)


ADAPTER = ElsaftyRbcAdapter
