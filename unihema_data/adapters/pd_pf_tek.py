"""PD-PF thin-film malaria images (Tek, Dempster, Kale; Malaria Journal 2009 / CVIU 2010): "655 images of
thin smears with bounding boxes around parasites" (Google Drive link of the Awesome Malaria Parasite
Imaging Datasets list).

Nothing else about the release is known (research note datasets-detection.md section 8: format, class
names, splits and licence are all UNCONFIRMED; no public loader exists). The adapter therefore does
not assume a format: it recognises the three box formats a 655-image detection set is published in and
says which one it found (``report.info["layout"]``); anything else is an error listing what was
expected. Each variant is read by the corpus's family reader, with its checks:

``voc``   ``Annotations/<stem>.xml`` + ``JPEGImages/<stem>.<ext>`` (+ optional ``ImageSets/Main/<split>.txt``):
          :class:`~unihema_data.adapters.families.VocAdapter` (1-based inclusive corners, ``<size>``
          checked against the image, ``<filename>`` checked).
``yolo``  ``images/[<split>/]`` + ``labels/[<split>/]`` with ``classes.txt`` or ``data.yaml``:
          :class:`~unihema_data.adapters.families.YoloAdapter` (normalized centre/size, 5 columns).
``coco``  one COCO JSON (``*.json`` at the root or in ``annotations/``) whose ``file_name`` values
          resolve under the JSON's folder, ``images/`` or the root:
          :class:`~unihema_data.adapters.families.CocoJsonAdapter` (absolute ``[x, y, w, h]``).

Two variants in one folder are an error naming both (which one holds the boxes cannot be told).
Class names are the source's own strings; only ``parasite`` (any case) is in the alias table
(-> ``plasmodium_falciparum``: PD-PF is a P. falciparum set, UNCONFIRMED), so any other name stops
the conversion naming it, to be added to ``sources.pd_pf_tek`` once the real release is read. No
published split is assumed beyond what the variant carries; ``group_id`` = the image.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from ..boxes import BoxFormat
from ..errors import CorruptInputError, MissingInputError
from ..formats import disk, yolo
from ..formats.voc import VocObject, write_voc
from . import _synthetic as syn
from .base import LOCATE_DEPTH, Adapter, AmbiguousLayoutError, FakeSample, FakeTruth, RawSample, _glob_any
from .families import CocoJsonAdapter, VocAdapter, YoloAdapter

LAYOUTS = {"voc": "Pascal VOC (Annotations/*.xml + JPEGImages/)",
           "yolo": "YOLO (images/ + labels/ + classes.txt or data.yaml)",
           "coco": "COCO JSON (*.json or annotations/*.json with its images)"}
EXPECTED = "; ".join(LAYOUTS.values())


class _Voc(VocAdapter):
    id = "pd_pf_tek"
    markers = ("Annotations", "JPEGImages")

    def signature(self, path: Path) -> bool:
        return _glob_any(path, "Annotations/*.xml")

    def fake(self, out, seed=0):  # pragma: no cover - the outer adapter writes the fakes
        raise NotImplementedError


class _Yolo(YoloAdapter):
    id = "pd_pf_tek"
    markers = ("images", "labels")

    def signature(self, path: Path) -> bool:
        return any((path / f).is_file() for f in ("classes.txt", "data.yaml", "labels/classes.txt"))

    def class_names(self, root: Path) -> list[str]:
        """The family's class-name file, each name checked against the alias table here so that an
        unconfirmed name is reported against the file that holds it (not a label file using it)."""
        from ..taxonomy import TaxonomyError, load_taxonomy

        names = super().class_names(root)
        src = next(f for f in (root / "data.yaml", root / self.labels_dir / "classes.txt", root / "classes.txt") if f.is_file())
        tax = load_taxonomy()
        for i, n in enumerate(names):
            try:
                tax.map_label(self.id, n, file=disk.show(src))
            except TaxonomyError as e:
                raise CorruptInputError(f"{disk.show(src)}: class {i} {n!r} has no alias in taxonomy.yaml "
                                        f"sources.{self.id} (PD-PF class names are UNCONFIRMED: add it once checked) ({e})") from None
        return names

    def fake(self, out, seed=0):  # pragma: no cover
        raise NotImplementedError


class _Coco(CocoJsonAdapter):
    id = "pd_pf_tek"

    def __init__(self, json_rel: str = "", images_rel: str = "") -> None:
        self.annotation_files = {"": (json_rel, images_rel)} if json_rel else {}

    @staticmethod
    def candidates(path: Path) -> list[Path]:
        return sorted([*path.glob("*.json"), *path.glob("annotations/*.json")])

    def is_root(self, path: Path) -> bool:
        for f in self.candidates(path):
            try:
                head = f.open("rb").read(4096)
            except OSError:
                continue
            if b'"images"' in head or b'"annotations"' in head or b'"categories"' in head:
                return True
        return False

    def fake(self, out, seed=0):  # pragma: no cover
        raise NotImplementedError


VARIANTS: dict[str, type[Adapter]] = {"voc": _Voc, "yolo": _Yolo, "coco": _Coco}


class PdPfTekAdapter(Adapter):
    id = "pd_pf_tek"
    version = "1"
    tasks = ("detection",)
    #: any content: which files must exist depends on the variant found (:data:`VARIANTS`)
    markers = ("*",)

    def __init__(self) -> None:
        self.variant: Optional[str] = None
        self.inner: Optional[Adapter] = None
        self.box_format = None  # set by locate(): the variant's convention

    # ------------------------------------------------------------------ discovery
    def _variants_at(self, path: Path) -> list[str]:
        return [k for k, cls in VARIANTS.items() if cls().is_root(path)]

    def is_root(self, path: Path) -> bool:
        return path.is_dir() and bool(self._variants_at(path))

    def locate(self, raw_dir: Path | str) -> Path:
        try:
            root = super().locate(raw_dir)
        except AmbiguousLayoutError:
            raise
        except MissingInputError as e:
            raise MissingInputError(f"{e} Unknown layout: PD-PF's format is UNCONFIRMED; expected {EXPECTED}.") from None
        found = self._variants_at(root)
        if len(found) > 1:
            raise CorruptInputError(f"{self.id}: {disk.show(root)} holds both a {found[0]} and a {found[1]} layout; "
                                    "which one carries the boxes cannot be told (keep one)")
        self._select(found[0], root)
        return root

    def _select(self, variant: str, root: Path) -> None:
        self.variant = variant
        if variant == "coco":
            self.inner = self._coco(root)
        else:
            self.inner = VARIANTS[variant]()
        self.box_format = self.inner.box_format

    def _coco(self, root: Path) -> _Coco:
        cands = [f for f in _Coco.candidates(root)]
        usable = []
        for f in cands:
            try:
                data = json.loads(disk.read_text(f, "COCO JSON file"))
            except json.JSONDecodeError as e:
                raise CorruptInputError(f"{disk.show(f)}: not valid JSON ({e})") from None
            if isinstance(data, dict) and isinstance(data.get("images"), list):
                usable.append((f, data))
        if len(usable) != 1:
            names = ", ".join(disk.show(f.name) for f, _ in usable) or "none"
            raise CorruptInputError(f"{self.id}: expected one COCO JSON under {disk.show(root)}, found {names}")
        f, data = usable[0]
        first = next((im.get("file_name") for im in data["images"] if isinstance(im, dict)), None)
        for folder in (f.parent, root / "images", root):
            if first is None or (folder / str(first)).is_file():
                return _Coco(disk.rel(f, root), disk.rel(folder, root) if folder != root else ".")
        raise MissingInputError(f"{disk.show(f)}: image {first!r} not found next to the JSON, in images/ or at the root")

    def check(self, root: Path) -> None:
        if self.inner is None:
            self._select(self._variants_at(root)[0], root)
        self.inner.check(root) if self.variant != "coco" else None

    # ------------------------------------------------------------------ parsing (delegated)
    def prepare(self, root: Path) -> None:
        if self.inner is None:
            self.check(root)
        self.inner.prepare(root)
        self.__dict__["_report"] = self.inner.report  # one run report
        self.report.info["layout"] = LAYOUTS[self.variant]

    def records(self, root: Path) -> Iterator[Any]:
        yield from self.inner.records(root)

    def parse(self, record: Any) -> RawSample:
        s = self.inner.parse(record)
        s.group_id = s.group_id or Path(s.rel_path).stem
        return s

    def input_files(self, root: Path) -> Iterator[Path]:
        if self.inner is None:
            self._select(self._variants_at(root)[0], root)
        yield from self.inner.input_files(root)

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """One of the three variants (seed % 3: voc, yolo, coco) under ``out/PD-PF/``: 5 thin-smear
        fields (400x300 JPEG) with 1-4 ``parasite`` boxes (any case), one field without parasites."""
        rng = np.random.default_rng(seed)
        variant = ("voc", "yolo", "coco")[seed % 3]
        root = Path(out) / "PD-PF"
        W, H = 400, 300
        truth: dict[str, FakeSample] = {}
        coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "parasite"}]}
        names = ["parasite", "Parasite"]
        for k in range(5):
            n = 0 if k == 2 else int(rng.integers(1, 5))
            boxes = syn.random_boxes(rng, W, H, n, lo=10, hi=40)
            cats = [names[(k + i) % 2] if variant == "voc" else "parasite" for i in range(n)]
            data = syn.encode(syn.smear(W, H, [(b, "parasite") for b in boxes], seed * 10 + k), "JPEG", quality=90)
            stem = f"pf_{k + 1:03d}"
            if variant == "voc":
                rel = f"JPEGImages/{stem}.jpg"
                (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
                (root / "Annotations").mkdir(parents=True, exist_ok=True)
                write_voc(root / "Annotations" / f"{stem}.xml", f"{stem}.jpg", W, H,
                          [VocObject(c, (x + 1, y + 1, x + w, y + h)) for c, (x, y, w, h) in zip(cats, boxes)])
                want = [[float(v) for v in b] for b in boxes]
            elif variant == "yolo":
                rel = f"images/{stem}.jpg"
                (root / "images").mkdir(parents=True, exist_ok=True)
                lines = [yolo.format_row(0, yolo.coco_to_yolo(b, W, H)) for b in boxes]
                yolo.write_yolo(root / "labels" / f"{stem}.txt", lines)
                want = [yolo.yolo_to_coco([float(t) for t in ln.split()[1:5]], W, H) for ln in lines]
            else:
                rel = f"images/{stem}.jpg"
                (root / "images").mkdir(parents=True, exist_ok=True)
                coco["images"].append({"id": k + 1, "file_name": f"{stem}.jpg", "width": W, "height": H})
                for i, b in enumerate(boxes):
                    coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": k + 1, "category_id": 1,
                                                "bbox": [float(v) for v in b], "area": float(b[2] * b[3]), "iscrowd": 0})
                want = [[float(v) for v in b] for b in boxes]
            (root / rel).write_bytes(data)
            truth[rel] = FakeSample(rel_path=rel, boxes=want, categories=cats, group_id=stem)
        if variant == "yolo":
            (root / "classes.txt").write_text("parasite\n")
        if variant == "coco":
            (root / "annotations").mkdir(parents=True, exist_ok=True)
            (root / "annotations" / "instances.json").write_text(json.dumps(coco))
        return FakeTruth(root=root, samples=truth)


ADAPTER = PdPfTekAdapter
