"""KRD-WBC (Mendeley jzdj6h7gms v2, 2023: "Creating a white blood cell dataset for segmentation";
Taha, Alizadeh, Mohammad; Erbil, Kurdistan region of Iraq): 600 single-WBC images, 512x512, with a
whole-cell mask stored as JPEG and a cell type per image.

Native layout (the Mendeley zip, extracted; ``locate`` accepts up to two levels above)::

    <root>/Dataset/image/image<N>.jpg
    <root>/Dataset/mask/mask<N>.jpg
    <root>/class labels.csv          a column spelled "Categoriy" (sic) and an image column

Conventions:
* Pairing: the number ``N`` is the key (``image<N>`` <-> ``mask<N>``; the prefixes differ, so stems
  never match). A mask without an image is reported (``orphaned``); an image without a mask is
  an error naming it.
* Masks are binary (WBC = white) but JPEG-compressed: thresholded in the worker by the shared rule
  of :mod:`unihema_data.formats.jpegmask` (luminance ``>= 128`` -> ``255`` = ``wbc``, else ``0`` =
  ``background``); rows are flagged ``mask_thresholded:128`` and ``mask_lossy_pixels:<n>``. A file
  that is not a binary mask (over 5 % mid-tones) is an error naming it. The round trip to the
  native file is therefore exact only up to JPEG ringing (the native encoding is lossy).
* Label: the verbatim ``Categoriy`` value, mapped by ``taxonomy.yaml`` ``sources.krd_wbc.labels``
  (five types; both title and lower case listed, exact strings UNCONFIRMED: an unknown string
  fails the conversion naming it). The column is found by name; ``Category`` (corrected spelling)
  is accepted and flagged. The image column (UNCONFIRMED name) is the other column; its values
  ``image<N>``, ``image<N>.jpg`` or ``N`` give the key. Its name goes to
  ``report.info["csv_columns"]``. An image without a row, a duplicate or unreadable key is an
  error naming the CSV line; a row without an image is reported (``orphaned``).
* No split, no patient ids: ``group_id`` empty. No disease label (catalog: unknown).

Evidence: research note ``datasets-segmentation.md`` section 7 (no real sample: Mendeley only).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw

from ..formats import disk
from ..formats.csvfmt import read_csv, write_csv
from ..formats.jpegmask import threshold_mask
from . import _synthetic as syn
from .base import CorruptInputError, FakeSample, FakeTruth, MissingInputError, RawSample
from .families import FileRecord, ImageMaskPairAdapter

CSV_NAME = "class labels.csv"
LABEL_COLUMNS = ("Categoriy", "Category")
KEY_RE = re.compile(r"^(?:image|mask)?\s*0*(\d+)(?:\.(?:jpe?g|png))?$", re.IGNORECASE)
THRESHOLD = 128
CLASSES = ("Neutrophil", "Lymphocyte", "Monocyte", "Eosinophil", "Basophil")


def _index(stem: str, prefix: str) -> str:
    m = re.fullmatch(rf"{prefix}(\d+)", stem, re.IGNORECASE)
    return str(int(m.group(1))) if m else f"{stem} (not {prefix}<N>)"


class KrdWbcAdapter(ImageMaskPairAdapter):
    id = "krd_wbc"
    version = "1"
    tasks = ("segmentation", "classification")
    markers = ("Dataset/image", "Dataset/mask", CSV_NAME)
    mask_values = {0: "background", 255: "wbc"}
    image_suffixes = (".jpg", ".jpeg", ".png")
    mask_suffixes = (".jpg", ".jpeg", ".png")

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [("", root / "Dataset" / "image", root / "Dataset" / "mask")]

    def expected_mask_name(self, image: Path) -> str:
        return f"mask{self.image_key(image)}.jpg"

    def image_key(self, path: Path) -> str:
        return _index(path.stem, "image")

    def mask_key(self, path: Path) -> str:
        return _index(path.stem, "mask")

    # ---------------------------------------------------------------- labels
    def read_labels(self, path: Path) -> dict[str, str]:
        table = read_csv(path)
        label_col = next((c for c in LABEL_COLUMNS if c in table.header), None)
        if label_col is None or len(table.header) != 2:
            raise CorruptInputError(f"{disk.show(path)}: expected two columns, an image column and 'Categoriy'; "
                                    f"found {table.header}")
        key_col = next(c for c in table.header if c != label_col)
        self.report.info["csv_columns"] = f"{key_col!r} (image), {label_col!r} (class)"
        if label_col != "Categoriy":
            self.report.flag(CSV_NAME, f"class column spelled {label_col!r} (the release spells it 'Categoriy')")
        out: dict[str, str] = {}
        for row in table:
            m = KEY_RE.match(row[key_col])
            if not m:
                raise CorruptInputError(f"{table.where(row)}: image {row[key_col]!r} is not image<N> / N")
            if not row[label_col]:
                raise CorruptInputError(f"{table.where(row)}: empty class for {row[key_col]!r}")
            key = str(int(m.group(1)))
            if key in out:
                raise CorruptInputError(f"{table.where(row)}: image {key} is listed twice")
            out[key] = row[label_col]
        return out

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.labels = self.read_labels(root / CSV_NAME)

    def records(self, root: Path) -> Iterator[FileRecord]:
        if not hasattr(self, "labels"):
            self.prepare(root)
        used = set()
        for rec in super().records(root):
            key = self.image_key(rec.path)
            if key not in self.labels:
                raise MissingInputError(f"{disk.show(root / CSV_NAME)}: no row for image {key} ({rec.rel_path}); cannot label it")
            used.add(key)
            yield rec
        for key in sorted(set(self.labels) - used, key=int):
            self.report.orphan(f"{CSV_NAME}:image{key}", "CSV row without an image")

    def label(self, rec: FileRecord) -> Optional[str]:
        return self.labels[self.image_key(rec.path)]

    def parse(self, rec: FileRecord) -> RawSample:
        s = super().parse(rec)
        s.annotation_file = disk.show(rec.extra[0])
        s.semantic_mask, lossy = threshold_mask(rec.extra[0], THRESHOLD)
        s.qc_flags += [f"mask_thresholded:{THRESHOLD}", f"mask_lossy_pixels:{lossy}"]
        return s

    def input_files(self, root: Path) -> Iterator[Path]:
        yield root / CSV_NAME
        yield from super().input_files(root)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/KRD-WBC dataset/`` with 6 images (all five classes, non-padded indices
        1..6 with a gap), JPEG masks with compression ringing, ``class labels.csv`` with the
        ``Categoriy`` column, one CSV row without an image and one mask without an image."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "KRD-WBC dataset"
        idir, mdir = root / "Dataset" / "image", root / "Dataset" / "mask"
        idir.mkdir(parents=True, exist_ok=True)
        mdir.mkdir(parents=True, exist_ok=True)
        S = 64
        truth: dict[str, FakeSample] = {}
        rows = []
        for k, n in enumerate([1, 2, 3, 4, 5, 7]):
            cls = CLASSES[k % len(CLASSES)]
            syn.single_cell(S, "wbc", seed * 10 + n).save(idir / f"image{n}.jpg", quality=92)
            im = Image.new("L", (S, S), 0)
            r = S * float(rng.uniform(0.25, 0.4))
            ImageDraw.Draw(im).ellipse([S / 2 - r, S / 2 - r, S / 2 + r, S / 2 + r], fill=255)
            im.save(mdir / f"mask{n}.jpg", quality=90)
            values = np.where(np.asarray(im) >= THRESHOLD, 255, 0).astype(np.uint8)
            rows.append((f"image{n}.jpg", cls))
            rel = f"Dataset/image/image{n}.jpg"
            truth[rel] = FakeSample(rel_path=rel, label=cls, semantic_mask=values)
        rows.append(("image9.jpg", "Monocyte"))  # a row whose image is absent
        write_csv(root / CSV_NAME, ("Image", "Categoriy"), rows)
        Image.new("L", (S, S), 0).save(mdir / "mask8.jpg")  # a mask whose image is absent
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """A photograph in place of a mask: not a binary mask."""
        path = truth.root / "Dataset" / "mask" / "mask2.jpg"
        ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
        Image.fromarray(ramp, "L").save(path, quality=90)
        return path.name


ADAPTER = KrdWbcAdapter
