"""Shared base of the Makerere AI Lab microscopy sets (air.ug/microscopy_dataset, Quinn et al.).

Native layouts (zips from ``https://air.ug/static/images/downloads/``; evidence: research note
datasets-detection.md §9, dataset-ninja's ``src/convert.py``)::

    plasmodium-images/images/plasmodium-NNNN.jpg + plasmodium-images/annotation/plasmodium-NNNN.xml
    plasmodium-phonecamera/plasmodium-phone-NNNN.jpg + .xml          (side by side)
    tuberculosis-phonecamera/<name>.jpg + .xml                       (side by side)

Conventions and quirks handled:

* VOC-like XML with **float** coordinates and a non-standard extra child in ``<object>`` (the
  ``<bndbox>`` is the 6th child in plasmodium-images, the 5th in the phone sets): read by tag
  name, never by position (:func:`unihema_data.formats.voc.parse_voc`).
* Corners are taken as continuous pixel corners (:attr:`BoxFormat.XYXY`). UNCONFIRMED: the
  authors' evaluation script rounds them and clamps the minimum to 1 (a VOC habit); the
  difference is below one pixel.
* Object names: ``person`` (sic) marks parasites in plasmodium-images, ``plasmodium`` in
  plasmodium-phonecamera, ``TBbacillus`` in tuberculosis-phonecamera (alias tables per source).
* Images without objects (about a quarter over the four zips): converted as images without
  objects, their count reported by the core.
* ``<status><bad>``: a per-image "bad image" mark used by the authors' evaluation script. Its
  value format is UNCONFIRMED: anything but empty / ``0`` / ``false`` / ``no`` marks the row
  ``bad_image`` in ``qc_flags`` and is reported (``flagged``); the image is still converted.
* ``<filename>`` not naming the XML's image is reported (``flagged``), not fatal (UNCONFIRMED how
  the authors' tool wrote it); ``<size>`` is checked against the image when present.
* No published split, no slide ids in the release: grouped split by image.

Which layout and which object names a source uses is recognised by content (``signature``:
the first XML files naming the source's class), so the three sets never take each other's folders.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..boxes import BoxFormat
from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import VocAdapter, VocRecord

_NOT_BAD = {"", "0", "false", "no"}


class MakerereAdapter(VocAdapter):
    box_format = BoxFormat.XYXY
    image_suffixes = (".jpg", ".jpeg", ".png")
    filename_mismatch = "flag"
    #: the source's object name (``signature`` looks for it)
    object_name: ClassVar[str] = ""
    #: images and XMLs in one folder (the phone sets) or in ``images/`` + ``annotation/``
    side_by_side: ClassVar[bool] = True
    #: file-name prefix of the fake
    fake_prefix: ClassVar[str] = ""
    fake_top: ClassVar[str] = ""

    def signature(self, path: Path) -> bool:
        folder = path if self.side_by_side else path / "annotation"
        needle = f"<name>{self.object_name}</name>".encode()
        try:
            xmls = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xml" and p.is_file())[:50]
        except OSError:
            return False
        for x in xmls:
            try:
                if needle in x.read_bytes()[:200_000]:
                    return True
            except OSError:
                continue
        return False

    def read_splits(self, root: Path) -> dict[str, str]:
        return {}

    def voc_folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        if self.side_by_side:
            return [("", root, root)]
        return [("", root / "images", root / "annotation")]

    def parse(self, rec: VocRecord):
        s = super().parse(rec)
        try:
            bad = (ET.fromstring(disk.read_bytes(rec.xml, "VOC XML file")).findtext("status/bad") or "").strip()
        except ET.ParseError:  # parse_voc above already refused an unreadable file
            bad = ""
        if bad.lower() not in _NOT_BAD:
            s.qc_flags.append("bad_image")
            s.notes.append(("flagged", rec.rel_path, f"<status><bad>{bad}</bad>: marked bad by the authors"))
        return s

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes the zip's top folder with float corners, the extra ``<object>`` child before
        ``<bndbox>``, an image without objects, one ``<status><bad>1</bad>`` image and a box
        touching the image corner."""
        rng = np.random.default_rng(seed)
        root = Path(out) / self.fake_top
        idir, adir = (root, root) if self.side_by_side else (root / "images", root / "annotation")
        idir.mkdir(parents=True, exist_ok=True)
        adir.mkdir(parents=True, exist_ok=True)
        W, H = 512, 384
        truth: dict[str, FakeSample] = {}
        for k in range(1, 8):
            stem = f"{self.fake_prefix}{k:04d}"
            n = 0 if k == 3 else int(rng.integers(1, 5))
            boxes = [[float(round(v + rng.uniform(0, 1), 3)) for v in b] for b in syn.random_boxes(rng, W, H, n, lo=10, hi=40)]
            for b in boxes:  # keep float corners inside the image
                b[2] = min(b[2], W - b[0])
                b[3] = min(b[3], H - b[1])
            if k == 1 and boxes:
                boxes[0] = [0.0, 0.0, 21.5, 17.25]
            im = syn.smear(W, H, [(b, "parasite") for b in boxes], seed * 100 + k)
            (idir / f"{stem}.jpg").write_bytes(syn.encode(im, "JPEG", quality=90))
            objs = "".join(
                f"<object><name>{self.object_name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                f"<difficult>0</difficult>{'<extra>0</extra>' if not self.side_by_side else ''}"
                f"<bndbox><xmin>{x!r}</xmin><ymin>{y!r}</ymin><xmax>{x + w!r}</xmax><ymax>{y + h!r}</ymax></bndbox></object>"
                for x, y, w, h in boxes)
            status = f"<status><bad>{1 if k == 5 else 0}</bad></status>"
            (adir / f"{stem}.xml").write_text(
                f"<annotation><folder>x</folder><filename>{stem}.jpg</filename>{status}"
                f"<size><width>{W}</width><height>{H}</height><depth>3</depth></size>{objs}</annotation>\n")
            rel = disk.rel(idir / f"{stem}.jpg", root)
            truth[rel] = FakeSample(rel_path=rel, boxes=[[x, y, w, h] for x, y, w, h in boxes],
                                    categories=[self.object_name] * n)
        return FakeTruth(root=root, samples=truth)
