"""TXL-PBC (Gan & Li 2024, arXiv:2407.13214; GitHub lugan113/TXL-PBC_Dataset): YOLO detection of
WBC / RBC / platelets in peripheral blood smears.

Native layout (GitHub version, 1440 images; ``locate`` accepts up to two levels above)::

    TXL_PBC/data.yaml                                 names: ['WBC', 'RBC','Platelets'], nc: 3
    TXL_PBC/images/{train,val,test}/<uuid>.jpg        1008 / 288 / 144 JPEGs
    TXL_PBC/labels/{train,val,test}/<uuid>.txt        YOLO: cls xc yc w h (normalized)
    TXL_PBC/labels/classes.txt                        WBC / RBC / Platelet
    TXL_PBC/labels/{train,val,test}/classes.txt       WBC / RBC / PC

Conventions:
* Boxes: YOLO normalized centre/size (:attr:`BoxFormat.YOLO`), passed through verbatim; the core
  converts them with the real image size (images come in 360x363, 366x369, 416x416, 575x575 and
  640x480 - they were pooled from PBC, Kaggle BCD, Raabin-WBC and BCCD).
* Native category = the class name of ``data.yaml`` (``WBC``, ``RBC``, ``Platelets``). ``data.yaml``
  is authoritative because it is the dataset-level config that YOLO tooling (and so every model
  trained on TXL-PBC) reads; the ``classes.txt`` files are the per-folder by-products labelImg writes
  next to the labels. Without ``data.yaml`` the fallback is ``labels/classes.txt``, then the split
  folders' ``classes.txt`` (the choice is in :attr:`TXLPBCAdapter.class_source`).
* Published split = the ``images/<split>`` folder name, verbatim (``train``/``val``/``test``).
* ``group_id``: none - file names are UUIDs with no patient/slide information, so each image is its
  own group.

Quirks handled (research note datasets-detection.md section 3, verified on the native files):
* Three spellings of class 2 (``Platelets`` / ``Platelet`` / ``PC``): every class-name file is read
  and compared index by index. Spelling variants of the same class are accepted and recorded in
  :attr:`TXLPBCAdapter.class_name_variants` (and logged); a different class count, or a name at an
  index that is not a variant of the authoritative one (a different order), is a
  :class:`CorruptInputError` naming both files.
* ``classes.txt`` inside every label folder is a class-name file, not a label file (a naive ``*.txt``
  glob would parse it as labels).
* An empty label file is an image without objects (none in the GitHub version, supported anyway).
* A missing label file for an image, or a label file without an image, is an error.
* ``locate`` wants ``images/`` + ``labels/`` *and* a class-name file, so another YOLO tree extracted
  next to TXL-PBC is not mistaken for it.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..formats import disk, yolo
from . import _synthetic as syn
from .base import CorruptInputError, FakeSample, FakeTruth, MissingInputError
from .families import YoloAdapter

log = logging.getLogger(__name__)

# spellings observed for each class (normalized with _norm); used only to tell a spelling variant
# from a genuinely different class when the class-name files disagree
_EQUIVALENT = {"wbc": "wbc", "whitebloodcell": "wbc", "leukocyte": "wbc",
               "rbc": "rbc", "redbloodcell": "rbc", "erythrocyte": "rbc",
               "platelet": "platelet", "pc": "platelet", "plt": "platelet", "thrombocyte": "platelet"}


def _norm(name: str) -> str:
    s = re.sub(r"[^a-z]", "", name.lower())
    if s.endswith("s") and s[:-1] in _EQUIVALENT:
        s = s[:-1]
    return _EQUIVALENT.get(s, s)


class TXLPBCAdapter(YoloAdapter):
    id = "txl_pbc"
    version = "2"
    markers = ("images", "labels")
    required = ()

    def __init__(self) -> None:
        #: file (relative to the root) the native category names come from, set by class_names
        self.class_source: str = ""
        #: {class index: {file: spelling}} for every index whose spelling differs between files
        self.class_name_variants: dict[int, dict[str, str]] = {}

    def signature(self, path: Path) -> bool:
        """At least one class-name file, and label lines of at most 5 columns (tells TXL-PBC apart from
        other YOLO trees, e.g. LeukemiaAttri's 11/12-column labels)."""
        if not self.class_files(path):
            return False
        first = _first_label_file(path / "labels")
        if first is None:
            return True
        try:
            n = yolo.first_row_columns(first)
            return n is None or n <= 5  # a damaged 4-column line is still TXL-PBC's (the parser says why)
        except CorruptInputError:
            return True  # a damaged file is reported by the parser, not taken for another source

    # ------------------------------------------------------------------ class names
    def class_files(self, root: Path) -> list[Path]:
        """Every class-name file, authoritative first: data.yaml, labels/classes.txt, split ones."""
        files = [root / "data.yaml", root / "labels" / "classes.txt"]
        labels = root / "labels"
        if labels.is_dir():
            files += [d / "classes.txt" for d in disk.subdirs(labels)]
        # disk.present: a FIFO counts (its reader refuses it), a non-UTF-8 rename is refused; neither
        # may silently hand authority to the next class-name file
        return [f for f in files if disk.present(f)]

    def class_names(self, root: Path) -> list[str]:
        """The authoritative names, after checking every other class-name file agrees with them
        (same count, same class at each index up to spelling)."""
        files = self.class_files(root)
        if not files:
            raise MissingInputError(
                f"{self.id}: no class-name file under {root} (expected data.yaml or labels/classes.txt)"
            )
        read = {f: (yolo.read_yaml_names(f) if f.suffix == ".yaml" else yolo.read_classes_txt(f)) for f in files}
        ref_file = files[0]
        ref = read[ref_file]
        variants: dict[int, dict[str, str]] = {}
        for f, names in read.items():
            if len(names) != len(ref):
                raise CorruptInputError(
                    f"{f}: lists {len(names)} classes {names} but {ref_file} lists {len(ref)} {ref}"
                )
            for i, (a, b) in enumerate(zip(ref, names)):
                if a == b:
                    continue
                if _norm(a) != _norm(b):
                    raise CorruptInputError(
                        f"{f}: class {i} is {b!r} but {ref_file} has {a!r} there "
                        f"(different class order or class set: {names} vs {ref})"
                    )
                variants.setdefault(i, {ref_file.relative_to(root).as_posix(): a})[f.relative_to(root).as_posix()] = b
        self.class_source = ref_file.relative_to(root).as_posix()
        self.class_name_variants = variants
        self.report.info["class_names_from"] = self.class_source
        if variants:
            log.info("%s: class-name spelling variants (using %s): %s", self.id, self.class_source, variants)
            for i, spell in sorted(variants.items()):
                self.report.flag(self.class_source, f"class {i} is spelled differently across files: "
                                 + ", ".join(f"{f}={n!r}" for f, n in spell.items()))
        return ref

    # ------------------------------------------------------------------ parsing
    def input_files(self, root: Path) -> Iterator[Path]:
        yield from self.class_files(root)
        for sub in ("images", "labels"):
            yield from disk.walk_files(root / sub)

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/TXL-PBC_Dataset-main/TXL_PBC/...`` with the real image sizes (incl. the
        non-square 360x363 and 640x480), the three class-2 spellings (data.yaml ``Platelets``,
        labels/classes.txt ``Platelet``, split folders ``PC``), a ``classes.txt`` in every label
        folder, an image with an empty label file, boxes touching the image border, 6-decimal
        coordinates and UUID-like file names."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "TXL-PBC_Dataset-main" / "TXL_PBC"
        root.mkdir(parents=True, exist_ok=True)
        (root / "data.yaml").write_text(
            "train: ./images/train/\nval: ./images/val/\ntest: ./images/test/\nnc: 3\nnames: ['WBC', 'RBC','Platelets']",
            encoding="utf-8",
        )
        (root / "labels").mkdir(exist_ok=True)
        (root / "labels" / "classes.txt").write_text("WBC\nRBC\nPlatelet\n", encoding="utf-8")
        names = ["WBC", "RBC", "Platelets"]
        kinds = ["wbc", "rbc", "platelet"]
        plan = [  # (split, width, height)
            ("train", 360, 363), ("train", 416, 416), ("train", 575, 575), ("train", 640, 480),
            ("train", 366, 369), ("val", 575, 575), ("val", 360, 363), ("test", 640, 480), ("test", 416, 416),
        ]
        truth: dict[str, FakeSample] = {}
        for k, (split, W, H) in enumerate(plan):
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / "classes.txt").write_text("WBC\nRBC\nPC\n", encoding="utf-8")
            stem = _uuid_like(rng)
            n = 0 if k == 6 else int(rng.integers(2, 7))
            classes = [0] + [int(c) for c in rng.choice([1, 1, 1, 2], size=max(n - 1, 0))] if n else []
            boxes = syn.random_boxes(rng, W, H, len(classes), lo=12, hi=90)
            if k == 0 and boxes:
                boxes[0] = [0, 0, 70, 64]                 # touches the top-left corner
                boxes[-1] = [W - 40, H - 33, 40, 33]     # touches the bottom-right corner
            lines, coco = [], []
            for c, b in zip(classes, boxes):
                lines.append(yolo.format_row(c, yolo.coco_to_yolo(b, W, H)))
                # ground truth from the 6-decimal values actually written
                coco.append(yolo.yolo_to_coco([float(t) for t in lines[-1].split()[1:5]], W, H))
            im = syn.smear(W, H, [(b, kinds[c]) for c, b in zip(classes, boxes)], seed * 100 + k)
            img_path = root / "images" / split / f"{stem}.jpg"
            img_path.parent.mkdir(parents=True, exist_ok=True)
            img_path.write_bytes(syn.encode(im, "JPEG", quality=90))
            yolo.write_yolo(root / "labels" / split / f"{stem}.txt", lines)  # k == 6: empty file
            rel = f"images/{split}/{stem}.jpg"
            truth[rel] = FakeSample(rel_path=rel, boxes=coco, categories=[names[c] for c in classes], source_split=split)
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """Drop the last column of the first label line (a 4-column line must be rejected)."""
        for rel in sorted(truth.samples):
            if truth.samples[rel].boxes:
                split, stem = Path(rel).parent.name, Path(rel).stem
                lab = truth.root / "labels" / split / f"{stem}.txt"
                lines = lab.read_text().splitlines()
                lines[0] = " ".join(lines[0].split()[:4])
                lab.write_text("\n".join(lines) + "\n")
                return lab.name
        return super().corrupt(truth)  # pragma: no cover - every fake has boxes


def _first_label_file(labels: Path) -> Optional[Path]:
    """The first label file (sorted) in ``labels/`` or one split folder below it."""
    for folder in [labels, *disk.subdirs(labels)]:
        files = yolo.label_files(folder)
        if files:
            return files[0]
    return None


def _uuid_like(rng: np.random.Generator) -> str:
    h = "".join(f"{int(v):x}" for v in rng.integers(0, 16, size=32))
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{h[16:20]}-{h[20:]}"


ADAPTER = TXLPBCAdapter
