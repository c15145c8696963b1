"""RV-PBS (Pal et al. 2024, Expert Systems with Applications, S0957417424005268; GitHub
``Jimut123/RV-PBS``): 4032x3024 smartphone photos of Leishman-stained peripheral blood smears
(1000x), one WBC per photo outlined by a CVAT polygon, ten WBC classes.

Native layout (GitHub; ``locate`` accepts up to two levels above the root)::

    <root>/<FOLDER>/annotations.xml      CVAT for images 1.1: <image name width height><polygon label points>
    <root>/<FOLDER>/IMG_<nnnn>.jpg
    <FOLDER>: BAND CELLS  BASOPHILS  BLAST CELLS  EOSINOPHILS  LYMPHOCYTES  METAMYELOCYTES
              MONOCYTES  MYELOCYTE (singular)  NEUTROPHILS  PROMYELOCYTES

Two records per photo and polygon, all in one split (``group_id`` = the photo):
* the **field of view** ``<FOLDER>/IMG_nnnn.jpg``: every polygon as an object (category = the
  polygon ``label``, mask rasterized from the polygon, box derived from the mask), tasks
  detection + segmentation;
* one **single cell** per polygon ``<FOLDER>/IMG_nnnn_cell<k>.png``: the polygon's bounding box
  (``floor``/``ceil`` of the vertices, clipped to the image) cropped from the photo in the worker
  (:class:`~unihema_data.refs.ImageCrop`, lossless PNG), label = the polygon ``label``
  (``sources.rv_pbs.labels``), ``granularity = single_cell``.

Conventions and quirks:
* The class comes from the polygon ``label``, not from the folder (research note). A polygon
  whose class differs from its folder's (``sources.rv_pbs.folders``) is kept and flagged
  ``folder_class_differs:<FOLDER>`` on its cell record.
* ``bg`` polygons (taxonomy ``ignore``) are not objects and get no cell record; their count is
  reported (``report.info["bg_polygons"]``).
* The XML's ``width``/``height`` must equal the photo's size (family check, error naming both).
* A photo listed in an XML but absent is an error naming it; a photo in a folder but not in its
  XML, and any other file (the stray ``BASOPHILS/l``), are reported.
* No official split (grouped fallback by photo). The Figshare package layout (with derived
  ``classification_data`` and ``PBC_8_DA`` sets) is UNCONFIRMED and not handled.

Evidence: research note ``datasets-classification.md`` §8 (folder list, CVAT 1.1 format and the
11 labels read from ``RV-PBS@1d9b6e9:BASOPHILS/annotations.xml``). No real sample in the shared
folder (the repository is 638 MB).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..refs import ImageCrop
from ..taxonomy import load_taxonomy
from . import _synthetic as syn
from .base import FakeSample, FakeTruth, RawSample
from .families import CvatRecord, CvatXmlAdapter

FOLDERS = ("BAND CELLS", "BASOPHILS", "BLAST CELLS", "EOSINOPHILS", "LYMPHOCYTES", "METAMYELOCYTES", "MONOCYTES",
           "MYELOCYTE", "NEUTROPHILS", "PROMYELOCYTES")
XML = "annotations.xml"
BG = "bg"


@dataclass(frozen=True)
class CellRecord:
    rel_path: str
    image: Path
    box: tuple[int, int, int, int]
    label: str
    group: str
    folder: str
    xml: str


def polygon_box(coords, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer half-open crop box ``(x0, y0, x1, y1)`` around polygon vertices, clipped."""
    xs, ys = coords[0::2], coords[1::2]
    x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
    x1, y1 = min(width, math.ceil(max(xs))), min(height, math.ceil(max(ys)))
    return x0, y0, x1, y1


