"""Shared base of Roboflow Universe exports in COCO JSON (``raabin_wbc_det``, ``parasite_roboflow``).

Native layout (the zip Roboflow writes for "COCO JSON"; evidence: research note
datasets-detection.md §11 and §16, where the export format itself is general knowledge, so the
adapter checks each part at run time)::

    <export>/
        train/_annotations.coco.json + train/<images>
        valid/_annotations.coco.json + valid/<images>
        test/_annotations.coco.json  + test/<images>
        README.dataset.txt, README.roboflow.txt   (optional, not read)

Conventions and quirks handled:

* One COCO instances file per split folder, images next to it; the folder is the published split
  (``train`` / ``valid`` / ``test``). Which split folders exist is reported
  (``report.info["splits"]``); none at all is an error.
* Boxes are COCO ``[x, y, w, h]`` floats (:attr:`BoxFormat.XYWH`); ``segmentation: []`` means no
  mask. ``width``/``height`` are checked against each image (the family base).
* Roboflow adds a category for the project itself (id 0, e.g. ``{"name": "cells",
  "supercategory": "none"}``), the parent of the real classes. It is used by no annotation;
  the adapter reports it (``report.info["supercategory"]``). An annotation that does use it fails
  the conversion as an unmapped label (the alias tables do not list it).
* File names are ``<original stem>_<ext>.rf.<hash>.<ext>``: Roboflow's augmentations of one upload
  share the original stem, which becomes ``group_id``, so copies never straddle two splits. A
  name without ``.rf.`` keeps its own stem.
* ``signature``: an export is this source's when one of its category names is in the source's
  alias table, or when none is in another Roboflow source's table (an unexpected export is then
  taken and its unmapped names fail loudly instead of "not found").
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import CocoJsonAdapter, CocoRecord

SPLIT_DIRS = ("train", "valid", "test")
JSON_NAME = "_annotations.coco.json"
_RF = re.compile(r"^(?P<stem>.+)_(?:jpe?g|png|bmp|tiff?)\.rf\.[0-9a-fA-F]+$", re.IGNORECASE)
ROBOFLOW_SOURCES = ("raabin_wbc_det", "parasite_roboflow")


def original_stem(file_name: str) -> str:
    stem = Path(file_name).stem
    m = _RF.match(stem)
    return m.group("stem") if m else stem


class RoboflowCocoAdapter(CocoJsonAdapter):
    tasks = ("detection",)
    markers = (f"*/{JSON_NAME}",)
    #: fake: (native class names, image size, top folder)
    fake_classes: ClassVar[tuple[str, ...]] = ()
    fake_size: ClassVar[tuple[int, int]] = (416, 416)
    fake_top: ClassVar[str] = "export.coco"
    fake_supercategory: ClassVar[str] = "cells"

    def _splits(self, root: Path) -> dict[str, tuple[str, str]]:
        """Split folders with their JSON; a split folder without ``_annotations.coco.json`` is an
        error (a renamed or lost file must not drop a split silently)."""
        from ..errors import MissingInputError

        for s in SPLIT_DIRS:
            f = root / s / JSON_NAME
            if (root / s).is_dir() and not (f.exists() or f.is_symlink()):
                raise MissingInputError(f"{disk.show(f)} is missing (folder {s}/ has no COCO JSON)")
        # a dangling link counts as present: reading it then fails naming it (never a silent drop)
        return {s: (f"{s}/{JSON_NAME}", s) for s in SPLIT_DIRS
                if (root / s / JSON_NAME).exists() or (root / s / JSON_NAME).is_symlink()}

    def _names(self, path: Path) -> list[tuple[str, str]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
            return [(str(c.get("name", "")), str(c.get("supercategory", ""))) for c in data.get("categories", [])]
        except (OSError, ValueError, AttributeError):
            return []

    def signature(self, path: Path) -> bool:
        from ..taxonomy import load_taxonomy

        tax = load_taxonomy()

        def maps(sid: str, name: str) -> bool:
            try:
                tax.map_label(sid, name)
                return True
            except Exception:  # noqa: BLE001 - unmapped or unknown source
                return False

        files = [path / s / JSON_NAME for s in SPLIT_DIRS if (path / s / JSON_NAME).is_file()]
        names = [n for f in files[:1] for n, _ in self._names(f)]
        if any(maps(self.id, n) for n in names):
            return True
        others = [o for o in ROBOFLOW_SOURCES if o != self.id]
        return bool(files) and not any(maps(o, n) for o in others for n in names)

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.annotation_files = self._splits(root)
        if not self.annotation_files:
            from ..errors import MissingInputError

            raise MissingInputError(f"{self.id}: no {{train,valid,test}}/{JSON_NAME} under {disk.show(root)}")
        self.report.info["splits"] = ", ".join(self.annotation_files)
        first = root / next(iter(self.annotation_files.values()))[0]
        cats = self._names(first)
        supers = sorted({s for _, s in cats if s and s != "none"} & {n for n, _ in cats})
        if supers:
            self.report.info["supercategory"] = ", ".join(supers) + " (Roboflow project category, used by no annotation)"

    def records(self, root: Path) -> Iterator[CocoRecord]:
        if "annotation_files" not in self.__dict__:
            self.annotation_files = self._splits(root)
        for _json, idir in self.annotation_files.values():
            disk.refuse_case_collisions(disk.list_files(root / idir, disk.IMAGE_SUFFIXES))
        yield from super().records(root)

    def group_id(self, rec: CocoRecord) -> str:
        return original_stem(rec.rel_path.rsplit("/", 1)[-1])

    def input_files(self, root: Path) -> Iterator[Path]:
        for _split, (jf, idir) in sorted(self._splits(root).items()):
            yield from disk.list_files(root / idir)

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/<export>/{train,valid,test}/`` with Roboflow file names (two augmented
        copies of one upload in ``train``), the project supercategory (id 0), float boxes and
        an image without annotations."""
        rng = np.random.default_rng(seed)
        root = Path(out) / self.fake_top
        W, H = self.fake_size
        cats = [{"id": 0, "name": self.fake_supercategory, "supercategory": "none"}] + [
            {"id": i + 1, "name": n, "supercategory": self.fake_supercategory} for i, n in enumerate(self.fake_classes)]
        truth: dict[str, FakeSample] = {}
        plan = {"train": ["BloodImage_0001", "BloodImage_0001", "BloodImage_0002", "IMG_20210304"],
                "valid": ["BloodImage_0007"], "test": ["BloodImage_0010", "BloodImage_0011"]}
        k = 0
        for split, stems in plan.items():
            (root / split).mkdir(parents=True, exist_ok=True)
            images, anns = [], []
            for j, stem in enumerate(stems):
                k += 1
                name = f"{stem}_jpg.rf.{int(rng.integers(1 << 62)):032x}.jpg"
                n = 0 if (split == "test" and j == 1) else int(rng.integers(1, 5))
                kinds = [int(rng.integers(1, len(self.fake_classes) + 1)) for _ in range(n)]
                boxes = [[float(v) + 0.5 for v in b] for b in syn.random_boxes(rng, W - 1, H - 1, n, lo=20, hi=90)]
                im = syn.smear(W, H, [(b, "wbc") for b in boxes], seed * 100 + k)
                (root / split / name).write_bytes(syn.encode(im, "JPEG", quality=90))
                images.append({"id": j, "license": 1, "file_name": name, "height": H, "width": W,
                               "date_captured": "2024-01-01T00:00:00+00:00"})
                for b, c in zip(boxes, kinds):
                    anns.append({"id": len(anns), "image_id": j, "category_id": c, "bbox": b, "area": b[2] * b[3],
                                 "segmentation": [], "iscrowd": 0})
                rel = f"{split}/{name}"
                truth[rel] = FakeSample(rel_path=rel, boxes=boxes, categories=[cats[c]["name"] for c in kinds],
                                        source_split=split, group_id=stem)
            doc = {"info": {"description": "Exported from roboflow.com"}, "licenses": [{"id": 1, "name": "CC BY 4.0"}],
                   "categories": cats, "images": images, "annotations": anns}
            (root / split / JSON_NAME).write_text(json.dumps(doc))
        (root / "README.roboflow.txt").write_text("This dataset was exported via roboflow.com\n")
        return FakeTruth(root=root, samples=truth)
