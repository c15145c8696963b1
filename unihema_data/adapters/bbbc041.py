"""BBBC041 (P. vivax malaria blood smears, Broad Bioimage Benchmark Collection): boxes in JSON.

Native layout (``malaria.zip``; ``locate`` accepts up to two levels above)::

    malaria/
        images/<uuid>.png | <uuid>.jpg    training PNG (1600x1200, UNCONFIRMED), test JPEG 1944x1383
        training.json                      1208 images (official training split)
        test.json                          120 images (official test split)

Each JSON file is a **list** of::

    {"image": {"checksum": "<32 hex>", "pathname": "/images/<uuid>.jpg",
               "shape": {"r": <height>, "c": <width>, "channels": 3}},
     "objects": [{"bounding_box": {"minimum": {"r": y0, "c": x0}, "maximum": {"r": y1, "c": x1}},
                  "category": "red blood cell"}, ...]}

Conventions and quirks handled (evidence: research note datasets-detection.md §10, verified on
``test.json`` of the real sample, 120 images / 5922 objects):

* ``r`` is the row (y), ``c`` the column (x): the adapter swaps them into ``x0 y0 x1 y1``.
* Absolute 0-based pixels, ``maximum`` **exclusive**: in test.json a maximum equals the image size
  (``r == 1383`` eight times, ``c == 1944`` twice) and a minimum is 0 (27 / 25 times), so the
  boxes are continuous corners, :attr:`BoxFormat.XYXY`. A box past the image is clipped and
  flagged by the core; a box with ``maximum <= minimum`` is kept and flagged
  ``degenerate_native_box``.
* ``pathname`` has a leading ``/`` and is relative to the folder holding the JSON files.
* ``shape`` is checked against the image header (a mismatch is an error naming the JSON file and
  the image: every box would cover the wrong region).
* An object without ``bounding_box`` (dataset-ninja's converter guards for it; none in test.json)
  is skipped and reported; an object without ``category`` is an error.
* ``difficult`` is a pseudo-class (cells the annotators could not classify), mapped to
  ``not_identifiable``. Only non-RBC objects were expertly annotated (nothing to do here).
* Split: ``training.json`` -> ``training``, ``test.json`` -> ``test`` (published).
* An image on disk that no JSON lists is reported (``orphaned``); a pathname listed twice is an
  error naming both JSON entries.

UNCONFIRMED, detected at run time: ``checksum`` is assumed to be the MD5 of the image file; the
workers compute it and flag a mismatch (``flagged``: "checksum ... does not match"); the number of
JSON files present is reported (``report.info["annotation_files"]``). The training images' size
is read from each image, never assumed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..boxes import BoxFormat
from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..formats.disk import show
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawObject, RawSample

#: JSON file -> published split
SPLIT_FILES = (("training.json", "training"), ("test.json", "test"))


@dataclass(frozen=True)
class BBBCRecord:
    rel_path: str
    image: Path
    split: str
    json_file: str
    index: int
    height: int
    width: int
    checksum: str
    objects: tuple[tuple[str, tuple[float, float, float, float]], ...]


class BBBC041Adapter(Adapter):
    id = "bbbc041"
    version = "2"
    tasks = ("detection",)
    box_format = BoxFormat.XYXY
    markers = ("images", "*.json")
    required = ("training.json", "test.json")

    def signature(self, path: Path) -> bool:
        """``training.json`` or ``test.json`` starts as a list of ``{"image": ...}`` records."""
        for name, _ in SPLIT_FILES:
            f = path / name
            if f.is_file():
                try:
                    with open(f, "rb") as fh:
                        head = fh.read(64).decode("utf-8", "replace")
                except OSError:
                    continue
                if head.lstrip().startswith("[") and '"image"' in head.replace(" ", ""):
                    return True
        return False

    def _load(self, path: Path) -> list:
        try:
            data = json.loads(disk.read_text(path, "BBBC041 JSON file"))
        except json.JSONDecodeError as e:
            raise CorruptInputError(f"{show(path)}: not valid JSON ({e})") from None
        if not isinstance(data, list):
            raise CorruptInputError(f"{show(path)}: expected a JSON list of image records, got {type(data).__name__}")
        return data

    def records(self, root: Path) -> Iterator[BBBCRecord]:
        files = disk.list_files(root / "images", disk.IMAGE_SUFFIXES, self.report, root, "an image file")
        disk.refuse_case_collisions(files)
        on_disk = {disk.rel(p, root): p for p in files}
        seen: dict[str, str] = {}
        present = []
        for name, split in SPLIT_FILES:
            path = root / name
            if not path.exists() and not path.is_symlink():
                continue
            present.append(name)
            for i, entry in enumerate(self._load(path)):
                where = f"{show(path)}: entry {i}"
                rel, h, w, checksum = self._image_of(entry, where)
                if rel in seen:
                    raise CorruptInputError(f"{where}: {rel} is already listed ({seen[rel]})")
                seen[rel] = f"{name} entry {i}"
                if rel not in on_disk:
                    raise MissingInputError(f"{where}: image {rel} is missing")
                objs = []
                for k, ob in enumerate(entry.get("objects") or []):
                    if not isinstance(ob, dict) or not isinstance(ob.get("category"), str):
                        raise CorruptInputError(f"{where}: object {k} has no category string")
                    bb = ob.get("bounding_box")
                    if bb is None:
                        self.report.skip(f"{name}:{i}:{k}", f"object {k} ({ob['category']}) of {rel} has no bounding_box")
                        continue
                    try:
                        box = (float(bb["minimum"]["c"]), float(bb["minimum"]["r"]),
                               float(bb["maximum"]["c"]), float(bb["maximum"]["r"]))
                    except (KeyError, TypeError, ValueError):
                        raise CorruptInputError(f"{where}: object {k} has a malformed bounding_box {bb!r}"[:300]) from None
                    objs.append((ob["category"], box))
                yield BBBCRecord(rel, on_disk[rel], split, show(path), i, h, w, checksum, tuple(objs))
        for rel in sorted(set(on_disk) - set(seen)):
            self.report.orphan(rel, "image listed in no JSON file (not converted)")
        self.report.info["annotation_files"] = ", ".join(present)

    @staticmethod
    def _image_of(entry: Any, where: str) -> tuple[str, int, int, str]:
        try:
            im = entry["image"]
            pathname = im["pathname"]
            h, w = int(im["shape"]["r"]), int(im["shape"]["c"])
        except (KeyError, TypeError, ValueError):
            raise CorruptInputError(f"{where}: expected image.pathname and image.shape.r/c") from None
        if not isinstance(pathname, str) or not pathname.strip("/") or ".." in pathname.split("/"):
            raise CorruptInputError(f"{where}: bad image pathname {pathname!r}")
        return pathname.lstrip("/"), h, w, str(im.get("checksum", ""))

    def parse(self, rec: BBBCRecord) -> RawSample:
        w, h = disk.image_size(rec.image)
        if (w, h) != (rec.width, rec.height):
            raise CorruptInputError(f"{rec.json_file}: entry {rec.index}: shape says {rec.width}x{rec.height} "
                                    f"(c x r) but image {rec.rel_path} is {w}x{h}")
        notes = []
        if rec.checksum:
            md5 = hashlib.md5(disk.read_bytes(rec.image, "image"), usedforsecurity=False).hexdigest()
            if md5 != rec.checksum.lower():
                notes.append(("flagged", rec.rel_path, f"checksum {rec.checksum} does not match the file's MD5 {md5}"))
        return RawSample(rel_path=rec.rel_path, image_path=rec.image, source_split=rec.split,
                         objects=[RawObject(c, b) for c, b in rec.objects],
                         annotation_file=f"{rec.json_file} entry {rec.index}", notes=notes)

    def input_files(self, root: Path) -> Iterator[Path]:
        for name, _ in SPLIT_FILES:
            if (root / name).exists():
                yield root / name
        yield from disk.list_files(root / "images")

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/malaria/`` with PNG training and JPEG test images (small sizes), boxes whose
        maximum equals the image size and whose minimum is 0, an object without ``bounding_box``
        (reported), an image no JSON lists, every category, and MD5 checksums."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "malaria"
        (root / "images").mkdir(parents=True, exist_ok=True)
        cats = ["red blood cell", "leukocyte", "ring", "trophozoite", "schizont", "gametocyte", "difficult"]
        truth: dict[str, FakeSample] = {}
        for name, split in SPLIT_FILES:
            entries = []
            n_img, (W, H), ext = (5, (400, 300), "png") if split == "training" else (3, (486, 346), "jpg")
            for k in range(n_img):
                uid = f"{int(rng.integers(1 << 32)):08x}-{k:04x}-4{k:03x}-8000-{int(rng.integers(1 << 48)):012x}"
                kinds = [cats[(k + j) % len(cats)] for j in range(int(rng.integers(2, 6)))]
                boxes = syn.random_boxes(rng, W, H, len(kinds), lo=12, hi=60)
                if k == 0:
                    boxes[0] = [W - 40, H - 30, 40, 30]  # maximum == image size (exclusive end)
                    boxes[-1] = [0, 0, 25, 20]           # minimum == 0
                im = syn.smear(W, H, [(b, "parasite" if c != "red blood cell" else "rbc") for b, c in zip(boxes, kinds)],
                               seed * 100 + k + (50 if split == "test" else 0))
                data = syn.encode(im, "PNG") if ext == "png" else syn.encode(im, "JPEG", quality=90)
                rel = f"images/{uid}.{ext}"
                (root / rel).write_bytes(data)
                objs = [{"bounding_box": {"minimum": {"r": y, "c": x}, "maximum": {"r": y + bh, "c": x + bw}}, "category": c}
                        for (x, y, bw, bh), c in zip(boxes, kinds)]
                if k == 1:
                    objs.append({"category": "red blood cell"})  # no bounding_box: reported, skipped
                entries.append({"image": {"checksum": hashlib.md5(data).hexdigest(), "pathname": f"/{rel}",
                                          "shape": {"r": H, "c": W, "channels": 3}}, "objects": objs})
                truth[rel] = FakeSample(rel_path=rel, boxes=[[float(v) for v in b] for b in boxes],
                                        categories=kinds, source_split=split)
            (root / name).write_text(json.dumps(entries))
        stray = syn.smear(400, 300, [], seed + 999)
        (root / "images" / "not-in-any-json.png").write_bytes(syn.encode(stray, "PNG"))
        return FakeTruth(root=root, samples=truth)


ADAPTER = BBBC041Adapter
