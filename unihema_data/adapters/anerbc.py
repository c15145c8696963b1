"""AneRBC (Shahzad et al., Database 2024:baae120; Mendeley hms3sjzt7f): healthy and anaemic smears
with binary RBC masks, full fields (AneRBC-I) and 12 tiles per field (AneRBC-II).

Native layout (the Mendeley zip, extracted; ``locate`` accepts up to two levels above)::

    <root>/AneRBC-I/{Healthy_individuals,Anemic_individuals}/Original_images/NNN_{h,a}.png      1224x960
    <root>/AneRBC-I/.../Binary_segmented/NNN_{h,a}.png                                          binary mask
    <root>/AneRBC-I/.../RGB_segmented/...   (cells on a blank background: derived, not converted, reported)
    <root>/AneRBC-II/... the same, files NNNN_PP_{h,a}.png (PP = tile 01..12, 306x320)

Conventions:
* Pairing: the same file name in ``Original_images/`` and ``Binary_segmented/``. A mask without an
  image is reported (``orphaned``); an image without a mask is an error naming the mask expected.
* Polarity is detected per file, not assumed (user code treats 255 as background, UNCONFIRMED):
  RBCs are darker than the plasma background in these brightfield smears, so the mask value whose
  pixels are darker in the image (mean luminance) is the cell value. The documented convention,
  ``255`` background / ``0`` RBC (``mask_values``), is handed over as the file itself; a file with
  the other polarity is handed over inverted (an array built in the worker) and its row is flagged
  ``mask_polarity:inverted`` (the native file is ``255 - value``); the usual one is flagged
  ``mask_polarity:cells_dark``. A difference under 5 gray levels is an error naming the file
  (polarity cannot be told). Values other than 0 / 255 are an error naming the file.
* Diagnosis: ``Healthy_individuals`` -> ``meta`` disease ``normal``, ``Anemic_individuals`` ->
  ``anemia``; no per-cell labels. ``subset`` = ``AneRBC-I`` / ``AneRBC-II``.
* ``group_id`` = ``<a|h>:<field number>`` (leading zeros dropped), the same for an AneRBC-I field and
  its AneRBC-II tiles, so a field and its tiles never land in two splits. UNCONFIRMED that the
  AneRBC-II number is the AneRBC-I field's number (the note infers it from sample names); if it is
  not, tiles of one field still share a group.
* Semantic masks only: touching cells merge, so no instances are derived.

Evidence: research note ``datasets-segmentation.md`` section 11 (no real sample).
"""
from __future__ import annotations

import io

import re
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from ..errors import CorruptInputError
from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth, RawSample
from .families import FileRecord, ImageMaskPairAdapter, refuse_case_collisions

SUBSETS = ("AneRBC-I", "AneRBC-II")
CLASSES = {"Healthy_individuals": "normal", "Anemic_individuals": "anemia"}
NAME_RE = re.compile(r"^(\d+)(?:_(\d+))?_([ah])$")
MIN_CONTRAST = 5.0


def polarity(image: Path, mask: Path) -> tuple[np.ndarray, bool]:
    """``(mask values, inverted)``: the mask as 0/255 with cells = 0 (the convention), and whether
    the file had cells = 255. Raises :class:`CorruptInputError` naming the file."""
    from ..images import read_pixel_file

    try:
        with Image.open(io.BytesIO(read_pixel_file(mask))) as im:  # integrity-checked (PNG CRCs, TIFF tags)
            m = np.asarray(im.convert("L"))
        with Image.open(image) as im:
            g = np.asarray(im.convert("L"), dtype=np.float64)
    except (OSError, ValueError) as e:
        raise CorruptInputError(f"{disk.show(mask)}: unreadable ({e})") from None
    bad = sorted(set(np.unique(m).tolist()) - {0, 255})
    if bad:
        raise CorruptInputError(f"{disk.show(mask)}: unexpected mask value(s) {bad[:8]} (expected 0 and 255)")
    if m.shape != g.shape:
        return m, False  # the core reports the size mismatch naming both files
    lo, hi = m == 0, m == 255
    if not lo.any() or not hi.any():
        raise CorruptInputError(f"{disk.show(mask)}: mask holds a single value: polarity cannot be told")
    d = g[hi].mean() - g[lo].mean()
    if abs(d) < MIN_CONTRAST:
        raise CorruptInputError(f"{disk.show(mask)}: the two mask values cover equally bright pixels of "
                                f"{image.name} ({abs(d):.1f} gray levels apart): polarity cannot be told")
    return m, bool(d < 0)  # 255 darker than 0: cells are 255


