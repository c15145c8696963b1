"""BCCD, classification version (Kaggle ``paultimothymooney/blood-cells``; Uni-Hema links the
same content as ``konstantinazov/bccd-dataset``): the 410 BCCD smear images with one WBC type per
image (``labels.csv``), and an augmented set of 4-class WBC crops.

Native layout (each part may be nested once more in a folder of its own name, as the Kaggle zip
does; ``locate`` accepts up to two levels above the root)::

    <root>/dataset-master/[dataset-master/]labels.csv              ,Image,Category  (CRLF)
    <root>/dataset-master/[dataset-master/]JPEGImages/BloodImage_%05d.jpg   (640x480 fields)
    <root>/dataset-master/[dataset-master/]Annotations/*.xml       VOC boxes: the ``bccd`` source, not read here
    <root>/dataset2-master/[dataset2-master/]images/<SPLIT>/<CLASS>/_<k>_<n>.jpeg
        <SPLIT>: TRAIN TEST TEST_SIMPLE    <CLASS>: EOSINOPHIL LYMPHOCYTE MONOCYTE NEUTROPHIL

Conventions, ``labels.csv`` (fields, ``subset = "dataset-master"``):
* The first column is unnamed and empty; ``Image`` is the integer id of ``BloodImage_%05d.jpg``;
  ``Category`` is UPPERCASE. Read with the strict CSV reader (a missing column, an id that is not
  an integer in 0..99999 or an id listed twice is an error naming the file and line).
* ``Category`` empty: the image has no WBC label: label ``""`` (-> ``unlabeled``), flagged
  ``empty_category``.
* ``Category`` with several comma-separated classes, with or without a space after the comma
  (``"NEUTROPHIL, EOSINOPHIL"``, ``"NEUTROPHIL,EOSINOPHIL"``): when every part is the same class
  (``"NEUTROPHIL,NEUTROPHIL"``) the label is that class and the row is flagged
  ``cells_in_image:<n>`` and ``native_category:<verbatim>``; when the parts differ the field shows
  several different cells and has no image label: it is **skipped and reported** (its cells are
  labelled by box in the ``bccd`` source).
* A row whose image is absent is reported (``orphaned``); an image without a row is reported
  (``orphaned``) and not converted (no label).
* These are the BCCD images: byte-identical rows of ``bccd`` are linked by the core's duplicate
  detection (one split, ``duplicate_of:``).

Conventions, ``dataset2-master`` (crops, ``subset = "dataset2-master:<SPLIT>"``):
* Label = the class folder, verbatim.
* The crops are augmentations: ``_<k>_<n>.jpeg`` is read as augmentation ``k`` of crop lineage
  ``n`` (UNCONFIRMED naming convention). ``group_id = "lineage:<n>"`` so that all copies of one
  original land in **one split**: the published TRAIN/TEST/TEST_SIMPLE folders leak lineages
  across each other, so they are *not* used as the split (``source_split`` is empty, the core's
  grouped split applies) and are kept in ``subset``. The number of lineages and how many of them
  the published folders split across TRAIN and TEST are detected and reported
  (``report.info["lineages"]``). A name not matching the pattern is its own group and is flagged
  ``no_lineage``.

Detected and reported (``report.info["layout"]``): which parts are present and whether each is
nested. Evidence: research note ``datasets-classification.md`` §10a and ``real-data-sources.md``
(``apple2373/BCCD`` copy of ``labels.csv``: CRLF, empty first column, 44 empty, 15 multi-label
values with and without a space, no newline after the last row). UNCONFIRMED: the
``konstantinazov`` package content, the crop totals (~12.5k), the lineage reading of file names.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..errors import CorruptInputError, MissingInputError
from ..formats import csvfmt, disk
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawSample

PART1, PART2 = "dataset-master", "dataset2-master"
LABELS = "labels.csv"
SPLITS = ("TRAIN", "TEST", "TEST_SIMPLE")
CLASSES = ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
CROP = re.compile(r"^_(\d+)_(\d+)$")


@dataclass(frozen=True)
class Record:
    rel_path: str
    path: Path
    label: Optional[str]
    subset: str
    group_id: str = ""
    flags: tuple[str, ...] = ()
    where: str = ""


def _part(root: Path, name: str) -> Optional[Path]:
    """``root/name`` or ``root/name/name`` (the Kaggle zip nests each part once more)."""
    for p in (root / name / name, root / name):
        if p.is_dir():
            return p
    return None


def parse_category(value: str) -> tuple[Optional[str], list[str]]:
    """``(label, flags)`` of a ``Category`` cell; label ``None`` = several different classes."""
    if not value:
        return "", ["empty_category"]
    parts = [p.strip() for p in value.split(",")]
    if len(parts) == 1:
        return parts[0], []
    if len(set(parts)) == 1:
        return parts[0], [f"cells_in_image:{len(parts)}", f"native_category:{value}"]
    return None, []


class BccdKaggleAdapter(Adapter):
    id = "bccd_kaggle"
    version = "2"
    tasks = ("classification",)
    markers = ("dataset*-master",)
    layout_hint = "dataset-master/ (labels.csv) and/or dataset2-master/images/"

    def signature(self, path: Path) -> bool:
        p1, p2 = _part(path, PART1), _part(path, PART2)
        return bool((p1 and (p1 / LABELS).is_file()) or (p2 and (p2 / "images").is_dir()))

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.p1, self.p2 = _part(root, PART1), _part(root, PART2)
        layout = []
        for name, p in ((PART1, self.p1), (PART2, self.p2)):
            layout.append(f"{name}: " + ("absent" if p is None else disk.rel(p, root) + "/"))
        self.report.info["layout"] = "; ".join(layout)

    def records(self, root: Path) -> Iterator[Record]:
        found = False
        if self.p1 is not None:
            for rec in self._fields(root, self.p1):
                found = True
                yield rec
        if self.p2 is not None:
            for rec in self._crops(root, self.p2):
                found = True
                yield rec
        if not found:
            raise MissingInputError(f"{self.id}: no labelled images under {disk.show(root)} "
                                    f"(expected {PART1}/{LABELS} with JPEGImages/, or {PART2}/images/<SPLIT>/<CLASS>/)")

    # ---------------------------------------------------------------- dataset-master
    def _fields(self, root: Path, base: Path) -> Iterator[Record]:
        table = csvfmt.read_csv(base / LABELS, required=("Image", "Category"))
        folder = base / "JPEGImages"
        images = {}
        if folder.is_dir():
            files = disk.list_files(folder, (".jpg", ".jpeg"), self.report, root, "an image file")
            images = disk.index_by_stem(files, "image")
        csv_rel = disk.rel(base / LABELS, root)
        seen: dict[str, int] = {}
        for row in table:
            raw = row["Image"]
            if not raw.isdigit() or int(raw) > 99999:
                raise CorruptInputError(f"{disk.show(base / LABELS)}:{row.line}: Image {raw!r} is not an integer id "
                                        "of BloodImage_%05d.jpg (0..99999)")
            stem = f"BloodImage_{int(raw):05d}"
            if stem in seen:
                raise CorruptInputError(f"{disk.show(base / LABELS)}:{row.line}: Image {raw} is already listed on line {seen[stem]}")
            seen[stem] = row.line
            img = images.get(stem)
            if img is None:
                self.report.orphan(f"{csv_rel}:{row.line}", f"{stem}.jpg is absent")
                continue
            label, flags = parse_category(row["Category"])
            if label is None:
                self.report.skip(disk.rel(img, root), f"{csv_rel}:{row.line}: Category {row['Category']!r} names "
                                 "several different cells (no image label; see the bccd boxes)")
                continue
            yield Record(disk.rel(img, root), img, label, PART1, "", tuple(flags), f"{disk.show(base / LABELS)}:{row.line}")
        for stem in sorted(set(images) - set(seen)):
            self.report.orphan(disk.rel(images[stem], root), f"not listed in {LABELS} (no label; not converted)")

    # ---------------------------------------------------------------- dataset2-master
    def _crops(self, root: Path, base: Path) -> Iterator[Record]:
        images = base / "images"
        if not images.is_dir():
            raise MissingInputError(f"{disk.show(base)}: images/ folder is missing")
        dirs, files = disk.list_dir(images, self.report, root)
        for f in files:
            self.report.skip(disk.rel(f, root), "file outside a <SPLIT> folder")
        lineages: dict[str, set[str]] = defaultdict(set)
        recs = []
        for split_dir in dirs:
            if split_dir.name not in SPLITS:
                raise CorruptInputError(f"{disk.show(split_dir)}: unknown split folder {disk.show(split_dir.name)!r} "
                                        f"(expected one of {', '.join(SPLITS)})")
            cdirs, cfiles = disk.list_dir(split_dir, self.report, root)
            for f in cfiles:
                self.report.skip(disk.rel(f, root), "file outside a <CLASS> folder")
            for cls_dir in cdirs:
                if cls_dir.name not in CLASSES:
                    raise CorruptInputError(f"{disk.show(cls_dir)}: unknown class folder {disk.show(cls_dir.name)!r} "
                                            f"(expected one of {', '.join(CLASSES)})")
                for f in disk.list_files(cls_dir, disk.IMAGE_SUFFIXES, self.report, root, "an image file"):
                    m = CROP.match(f.stem)
                    rel = disk.rel(f, root)
                    if m:
                        lineages[m.group(2)].add(split_dir.name)
                    recs.append(Record(rel, f, cls_dir.name, f"{PART2}:{split_dir.name}",
                                       f"lineage:{m.group(2)}" if m else "", () if m else ("no_lineage",), disk.show(f)))
        if lineages:
            crossing = sum(1 for s in lineages.values() if len(s) > 1)
            self.report.info["lineages"] = (f"{len(lineages)} crop lineages; {crossing} of them are in more than one "
                                            "published folder (TRAIN/TEST/TEST_SIMPLE), kept in one split here")
        yield from recs

    def parse(self, rec: Record) -> RawSample:
        return RawSample(rel_path=rec.rel_path, image_path=rec.path, label=rec.label, subset=rec.subset,
                         group_id=rec.group_id, qc_flags=list(rec.flags), annotation_file=rec.where)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/blood-cells/`` as the Kaggle zip unpacks: ``dataset-master/dataset-master/``
        with a CRLF ``labels.csv`` (empty first column; a single, an empty, a same-class and a
        different-class multi-label value with and without a space; a row whose image is absent;
        no newline at the end), JPEG fields and one unlisted image; ``dataset2-master/
        dataset2-master/images/`` with augmented crops of one lineage in TRAIN and TEST, a
        TEST_SIMPLE crop and a ``.DS_Store``."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "blood-cells"
        p1 = root / PART1 / PART1
        (p1 / "JPEGImages").mkdir(parents=True)
        (p1 / "Annotations").mkdir()
        truth: dict[str, FakeSample] = {}
        rows = [(0, "NEUTROPHIL"), (1, "EOSINOPHIL"), (2, ""), (3, '"NEUTROPHIL,NEUTROPHIL"'),
                (4, '"NEUTROPHIL, EOSINOPHIL"'), (5, '"MONOCYTE,LYMPHOCYTE"'), (6, "BASOPHIL"), (9, "LYMPHOCYTE")]
        for k, (i, cat) in enumerate(rows):
            if i == 9:
                continue  # listed, image absent
            rel = f"{PART1}/{PART1}/JPEGImages/BloodImage_{i:05d}.jpg"
            cells = [([int(v) for v in b], "rbc") for b in syn.random_boxes(rng, 160, 120, 4, 15, 30)]
            (root / rel).write_bytes(syn.encode(syn.smear(160, 120, cells + [([60, 40, 40, 40], "wbc")], seed * 100 + k),
                                                "JPEG", quality=90))
            label = parse_category(cat.strip('"'))[0]
            if label is not None:
                truth[rel] = FakeSample(rel_path=rel, label=label)
        (p1 / "JPEGImages" / "BloodImage_00007.jpg").write_bytes(syn.encode(syn.smear(160, 120, [], seed + 7), "JPEG"))
        (p1 / "Annotations" / "BloodImage_00000.xml").write_text("<annotation></annotation>\n")
        (p1 / LABELS).write_bytes(("\r\n".join([",Image,Category"] + [f",{i},{c}" for i, c in rows])).encode())
        p2 = root / PART2 / PART2 / "images"
        crops = [("TRAIN", "EOSINOPHIL", 0, 1169), ("TRAIN", "EOSINOPHIL", 1, 1169), ("TEST", "EOSINOPHIL", 2, 1169),
                 ("TRAIN", "NEUTROPHIL", 0, 207), ("TRAIN", "LYMPHOCYTE", 3, 9893), ("TEST", "MONOCYTE", 0, 44),
                 ("TEST_SIMPLE", "NEUTROPHIL", 0, 5)]
        for k, (split, cls, aug, n) in enumerate(crops):
            rel = f"{PART2}/{PART2}/images/{split}/{cls}/_{aug}_{n}.jpeg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(syn.encode(syn.single_cell(64, "wbc", seed * 100 + 50 + k, size_h=48), "JPEG", quality=90))
            truth[rel] = FakeSample(rel_path=rel, label=cls, group_id=f"lineage:{n}")
        (p2 / "TRAIN" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """Drop the ``Category`` column header of ``labels.csv``."""
        path = truth.root / PART1 / PART1 / LABELS
        path.write_bytes(path.read_bytes().replace(b",Image,Category", b",Image,Class", 1))
        return LABELS


ADAPTER = BccdKaggleAdapter
