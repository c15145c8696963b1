"""CBC (MahmudulAlam/Complete-Blood-Cell-Count-Dataset): a BCCD re-release, Pascal VOC per split.

Native layout (GitHub archive, commit ``ac6f9ff``; ``locate`` accepts up to two levels above)::

    Complete-Blood-Cell-Count-Dataset-<sha>/
        Training/{Images,Annotations}/     300 images (README)
        Validation/{Images,Annotations}/   60 images, a SUBSET of Training (README)
        Testing/{Images,Annotations}/      60 images
    Images:      BloodImage_XXXXX.jpg, 640x480 JPEG (BCCD's files byte for byte)
    Annotations: BloodImage_XXXXX.xml, VOC, integer xmin ymin xmax ymax, names RBC / WBC / Platelets

Conventions and quirks handled (evidence: research note datasets-detection.md §17c and §4 (BCCD),
issue 20):

* Box convention: VOC 1-based inclusive, as BCCD (the XMLs are BCCD's; a 1-pixel box
  ``xmin == xmax`` is a 1-pixel box, not an empty one).
* The published split is the folder (``Training`` / ``Validation`` / ``Testing``).
* Validation inside training: the README says so. The adapter does not guess which copy wins:
  both are converted with their published split, and the corpus split policy
  (:mod:`unihema_data.integrity`) puts each byte-identical pair in one split and flags
  ``duplicate_of:`` / ``split_moved:``. While listing, the adapter counts how many Validation
  images have a Training file of the same name and size and reports it
  (``report.info["validation_in_training"]``); a pair whose annotations differ is flagged by the
  policy as a ``label_conflict``.
* The images are BCCD's: converting both sources into one ``OUT`` makes the policy mark the
  cross-source duplicates (nothing to do here).
* ``group_id`` is the BCCD image id (``BloodImage_XXXXX``), so copies share a group.

UNCONFIRMED (not verified on the native files; no real sample): the folder names' exact
spelling (checked: a missing ``Training/Images`` or ``Training/Annotations`` is a clear error),
whether the XMLs keep BCCD's ``<size>`` (checked against the image when present, skipped when
absent), and the "four images dropped" from BCCD (the counts are reported, never assumed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..formats import disk
from ..formats.voc import VocObject, write_voc
from . import _synthetic as syn
from .base import FakeSample, FakeTruth, _glob_any
from .families import VocAdapter

#: published split folders, in order
SPLIT_FOLDERS = ("Training", "Validation", "Testing")


class CBCAlamAdapter(VocAdapter):
    id = "cbc_alam"
    version = "2"
    markers = ("Training/Images", "Training/Annotations")
    required = ("Testing/Images", "Testing/Annotations")
    images_dir = "Images"
    annotations_dir = "Annotations"
    image_suffixes = (".jpg", ".jpeg", ".png")

    def signature(self, path: Path) -> bool:
        """At least one ``BloodImage_*.xml`` in ``Training/Annotations`` (tells CBC from other
        per-split VOC trees)."""
        return _glob_any(path, "Training/Annotations/BloodImage_*.xml")

    def read_splits(self, root: Path) -> dict[str, str]:
        return {}  # the split is the folder; there are no split lists

    def voc_folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [(s, root / s / self.images_dir, root / s / self.annotations_dir)
                for s in SPLIT_FOLDERS if (root / s).is_dir()]

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        train = root / "Training" / self.images_dir
        val = root / "Validation" / self.images_dir
        if not val.is_dir():
            self.report.info["validation_in_training"] = "no Validation folder"
            return
        sizes = {p.name: p.stat().st_size for p in disk.list_files(train, self.image_suffixes)}
        vals = disk.list_files(val, self.image_suffixes)
        same = sum(1 for p in vals if sizes.get(p.name) == p.stat().st_size)
        self.report.info["validation_in_training"] = (
            f"{same} of {len(vals)} Validation images have a Training file of the same name and size "
            "(README: validation is a subset of training); the split policy keeps each copy pair in one split")

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/Complete-Blood-Cell-Count-Dataset-master/{Training,Validation,Testing}/``
        with Validation images that are byte-identical copies of Training ones (same XML), a
        1-pixel box, boxes touching both image corners and non-contiguous BCCD ids."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "Complete-Blood-Cell-Count-Dataset-master"
        W, H = 640, 480
        names = {"wbc": "WBC", "rbc": "RBC", "platelet": "Platelets"}
        plan = {"Training": [0, 1, 3, 7, 11, 338], "Validation": [1, 7], "Testing": [20, 24]}
        written: dict[int, tuple[bytes, list, list]] = {}
        truth: dict[str, FakeSample] = {}
        for split, ids in plan.items():
            for d in (self.images_dir, self.annotations_dir):
                (root / split / d).mkdir(parents=True, exist_ok=True)
            for k, i in enumerate(ids):
                stem = f"BloodImage_{i:05d}"
                if i not in written:
                    kinds = ["wbc"] + ["rbc"] * int(rng.integers(2, 5)) + ["platelet"]
                    boxes = syn.random_boxes(rng, W, H, len(kinds), lo=10, hi=120)
                    if i == 0:
                        boxes[0] = [0, 0, 90, 80]             # VOC xmin = ymin = 1
                        boxes[-1] = [W - 30, H - 25, 30, 25]  # VOC xmax = 640, ymax = 480
                    if i == 338:
                        boxes[-1] = [503, 336, 1, 1]          # xmin == xmax (BCCD's real quirk)
                    data = syn.encode(syn.smear(W, H, list(zip(boxes, kinds)), seed * 1000 + i), "JPEG", quality=90)
                    written[i] = (data, boxes, kinds)
                data, boxes, kinds = written[i]
                (root / split / self.images_dir / f"{stem}.jpg").write_bytes(data)
                objs = [VocObject(names[kd], (x + 1, y + 1, x + w, y + h)) for (x, y, w, h), kd in zip(boxes, kinds)]
                write_voc(root / split / self.annotations_dir / f"{stem}.xml", f"{stem}.jpg", W, H, objs)
                rel = f"{split}/{self.images_dir}/{stem}.jpg"
                truth[rel] = FakeSample(rel_path=rel, boxes=[[float(v) for v in b] for b in boxes],
                                        categories=[names[kd] for kd in kinds], source_split=split, group_id=stem)
        return FakeTruth(root=root, samples=truth)


ADAPTER = CBCAlamAdapter