class RvPbsAdapter(CvatXmlAdapter):
    id = "rv_pbs"
    version = "1"
    tasks = ("classification", "detection", "segmentation")
    markers = (f"*/{XML}",)
    layout_hint = "class folders (BASOPHILS/ ...) each with annotations.xml"

    def signature(self, path: Path) -> bool:
        return any((path / f / XML).is_file() for f in FOLDERS)

    def records(self, root: Path) -> Iterator:
        dirs, files = disk.list_dir(root, self.report, root)
        for f in files:
            self.report.skip(disk.rel(f, root), "file outside a class folder")
        bg = 0
        found = False
        for folder in dirs:
            if folder.name not in FOLDERS:
                raise CorruptInputError(f"{disk.show(folder)}: unknown class folder {disk.show(folder.name)!r} "
                                        f"(expected one of {', '.join(FOLDERS)})")
            xml = folder / XML
            if not disk.present(xml):  # a FIFO / dangling link is present: read_cvat refuses it naming it
                raise MissingInputError(f"{disk.show(folder)}: {XML} is missing")
            _, present = disk.list_dir(folder, self.report, root)
            listed = set()
            for rec in self.read_cvat(root, xml, folder):
                if not (rec.image.exists() or rec.image.is_symlink()):
                    raise MissingInputError(f"{disk.show(xml)}: image {disk.show(rec.image.name)} is missing")
                disk.require_regular(rec.image, "image file")  # a FIFO / dangling link named as such
                listed.add(rec.image.name)
                shapes = tuple(s for s in rec.shapes if s[1] != BG)
                bg += len(rec.shapes) - len(shapes)
                found = True
                yield CvatRecord(rec.rel_path, rec.image, rec.width, rec.height, rec.xml, shapes)
                stem = rec.rel_path.rsplit(".", 1)[0]
                for k, (_kind, label, coords) in enumerate(shapes):
                    box = polygon_box(coords, rec.width or 10**9, rec.height or 10**9)
                    if box[0] >= box[2] or box[1] >= box[3]:
                        raise CorruptInputError(f"{disk.show(xml)}: image {rec.image.name}: polygon {k} ({label}) has no area")
                    yield CellRecord(f"{stem}_cell{k}.png", rec.image, box, label, rec.rel_path, folder.name, rec.xml)
            for f in present:
                if f.name != XML and f.name not in listed:
                    if f.suffix.lower() in disk.IMAGE_SUFFIXES:
                        self.report.orphan(disk.rel(f, root), f"image not listed in {XML} (not converted)")
                    else:
                        self.report.skip(disk.rel(f, root), "not an image or annotation file")
        if not found:
            raise MissingInputError(f"{self.id}: no annotated images under {disk.show(root)}")
        self.report.info["bg_polygons"] = f"{bg} 'bg' polygon(s) ignored"

    def group_id(self, rec: CvatRecord) -> str:
        return rec.rel_path

    def meta(self, rec: CvatRecord) -> dict[str, str]:
        return {"granularity": "field_of_view"}

    def parse(self, rec) -> RawSample:
        if isinstance(rec, CvatRecord):
            return super().parse(rec)
        tax = load_taxonomy()
        flags = []
        if tax.map_label(self.id, rec.label, file=rec.xml) != tax.map_label(self.id, rec.folder, file=rec.xml, table="folders"):
            flags.append(f"folder_class_differs:{rec.folder}")
        return RawSample(rel_path=rec.rel_path, image_path=ImageCrop(rec.image, rec.box), label=rec.label,
                         group_id=rec.group, annotation_file=rec.xml, qc_flags=flags, meta={"granularity": "single_cell"})

    def input_files(self, root: Path) -> Iterator[Path]:
        yield from disk.walk_files(root)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/RV-PBS-main/{BASOPHILS,NEUTROPHILS}/`` with JPEG photos (scaled down),
        one CVAT 1.1 ``annotations.xml`` per folder with polygons (a ``bg`` polygon, a ``band
        cell`` polygon inside ``NEUTROPHILS/``, a polygon touching the border), a photo missing
        from its XML and the stray ``BASOPHILS/l`` file."""
        from pycocotools import mask as mask_utils

        rng = np.random.default_rng(seed)
        root = Path(out) / "RV-PBS-main"
        W, H = 160, 120
        plan = {"BASOPHILS": [("IMG_2789.jpg", [("basophil", (40, 30, 40, 36)), ("bg", (0, 0, 30, 20))]),
                              ("IMG_2799.jpg", [("basophil", (120, 80, 50, 50))])],
                "NEUTROPHILS": [("IMG_3001.jpg", [("neutrophil", (20, 20, 44, 40)), ("band cell", (90, 40, 40, 44))])]}
        truth: dict[str, FakeSample] = {}
        k = 0
        for folder, images in plan.items():
            (root / folder).mkdir(parents=True)
            xml = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>"]
            for i, (name, cells) in enumerate(images):
                field = [([float(v) for v in b], "rbc") for b in syn.random_boxes(rng, W, H, 5, 10, 20)]
                im = syn.smear(W, H, field + [(list(b), "wbc") for lab, b in cells if lab != BG], seed * 100 + k)
                (root / folder / name).write_bytes(syn.encode(im, "JPEG", quality=92))
                k += 1
                xml.append(f'  <image id="{i}" name="{name}" width="{W}" height="{H}">')
                fs = FakeSample(f"{folder}/{name}", group_id=f"{folder}/{name}")
                n = 0
                for lab, (x, y, w, h) in cells:
                    # an octagon inside the box, vertices at fractional coordinates (one may leave the image)
                    cx, cy = x + w / 2 + 0.25, y + h / 2 + 0.25
                    pts = [(cx + w / 2 * math.cos(a), cy + h / 2 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 9)[:-1]]
                    coords = [round(v, 2) for p in pts for v in p]
                    xml.append(f'    <polygon label="{lab}" occluded="0" source="manual" points="'
                               + ";".join(f"{coords[j]:.2f},{coords[j + 1]:.2f}" for j in range(0, len(coords), 2))
                               + '" z_order="0">\n    </polygon>')
                    if lab == BG:
                        continue
                    rle = mask_utils.frPyObjects([coords], H, W)[0]
                    fs.categories.append(lab)
                    fs.boxes.append([float(v) for v in mask_utils.toBbox(rle)])
                    fs.object_masks.append(mask_utils.decode(rle))
                    rel = f"{folder}/{name.rsplit('.', 1)[0]}_cell{n}.png"
                    truth[rel] = FakeSample(rel, label=lab, group_id=f"{folder}/{name}")
                    n += 1
                xml.append("  </image>")
                truth[fs.rel_path] = fs
            xml.append("</annotations>")
            (root / folder / XML).write_text("\n".join(xml) + "\n", encoding="utf-8")
        (root / "BASOPHILS" / "IMG_9999.jpg").write_bytes(syn.encode(syn.smear(W, H, [], seed + 5), "JPEG"))
        (root / "BASOPHILS" / "l").write_text("\n")
        return FakeTruth(root=root, samples=truth)


ADAPTER = RvPbsAdapter
