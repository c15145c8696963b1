"""M5-Malaria (Sultani et al., CVPR 2022): malaria stages on two microscopes x three magnifications.

Native layout (``M5_Dataset`` from the authors' Google Drive folder; ``locate`` accepts up to two
levels above)::

    M5_Dataset/
        Images/{HCM,LCM}/{train,val,test}/{100x,400x,1000x}/<field>_<mag>.png
        Annotations/{HCM,LCM}/{train,val,test}/{100x,400x,1000x}/<field>_<mag>.xml   Pascal VOC
        Splits/{train,val,test}.txt   (optional; base names without the magnification suffix)

HCM / LCM = high- / low-cost microscope; the same field is imaged in all six domains, its file
name ending in the magnification (``Malaria_CM10_..._137.0_14.0_1000x.png``).

Conventions and quirks handled (evidence: research note datasets-detection.md §2, from the
authors' ``pascalToCoco.py`` and contents files; no real sample):

* Published split and domain come from the folders: ``source_split`` = ``train``/``val``/``test``,
  ``subset`` = ``H_1000x`` / ``L_400x`` ... (Uni-Hema's subset names), ``meta.microscope`` and
  ``meta.magnification`` per image. ``group_id`` is the field name without the magnification
  suffix, so the six images of one field never straddle two splits.
* Boxes: VOC ``xmin ymin xmax ymax`` integer pixels, taken as 1-based inclusive (the family
  convention; UNCONFIRMED for this source, the authors' converter uses them as 0-based
  ``[xmin, ymin, xmax - xmin, ymax - ymin]``, a 1-pixel difference).
* Boxes with ``xmax < xmin`` or ``ymax < ymin`` exist (the authors' converter skips them):
  dropped and reported as ``skipped``. ``xmax == xmin`` is a 1-pixel VOC box, kept (the core flags
  it).
* ``<filename>`` / ``<size>`` repeated in one XML: the first is used (as the authors' converter).
  ``<filename>`` with spaces inside: compared after removing whitespace; a name that still
  differs is reported (``flagged``), not an error, since the authors' tools ignore it.
* XMLs without objects: converted as images without parasites, reported (``flagged``).
* Class names ``gametocyte, schizont, trophozoite, ring``; the raw case is UNCONFIRMED (the
  authors lower-case): the alias lookup is case-insensitive.

UNCONFIRMED, detected at run time and reported in ``report.info``: which microscope /
magnification / split folders exist (``domains``) and whether split lists are present
(``split_lists``: not used, the folders are the split).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import VocAdapter, VocRecord

MICROSCOPES = ("HCM", "LCM")
SPLITS = ("train", "val", "test")
MAGNIFICATIONS = ("100x", "400x", "1000x")
_MAG_SUFFIX = re.compile(r"_(100|400|1000)x$")


class M5MalariaAdapter(VocAdapter):
    id = "m5_malaria"
    version = "2"
    markers = ("Images", "Annotations")
    images_dir = "Images"
    annotations_dir = "Annotations"
    image_suffixes = (".png", ".jpg", ".jpeg")
    filename_mismatch = "flag"
    inverted_boxes = "skip"

    def signature(self, path: Path) -> bool:
        """``Annotations/{HCM,LCM}/`` exists (tells M5 from flat VOC trees)."""
        return any((path / "Annotations" / m).is_dir() for m in MICROSCOPES)

    def read_splits(self, root: Path) -> dict[str, str]:
        return {}  # the folders are the split

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        found = [f"{m}/{s}/{g}" for m, s, g in self._domains(root)]
        self.report.info["domains"] = ", ".join(found) or "none"
        lists = sorted(disk.rel(p, root) for p in root.glob("Splits/*.txt")) + \
            sorted(disk.rel(p, root) for p in root.glob("Annotations/*/*/*.txt"))
        self.report.info["split_lists"] = (", ".join(lists) + " (not used: the folders give the split)") if lists else "none"

    def _domains(self, root: Path) -> list[tuple[str, str, str]]:
        return [(m, s, g) for m in MICROSCOPES for s in SPLITS for g in MAGNIFICATIONS
                if (root / self.annotations_dir / m / s / g).is_dir() or (root / self.images_dir / m / s / g).is_dir()]

    def voc_folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [(s, root / self.images_dir / m / s / g, root / self.annotations_dir / m / s / g)
                for m, s, g in self._domains(root)]

    def filename_stem(self, filename: str) -> str:
        return "".join(Path(filename.strip()).stem.split())

    def group_id(self, stem: str) -> str:
        return _MAG_SUFFIX.sub("", stem)

    def _domain(self, rec: VocRecord) -> tuple[str, str]:
        parts = rec.rel_path.split("/")  # Images/<microscope>/<split>/<magnification>/<file>
        return parts[1], parts[3]

    def subset(self, rec: VocRecord) -> str:
        m, g = self._domain(rec)
        return f"{m[0]}_{g}"

    def meta(self, rec: VocRecord) -> dict[str, str]:
        m, g = self._domain(rec)
        return {"microscope": {"HCM": "high-cost microscope (HCM)", "LCM": "low-cost microscope (LCM)"}[m],
                "magnification": g}

    def parse(self, rec: VocRecord):
        s = super().parse(rec)
        if not s.objects:
            s.notes.append(("flagged", rec.rel_path, "XML without objects: converted as an image without parasites"))
        return s

    def input_files(self, root: Path) -> Iterator[Path]:
        for _s, i, a in self.voc_folders(root):
            for folder in (a, i):
                if folder.is_dir():
                    yield from disk.list_files(folder)

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/M5_Dataset/`` with fields imaged on both microscopes at two magnifications
        (train and test), a capitalized class name, an inverted box (skipped), repeated
        ``<filename>``/``<size>``, a ``<filename>`` with a space inside, an XML without objects and
        ``Splits/*.txt`` lists."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "M5_Dataset"
        W, H = 320, 240
        stages = ["ring", "trophozoite", "schizont", "gametocyte"]
        fields = {"train": ["Malaria_CM10_14Jul2021122109_0001_137.0_14.0", "Malaria_CM10_14Jul2021122109_0002_140.5_14.0"],
                  "test": ["Malaria_CM3_15Jul2021101500_0007_12.0_88.5"]}
        truth: dict[str, FakeSample] = {}
        k = 0
        for split, names in fields.items():
            for field in names:
                for m in MICROSCOPES:
                    for g in ("400x", "1000x"):
                        k += 1
                        stem = f"{field}_{g}"
                        idir, adir = (root / d / m / split / g for d in (self.images_dir, self.annotations_dir))
                        idir.mkdir(parents=True, exist_ok=True)
                        adir.mkdir(parents=True, exist_ok=True)
                        n = 0 if (split == "test" and m == "LCM" and g == "400x") else int(rng.integers(1, 4))
                        kinds = [stages[(k + j) % 4] for j in range(n)]
                        boxes = syn.random_boxes(rng, W, H, n, lo=8, hi=40)
                        im = syn.smear(W, H, [(b, "parasite") for b in boxes], seed * 100 + k)
                        (idir / f"{stem}.png").write_bytes(syn.encode(im, "PNG"))
                        names_xml = [kd.capitalize() if k == 3 else kd for kd in kinds]
                        objs = [(nm, (x + 1, y + 1, x + w, y + h)) for nm, (x, y, w, h) in zip(names_xml, boxes)]
                        if k == 2:
                            objs.append(("ring", (50, 60, 40, 80)))  # xmax < xmin: skipped, reported
                        fname = f"{stem}.png" if k != 5 else f"{stem[:10]} {stem[10:]}.png"  # space inside
                        (adir / f"{stem}.xml").write_text(_voc_xml(fname, W, H, objs, repeat=k == 4))
                        rel = f"{self.images_dir}/{m}/{split}/{g}/{stem}.png"
                        truth[rel] = FakeSample(rel_path=rel, boxes=[[float(v) for v in b] for b in boxes],
                                                categories=names_xml, source_split=split, group_id=field)
        (root / "Splits").mkdir(exist_ok=True)
        for split, names in fields.items():
            (root / "Splits" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
        return FakeTruth(root=root, samples=truth)


def _voc_xml(filename: str, w: int, h: int, objs, repeat: bool = False) -> str:
    size = f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
    head = f"<filename>{filename}</filename>{size}"
    body = "".join(f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
                   f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                   for n, b in objs)
    return f"<annotation><folder>images</folder>{head}{head if repeat else ''}{body}</annotation>\n"


ADAPTER = M5MalariaAdapter