class AneRBCAdapter(ImageMaskPairAdapter):
    id = "anerbc"
    version = "1"
    tasks = ("segmentation",)
    markers = ("AneRBC-*",)
    mask_values = {255: "background", 0: "rbc"}
    image_suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
    mask_suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

    def signature(self, path: Path) -> bool:
        return any((path / s / c / "Binary_segmented").is_dir() for s in SUBSETS for c in CLASSES)

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [(f"{s}/{c}", root / s / c / "Original_images", root / s / c / "Binary_segmented")
                for s in SUBSETS for c in CLASSES if (root / s / c / "Original_images").is_dir()]

    def records(self, root: Path) -> Iterator[FileRecord]:
        for s in SUBSETS:
            for c in CLASSES:
                rgb = root / s / c / "RGB_segmented"
                if rgb.is_dir():
                    refuse_case_collisions(disk.list_dir(rgb, None, root)[1])  # even unread: never ambiguous
                    self.report.skip(f"{s}/{c}/RGB_segmented/", "cells on a blank background (derived from the masks): not converted")
        for rec in super().records(root):
            if not NAME_RE.match(rec.path.stem):
                raise CorruptInputError(f"{disk.show(rec.path)}: unexpected name (expected NNN_a / NNNN_PP_h)")
            yield rec

    def group_id(self, rec: FileRecord) -> str:
        m = NAME_RE.match(rec.path.stem)
        return f"{m.group(3)}:{int(m.group(1))}"  # type: ignore[union-attr]

    def meta(self, rec: FileRecord) -> dict[str, str]:
        return {"disease": CLASSES[rec.part("subset").split("/")[1]]}

    def parse(self, rec: FileRecord) -> RawSample:
        s = super().parse(rec)
        s.subset = rec.part("subset").split("/")[0]
        values, inverted = polarity(rec.path, rec.extra[0])
        if inverted:
            s.semantic_mask = (255 - values).astype(np.uint8)
            s.qc_flags.append("mask_polarity:inverted")
        else:
            s.qc_flags.append("mask_polarity:cells_dark")
        return s

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/AneRBC dataset/`` with AneRBC-I (2 healthy, 2 anaemic fields) and AneRBC-II
        (tiles of one field per class), binary masks with cells = 0 on 255 except one file with
        the other polarity, ``RGB_segmented`` folders, and one mask without an image."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "AneRBC dataset"
        truth: dict[str, FakeSample] = {}
        plan = [("AneRBC-I", "Healthy_individuals", ["001_h", "002_h"], (96, 75)),
                ("AneRBC-I", "Anemic_individuals", ["001_a", "002_a"], (96, 75)),
                ("AneRBC-II", "Healthy_individuals", ["0001_01_h", "0001_02_h"], (32, 30)),
                ("AneRBC-II", "Anemic_individuals", ["0002_01_a"], (32, 30))]
        for s, c, stems, (W, H) in plan:
            idir, mdir, rdir = (root / s / c / k for k in ("Original_images", "Binary_segmented", "RGB_segmented"))
            for d in (idir, mdir, rdir):
                d.mkdir(parents=True, exist_ok=True)
            for k, stem in enumerate(stems):
                boxes = syn.random_boxes(rng, W, H, 3, lo=8, hi=14)
                cells = Image.new("L", (W, H), 0)
                d = ImageDraw.Draw(cells)
                for x, y, bw, bh in boxes:
                    d.ellipse([x, y, x + bw - 1, y + bh - 1], fill=1)
                cell = np.asarray(cells).astype(bool)
                img = np.full((H, W, 3), (232, 222, 214), np.uint8)  # pale plasma
                img[cell] = (176, 92, 104)  # darker red cells
                img = np.clip(img.astype(int) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img, "RGB").save(idir / f"{stem}.png")
                Image.fromarray(img * cell[..., None], "RGB").save(rdir / f"{stem}.png")
                conv = np.where(cell, 0, 255).astype(np.uint8)  # cells 0 on 255
                native = 255 - conv if (s, stem) == ("AneRBC-I", "002_a") else conv
                Image.fromarray(native, "L").save(mdir / f"{stem}.png")
                rel = f"{s}/{c}/Original_images/{stem}.png"
                m = NAME_RE.match(stem)
                truth[rel] = FakeSample(rel_path=rel, semantic_mask=conv, group_id=f"{m.group(3)}:{int(m.group(1))}")
        Image.fromarray(np.full((30, 32), 255, np.uint8), "L").save(
            root / "AneRBC-II" / "Anemic_individuals" / "Binary_segmented" / "0009_01_a.png")  # no image
        return FakeTruth(root=root, samples=truth)


ADAPTER = AneRBCAdapter
