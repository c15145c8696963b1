"""Chula RBC-12 (Chula-PIC-Lab/Chula-RBC-12-Dataset): RBC-type point annotations on smear fields.

Native layout (GitHub archive, commit ``fa130f4``; ``locate`` accepts up to two levels above)::

    Chula-RBC-12-Dataset-<sha>/
        Dataset/<n>.jpg                  738 smear fields, 640x480 JPEG (n = 1..)
        Label/<n>.txt                    623 label files: one cell per line ``x y type``
        Label/.DS_Store                  macOS junk (skipped, reported)
        RBC Diseases/<diagnosis>/*.JPG   122 image-level diagnosis photos (HE, HS, Iron deficiency
                                         anemia, Megaloblastic anemia, Thalassemia), no cell labels

Conventions and quirks handled (evidence: research note datasets-classification.md §14a,
datasets-detection.md converter checklist, PROVENANCE.md of the real sample, issue 20, and a full
reading of the repository at ``fa130f4``):

* ``x y type``: integer pixel coordinates of the cell centre, separated by single spaces, ``type``
  the HEAD README ids 0-12 (the alias table maps the ids; an older README numbering is not used by
  any label file). A cell is a **point** (``RawObject.point``), no box is invented: the core
  stores a zero-size box at the point with ``bbox_source = from_point``. A point outside the
  image, a line that is not three integers or a type outside 0-12 is an error naming file:line.
* 115 images have no label file: reported (``orphaned``) and NOT converted (a smear full of
  unlabelled cells is no negative example; no objects are invented). A label file without its
  image (none in the release) is an error naming it.
* Two label files (53.txt, 56.txt) are empty: converted as images without objects, flagged in
  the run report (``empty label file``).
* Label files that are not UTF-8 (issue 20 reports some): read as Latin-1 (a superset of the
  digits, spaces and separators a label file holds), reported as ``repaired``; a character that is
  then still not part of ``x y type`` is an error naming file:line. UNCONFIRMED on the files: at
  ``fa130f4`` every label file decodes as UTF-8, so the fallback is for other copies (Zenodo).
* 22 byte-identical image pairs carry different label files (e.g. 563/610, 296/298): both are
  converted; the split policy keeps each pair in one split and flags ``label_conflict``.
* ``RBC Diseases/<diagnosis>/`` photos (1280x960) carry only a patient-level diagnosis, no cell
  annotation and no RBC-type label: they are NOT converted (a detection row without objects would
  claim the field is empty); each is reported as ``skipped`` with its diagnosis (the alias table
  ``diagnosis`` maps the folder names, so an unknown folder is an error), counted in
  ``report.info["diagnosis_images"]``.
* No published split and no patient ids: the grouped split by image.

Single-cell view (classification), emitted by this adapter next to the field rows (as ``rv_pbs``
does for its polygons) so that a field and its cells share one ``group_id`` and one split:

* one row per labelled point, ``Dataset/<n>_x<x>_y<y>.png`` (the point's coordinates; a point
  listed twice in one file gets ``_1`` on its second crop), label = the point's ``type`` (same
  alias table);
  ``granularity = single_cell``; ``group_id`` = ``Dataset/<n>.jpg`` (the field row's id, which
  links the crop to its source image).
* The crop is the :data:`CELL_CROP` x :data:`CELL_CROP` pixel window whose pixel
  ``(CELL_CROP // 2, CELL_CROP // 2)`` is the point: columns ``x - 32 .. x + 31`` and rows
  ``y - 32 .. y + 31`` (half-open box ``(x - 32, y - 32, x + 32, y + 32)``), about twice an RBC
  diameter at 1000x (research note §14a). Near the border the window is clipped to the image (not
  padded: no invented pixels) and the row is flagged ``crop_clipped``. Pixels are copied
  losslessly (PNG) from the decoded JPEG field (:class:`~unihema_data.refs.ImageCrop`).
* The field rows keep ``granularity = field_of_view`` and tasks ``[detection]``; the cell rows
  have tasks ``[classification]``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..formats.disk import show
from ..refs import ImageCrop
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawObject, RawSample, _glob_any

#: HEAD README class ids
NUM_TYPES = 13
#: side of the square single-cell window centred on a point (pixels)
CELL_CROP = 64
DISEASE_DIR = "RBC Diseases"
_LINE = re.compile(r"(\d+)\s+(\d+)\s+(\d+)")


@dataclass(frozen=True)
class ChulaRecord:
    rel_path: str
    image: Path
    label: Path                    # Label/<n>.txt


@dataclass(frozen=True)
class ChulaCellRecord:
    rel_path: str                  # Dataset/<n>_cell<k>.png
    image: Path
    box: tuple[int, int, int, int]
    label: str                     # the type id
    group: str                     # Dataset/<n>.jpg
    label_file: str
    clipped: bool


def cell_name(field_rel: str, x: int, y: int, seen: dict[str, int]) -> str:
    """``Dataset/<n>_x<x>_y<y>.png``: the crop of the point ``(x, y)`` of field ``Dataset/<n>.jpg``
    (a point listed again in the same file gets ``_1``, ``_2``, ...; ``seen`` counts them)."""
    name = f"{field_rel.rsplit('.', 1)[0]}_x{x}_y{y}"
    k = seen.get(name, 0)
    seen[name] = k + 1
    return f"{name}.png" if k == 0 else f"{name}_{k}.png"


def cell_box(x: int, y: int, width: int, height: int, size: int = CELL_CROP) -> tuple[tuple[int, int, int, int], bool]:
    """Half-open crop box of the ``size`` x ``size`` window whose pixel ``(size // 2, size // 2)``
    is the point ``(x, y)``, clipped to the image; and whether it was clipped."""
    half = size // 2
    x0, y0, x1, y1 = x - half, y - half, x - half + size, y - half + size
    c = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
    return c, c != (x0, y0, x1, y1)


class ChulaRBC12Adapter(Adapter):
    id = "chula_rbc12"
    version = "3"
    tasks = ("detection", "classification")
    markers = ("Dataset", "Label")
    image_suffixes = (".jpg", ".jpeg", ".png")

    def signature(self, path: Path) -> bool:
        """A numbered ``Label/<n>.txt`` next to ``Dataset/`` (tells Chula from other trees)."""
        return _glob_any(path, "Label/[0-9]*.txt") and _glob_any(path, "Dataset/[0-9]*.*")

    def records(self, root: Path) -> Iterator[ChulaRecord]:
        image_files = disk.list_files(root / "Dataset", self.image_suffixes, self.report, root, "an image file")
        label_files = disk.list_files(root / "Label", (".txt",), self.report, root, "a label file")
        disk.refuse_case_collisions(image_files)
        disk.refuse_case_collisions(label_files, "label")
        images = disk.index_by_stem(image_files, "image")
        labels = disk.index_by_stem(label_files, "label file")
        for stem in sorted(set(labels) - set(images), key=_num_key):  # none in the release: an error
            raise MissingInputError(f"{show(labels[stem])}: image Dataset/{show(stem)}.jpg is missing")
        unlabelled = sorted(set(images) - set(labels))
        for stem in unlabelled:
            self.report.orphan(disk.rel(images[stem], root), "image without a label file (not converted)")
        self.report.info["unlabelled_images"] = str(len(unlabelled))
        for stem in sorted(set(images) & set(labels), key=_num_key):
            rec = ChulaRecord(disk.rel(images[stem], root), images[stem], labels[stem])
            yield rec
            # the single-cell view: one crop per point (the label file is small; read here to list them)
            objects, _notes, (W, H) = self._points(rec)
            seen: dict[str, int] = {}
            for ob in objects:
                x, y = int(ob.point[0]), int(ob.point[1])
                box, clipped = cell_box(x, y, W, H)
                yield ChulaCellRecord(cell_name(rec.rel_path, x, y, seen), rec.image, box, ob.category, rec.rel_path,
                                      show(rec.label), clipped)
        dis = root / DISEASE_DIR
        if dis.is_dir():
            dirs, files = disk.list_dir(dis, self.report, root)
            for f in files:
                self.report.skip(disk.rel(f, root), "file outside a diagnosis folder")
            from ..taxonomy import load_taxonomy

            tax, n = load_taxonomy(), 0
            for d in dirs:
                dx = tax.map_diagnosis(self.id, d.name, file=disk.rel(d, root))
                for f in disk.list_files(d, self.image_suffixes, self.report, root, "an image file"):
                    n += 1
                    self.report.skip(disk.rel(f, root), f"diagnosis photo ({dx}) without cell annotations (not converted)")
            self.report.info["diagnosis_images"] = str(n)

    def parse(self, rec) -> RawSample:
        if isinstance(rec, ChulaCellRecord):
            return RawSample(rel_path=rec.rel_path, image_path=ImageCrop(rec.image, rec.box), label=rec.label,
                             group_id=rec.group, annotation_file=rec.label_file, meta={"granularity": "single_cell"},
                             qc_flags=["crop_clipped"] if rec.clipped else [])
        objects, notes, _size = self._points(rec)
        if not objects:
            notes.append(("flagged", f"Label/{rec.label.name}", "empty label file: the image has no annotated cell"))
        return RawSample(rel_path=rec.rel_path, image_path=rec.image, objects=objects, group_id=rec.rel_path,
                         annotation_file=show(rec.label), notes=notes, meta={"granularity": "field_of_view"})

    def _points(self, rec: ChulaRecord) -> tuple[list[RawObject], list[tuple[str, str, str]], tuple[int, int]]:
        """The label file's points (checked), run-report notes, and the image's (width, height)."""
        notes: list[tuple[str, str, str]] = []
        rel_label = f"Label/{rec.label.name}"
        data = disk.read_bytes(rec.label, "label file")
        try:
            text = disk.decode_text(data, show(rec.label), "label file")
        except CorruptInputError:
            if b"\x00" in data:
                raise
            text = data.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
            notes.append(("repaired", rel_label, "not UTF-8: read as Latin-1"))
        W, H = disk.image_size(rec.image)
        objects = []
        for lineno, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            m = _LINE.fullmatch(line.strip())
            if m is None:
                raise CorruptInputError(f"{show(rec.label)}:{lineno}: expected 'x y type' (three integers), got {line.strip()!r}")
            x, y, t = (int(v) for v in m.groups())
            if t >= NUM_TYPES:
                raise CorruptInputError(f"{show(rec.label)}:{lineno}: type {t} is not one of the README ids 0-12")
            if x > W or y > H:
                raise CorruptInputError(f"{show(rec.label)}:{lineno}: point ({x}, {y}) is outside the {W}x{H} image")
            objects.append(RawObject(str(t), None, point=(float(x), float(y))))
        return objects, notes, (W, H)

    def input_files(self, root: Path) -> Iterator[Path]:
        for sub in ("Dataset", "Label"):
            yield from disk.list_files(root / sub)
        if (root / DISEASE_DIR).is_dir():
            yield from disk.walk_files(root / DISEASE_DIR)

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/Chula-RBC-12-Dataset-main/`` with point labels covering types 0-12 (each
        point also a single-cell crop; the corner points give clipped crops), an
        unlabelled image, an empty label file, a Latin-1 label file, a byte-identical image pair
        with different labels, ``.DS_Store`` files, and one ``RBC Diseases/Thalassemia`` photo
        (reported, not converted)."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "Chula-RBC-12-Dataset-main"
        for d in ("Dataset", "Label", f"{DISEASE_DIR}/Thalassemia"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "Label" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\x00")
        (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\x00")
        W, H = 640, 480
        truth: dict[str, FakeSample] = {}
        types = list(range(NUM_TYPES))
        pics: dict[int, bytes] = {}
        for n in (1, 2, 5, 10, 53, 129, 563, 610):
            pts = [] if n == 53 else [(int(rng.integers(10, W - 10)), int(rng.integers(10, H - 10)))
                                      for _ in range(int(rng.integers(3, 7)))]
            if n == 1:
                pts += [(0, 0), (W - 1, H - 1)]  # cells at the image corners
            kinds = [types.pop() if types else int(rng.integers(0, NUM_TYPES)) for _ in pts]
            cells = [((x - 12, y - 12, 24, 24), "rbc") for x, y in pts]
            if n == 610:  # byte-identical to 563, labelled differently (a real quirk)
                data = pics[563]
            else:
                data = syn.encode(syn.smear(W, H, cells, seed * 1000 + n), "JPEG", quality=90)
            pics[n] = data
            (root / "Dataset" / f"{n}.jpg").write_bytes(data)
            body = "".join(f"{x} {y} {t}\n" for (x, y), t in zip(pts, kinds))
            if n == 10:  # not UTF-8: a Latin-1 no-break space as separator
                (root / "Label" / f"{n}.txt").write_bytes(body.replace(" ", "\xa0", 1).encode("latin-1"))
            else:
                (root / "Label" / f"{n}.txt").write_text(body)
            rel = f"Dataset/{n}.jpg"
            truth[rel] = FakeSample(rel_path=rel, boxes=[[float(x), float(y), 0.0, 0.0] for x, y in pts],
                                    categories=[str(t) for t in kinds], group_id=rel)
            seen: dict[str, int] = {}
            for (x, y), t in zip(pts, kinds):
                name = cell_name(rel, x, y, seen)
                truth[name] = FakeSample(name, label=str(t), group_id=rel)
        # an image without a label file: reported, not converted
        (root / "Dataset" / "700.jpg").write_bytes(syn.encode(syn.smear(W, H, [], seed + 700), "JPEG", quality=90))
        im = syn.smear(1280, 960, [((100, 100, 60, 60), "rbc")], seed + 9)  # reported, not converted
        (root / DISEASE_DIR / "Thalassemia" / "Thalassemia_1.JPG").write_bytes(syn.encode(im, "JPEG", quality=85))
        return FakeTruth(root=root, samples=truth)


def _num_key(stem: str) -> tuple[int, str]:
    return (int(stem), stem) if stem.isdigit() else (1 << 62, stem)


ADAPTER = ChulaRBC12Adapter
