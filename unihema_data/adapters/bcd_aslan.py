"""Blood Cell Detection Dataset (draaslan/blood-cell-detection-dataset): RBC / WBC boxes in a CSV.

Native layout (GitHub archive, commit ``721d642``; ``locate`` accepts up to two levels above)::

    blood-cell-detection-dataset-<sha>/
        annotations.csv                 image_id,image,xmin,ymin,xmax,ymax,label (one row per box)
        images/image-<n>.png            100 PNG, 256x256
        labels/image-<n>.txt            the same boxes as KITTI lines (absolute pixels)
        labels/.ipynb_checkpoints/      stale notebook copies (hidden: skipped, reported)
        tfrecords/                      TensorFlow export (not read)

Conventions and quirks handled (evidence: research note datasets-detection.md converter checklist
and issue 20; verified by reading the whole repository at ``721d642``):

* ``annotations.csv`` is the annotation the adapter converts (the README names it). Since commit
  ``721d642`` ("change annotation pixel format to ratio") its corners are **normalized** to
  [0, 1] (continuous corners: a maximum of 1.0 is the image border); before it they were
  absolute pixels. The adapter detects which from the values (any coordinate > 1 = absolute),
  reports it (``report.info["csv_coordinates"]``) and multiplies normalized corners by the image
  size read from each image: the core then sees absolute :attr:`BoxFormat.XYXY`. A file that
  mixes both (some rows with a corner > 1, others all <= 1) is an error naming the odd line.
* ``labels/*.txt`` (KITTI: ``type trunc occl alpha x1 y1 x2 y2 h w l x y z ry``, absolute) is a
  second copy. Each image's KITTI boxes are compared with its CSV boxes (same labels, corners
  within 0.5 px, in order); a disagreement is reported (``flagged``, naming both files) and the
  CSV is kept. At ``721d642`` exactly one image disagrees: ``image-1`` has 18 CSV rows, its KITTI
  file 19 (the WBC box repeated as an ``rbc``). A KITTI file that is missing is reported; a
  malformed KITTI line is an error naming file:line.
* ``image_id`` must match the file name ``image-<id>.png`` (else flagged).
* An image without any CSV row is reported and not converted (none at ``721d642``); a CSV row
  naming a missing image is an error naming the CSV line.
* No published split, no slide ids: grouped split by image.

UNCONFIRMED: that the normalization divides by the image width/height (256 = 256, so x and y
cannot be told apart here; checked against KITTI on every image, which would disagree otherwise).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..boxes import BoxFormat
from ..errors import CorruptInputError, MissingInputError
from ..formats import csvfmt, disk
from ..formats.disk import show
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawObject, RawSample

HEADER = ["image_id", "image", "xmin", "ymin", "xmax", "ymax", "label"]
KITTI_TOL = 0.5


@dataclass(frozen=True)
class BcdRecord:
    rel_path: str
    image: Path
    kitti: Optional[Path]
    normalized: bool
    csv: str
    boxes: tuple[tuple[str, tuple[float, float, float, float], int], ...]  # (label, corners, CSV line)


class BCDAslanAdapter(Adapter):
    id = "bcd_aslan"
    version = "2"
    tasks = ("detection",)
    box_format = BoxFormat.XYXY
    markers = ("annotations.csv", "images")

    def signature(self, path: Path) -> bool:
        """``annotations.csv``'s header names ``image`` and the four corners (the exact header is
        checked when reading, so a changed header is an error naming the file, not "not found")."""
        if not (path / "annotations.csv").is_file():  # never open a FIFO while looking
            return False
        try:
            with open(path / "annotations.csv", "rb") as f:
                head = f.read(64).decode("utf-8", "replace").lstrip("\ufeff")
        except OSError:
            return False
        cols = head.split("\n", 1)[0].strip().replace(" ", "").split(",")
        return {"image", "xmin", "ymin", "xmax", "ymax"} <= set(cols)

    def records(self, root: Path) -> Iterator[BcdRecord]:
        csv_path = root / "annotations.csv"
        table = csvfmt.read_csv(csv_path, header_variants=[HEADER])
        by_image: dict[str, list] = defaultdict(list)
        big_rows: list[int] = []  # CSV lines with a corner > 1 (absolute pixels)
        small_rows: list[int] = []
        for row in table:
            try:
                box = tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError:
                raise CorruptInputError(f"{table.where(row)}: a corner is not a number: "
                                        f"{[row[k] for k in ('xmin', 'ymin', 'xmax', 'ymax')]}") from None
            if not all(math.isfinite(v) for v in box) or min(box) < 0:
                raise CorruptInputError(f"{table.where(row)}: corners must be finite and >= 0, got {list(box)}")
            if not row["label"]:
                raise CorruptInputError(f"{table.where(row)}: empty label")
            (big_rows if max(box) > 1.0 else small_rows).append(row.line)
            by_image[row["image"]].append((row["label"], box, row.line, row["image_id"]))
        normalized = not big_rows
        if big_rows and small_rows:  # one convention per file: a mix is damage, never guessed per row
            odd = big_rows[0] if len(big_rows) <= len(small_rows) else small_rows[0]
            kind = "absolute (> 1)" if odd in big_rows else "normalized (all <= 1)"
            raise CorruptInputError(
                f"{show(csv_path)}:{odd}: corners are {kind} while most rows use the other convention "
                f"({len(small_rows)} normalized rows, {len(big_rows)} absolute rows)")
        self.report.info["csv_coordinates"] = (
            "normalized to [0, 1] (release 721d642 and later)" if normalized else "absolute pixels (before 721d642)")
        image_files = disk.list_files(root / "images", disk.IMAGE_SUFFIXES, self.report, root, "an image file")
        disk.refuse_case_collisions(image_files)
        images = {p.name: p for p in image_files}
        labels_dir = root / "labels"
        kitti_files = disk.list_files(labels_dir, (".txt",), self.report, root, "a KITTI label file") \
            if labels_dir.is_dir() else []
        disk.refuse_case_collisions(kitti_files, "KITTI label")
        kitti = {p.name: p for p in kitti_files}
        for name in sorted(set(images) - set(by_image)):
            self.report.orphan(disk.rel(images[name], root), "image without a row in annotations.csv (not converted)")
        for name in sorted(by_image, key=_num_key):
            rows = by_image[name]
            img = images.get(name)
            if img is None:
                raise MissingInputError(f"{show(csv_path)}:{rows[0][2]}: image images/{name} is missing")
            ids = {r[3] for r in rows}
            if ids != {name.removeprefix("image-").rsplit(".", 1)[0]}:
                self.report.flag(f"annotations.csv:{rows[0][2]}", f"image_id {sorted(ids)} does not match {name}")
            k = kitti.get(Path(name).stem + ".txt")
            if k is None and labels_dir.is_dir():
                self.report.orphan(f"labels/{Path(name).stem}.txt", "KITTI copy missing (annotations.csv used)")
            yield BcdRecord(disk.rel(img, root), img, k, normalized, show(csv_path),
                            tuple((lab, box, line) for lab, box, line, _ in rows))

    def parse(self, rec: BcdRecord) -> RawSample:
        W, H = disk.image_size(rec.image)
        scale = (W, H, W, H) if rec.normalized else (1, 1, 1, 1)
        objects = [RawObject(lab, tuple(v * s for v, s in zip(box, scale))) for lab, box, _ in rec.boxes]
        notes = []
        if rec.kitti is not None:
            theirs = _read_kitti(rec.kitti)
            ours = [(o.category, o.bbox) for o in objects]
            same = len(theirs) == len(ours) and all(
                a[0] == b[0] and max(abs(x - y) for x, y in zip(a[1], b[1])) <= KITTI_TOL for a, b in zip(ours, theirs))
            if not same:
                notes.append(("flagged", f"labels/{rec.kitti.name}",
                              f"KITTI copy disagrees with annotations.csv ({len(theirs)} vs {len(ours)} boxes); "
                              "annotations.csv used"))
        return RawSample(rel_path=rec.rel_path, image_path=rec.image, objects=objects,
                         annotation_file=f"{rec.csv} lines {rec.boxes[0][2]}-{rec.boxes[-1][2]}", notes=notes)

    def input_files(self, root: Path) -> Iterator[Path]:
        yield root / "annotations.csv"
        yield from disk.list_files(root / "images")
        if (root / "labels").is_dir():
            yield from disk.list_files(root / "labels")

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/blood-cell-detection-dataset-master/`` with normalized CSV corners (boxes
        touching all four borders), KITTI copies of which one holds an extra box (the real
        ``image-1`` quirk), ``labels/.ipynb_checkpoints/`` and a ``tfrecords/`` folder."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "blood-cell-detection-dataset-master"
        for d in ("images", "labels/.ipynb_checkpoints", "tfrecords"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "tfrecords" / "data-fold-1-of-10-shard-1-of-1").write_bytes(b"\x00" * 16)
        W = H = 256
        truth: dict[str, FakeSample] = {}
        csv_rows = []
        for n in (1, 2, 3, 10, 11, 100):
            kinds = ["wbc"] + ["rbc"] * int(rng.integers(3, 8))
            boxes = [[float(v) for v in b] for b in syn.random_boxes(rng, W, H, len(kinds), lo=20, hi=70)]
            if n == 1:
                boxes[1] = [0.0, 0.0, 53.693115519253205, 35.35939323220536]   # real corners of image-1
                boxes[2] = [235.7712952158693, 57.22987164527421, 20.228704784130698, 58.72928821470243]  # xmax = 256
            name = f"image-{n}.png"
            im = syn.smear(W, H, list(zip(boxes, kinds)), seed * 100 + n)
            (root / "images" / name).write_bytes(syn.encode(im, "PNG"))
            kitti_boxes = list(zip(kinds, boxes))
            if n == 1:  # the KITTI copy repeats the WBC box as an rbc
                kitti_boxes.insert(1, ("rbc", boxes[0]))
            (root / "labels" / f"image-{n}.txt").write_text("".join(
                f"{k} 0.00 0 0 {x} {y} {x + w} {y + h} 0 0 0 0 0 0 0\n" for k, (x, y, w, h) in kitti_boxes))
            for k, (x, y, w, h) in zip(kinds, boxes):
                csv_rows.append([n, name, x / W, y / H, (x + w) / W, (y + h) / H, k])
            rel = f"images/{name}"
            truth[rel] = FakeSample(rel_path=rel, boxes=boxes, categories=kinds)
        (root / "labels" / ".ipynb_checkpoints" / "image-1-checkpoint.txt").write_text("rbc 0.00 0 0 1 2 3 4 0 0 0 0 0 0 0\n")
        csvfmt.write_csv(root / "annotations.csv", HEADER, sorted(csv_rows, key=lambda r: -r[0]))
        return FakeTruth(root=root, samples=truth)


def _read_kitti(path: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    out = []
    for lineno, line in disk.read_lines(path, "KITTI label file"):
        f = line.split()
        try:
            if len(f) != 15:
                raise ValueError
            out.append((f[0], tuple(float(v) for v in f[4:8])))
        except ValueError:
            raise CorruptInputError(f"{show(path)}:{lineno}: expected a 15-field KITTI line, got {line!r}") from None
    return out


def _num_key(name: str) -> tuple[int, str]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else -1, name)


ADAPTER = BCDAslanAdapter
