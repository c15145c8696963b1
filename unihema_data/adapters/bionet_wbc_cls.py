"""Bio-Net, WBC classification part (usmanalishams/DeepBioNet_dataset_BCCD_WBC_Classifition): 640x480
smear fields labelled with one white-cell type by folder, most of them Augmentor outputs.

A second id next to ``bionet`` (the detection part), as the codebase does for multi-part sources
whose parts differ in task and content (``raabin_wbc`` / ``raabin_wbc_det``, ``all_idb1`` /
``all_idb2``): other images, other labels, other counts. Both parts ship in one GitHub archive, so
``locate`` also looks in the ``bionet`` download (``raw_dir/bionet``) when ``raw_dir/bionet_wbc_cls``
does not exist, and says where it found the root (``report.info["located_in"]``).

Native layout (commit ``0b67463``, read in full; ``locate`` accepts up to two levels above)::

    <root>/WBC Classification Dataset/<CLASS>/<n>.jpg                                   361 originals
    <root>/WBC Classification Dataset/<CLASS>/Copy of <n>.jpg                           50 copies
    <root>/WBC Classification Dataset/<CLASS>/<CLASS>_original_<file>_<uuid4>.jpg     4968 augmentations
    <CLASS>: EOSINOPHIL (1892), LYMPHOCYTE (1547), MONOCYTE (521), NEUTROPHIL (1419)

Conventions and quirks (all verified on the full repository at ``0b67463``):

* Label = the class folder (alias table ``sources.bionet_wbc_cls``); an unknown folder is an error.
* ``Copy of <n>.jpg`` is byte-identical to ``<n>.jpg`` (all 50): converted (the corpus duplicate
  policy links them: one split, ``duplicate_of``), flagged ``copy_of:<n>.jpg``.
* ``<CLASS>_original_<file>_<uuid>.jpg`` is an Augmentor output of ``<file>`` (an original or a
  copy of the same folder; every one names an existing file): flagged ``augmented_from:<file>``;
  749 byte-identical groups are such outputs (or copy/original pairs). An augmentation whose
  original is absent (a partial copy) is flagged ``augmented_from_missing:<file>`` and reported; an
  augmentation naming another class folder is an error naming it.
* Mixed orientations: about half of the augmentations are rotated by 90 degrees (480x640, a few
  680x480 / 480x680); the pixels are stored as they are, and a portrait image is flagged
  ``orientation:portrait``. No EXIF orientation tag occurs (checked), so width/height are the
  stored pixels'.
* ``group_id`` = ``<CLASS>/<n>``: an original, its copy and all their augmentations stay in one
  split (the release has no split). 406 images are byte-identical to Bio-Net detection training
  fields; the corpus duplicate policy links them across the two ids.
* ``report.info["files"]`` counts originals, copies and augmentations.
"""
from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth, _glob_any
from .families import ClassFolderAdapter, FileRecord

PART = "WBC Classification Dataset"
CLASSES = ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
AUG_RE = re.compile(r"^([A-Z]+)_original_(.+)_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jpg$")
COPY = "Copy of "


def _kind(name: str) -> tuple[str, str, str]:
    """``(kind, source file, class of the name)``: kind ``original`` / ``copy`` / ``augmented``."""
    m = AUG_RE.match(name)
    if m:
        return "augmented", m.group(2), m.group(1)
    if name.startswith(COPY):
        return "copy", name[len(COPY):], ""
    return "original", name, ""


def _group(cls: str, source: str) -> str:
    stem = Path(source[len(COPY):] if source.startswith(COPY) else source).stem
    return f"{cls}/{stem}"


class BioNetWbcClsAdapter(ClassFolderAdapter):
    id = "bionet_wbc_cls"
    version = "1"
    markers = (PART,)
    classes = CLASSES
    image_suffixes = (".jpg", ".jpeg", ".png")

    def signature(self, path: Path) -> bool:
        return any(_glob_any(path, f"{PART}/{c}") for c in CLASSES)

    def image_root(self, root: Path) -> Path:
        return root / PART

    def locate(self, raw_dir: Path | str) -> Path:
        try:
            root = super().locate(raw_dir)
            where = "own folder"
        except MissingInputError as first:
            raw = Path(raw_dir)
            shared = [d for d in (raw / "bionet", raw / "raw" / "bionet") if d.is_dir()]
            found = self.find_roots(shared[0]) if shared else []
            if len(found) != 1:
                raise MissingInputError(f"{first} It ships in the Bio-Net archive: also looked in "
                                        f"{disk.show(shared[0]) if shared else disk.show(raw / 'bionet')}.") from None
            root, where = found[0], "bionet download"
        self.__dict__["_located_in"] = where
        return root

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.report.info["located_in"] = self.__dict__.get("_located_in", "own folder")
        names: dict[str, set[str]] = {}
        counts = {"original": 0, "copy": 0, "augmented": 0}
        for folder, parts in self._leaf_folders(self.image_root(root), root):
            files = disk.list_files(folder, self.image_suffixes)
            names[dict(parts)["class"]] = {f.name for f in files}
            for f in files:
                counts[_kind(f.name)[0]] += 1
        self._names = names
        self.report.info["files"] = ", ".join(f"{k}: {v}" for k, v in counts.items())

    def _source(self, rec: FileRecord) -> tuple[str, str]:
        kind, src, named_cls = _kind(rec.path.name)
        cls = rec.part("class")
        if kind == "augmented" and named_cls != cls:
            raise CorruptInputError(f"{disk.show(rec.path)}: augmentation of a {named_cls} image filed under {cls}")
        return kind, src

    def group_id(self, rec: FileRecord) -> str:
        return _group(rec.part("class"), self._source(rec)[1])

    def flags(self, rec: FileRecord) -> list[str]:
        kind, src = self._source(rec)
        out = []
        if kind == "copy":
            out.append(f"copy_of:{src}")
        elif kind == "augmented":
            have = getattr(self, "_names", {}).get(rec.part("class"), set())
            out.append(f"augmented_from:{src}" if src in have else f"augmented_from_missing:{src}")
        w, h = disk.image_size(rec.path)
        if h > w:
            out.append("orientation:portrait")
        return out

    def parse(self, rec: FileRecord):
        s = super().parse(rec)
        for f in s.qc_flags:
            if f.startswith("augmented_from_missing:"):
                s.notes.append(("flagged", rec.rel_path, f"augmentation of {f.split(':', 1)[1]}, which is absent"))
        return s

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """``out/DeepBioNet-main/WBC Classification Dataset/<CLASS>/`` with originals, a byte-identical
        ``Copy of``, Augmentor outputs (one rotated to 480x640, one of the copy), an augmentation
        whose original is absent, and a ``.DS_Store``; the detection part's folder next to it."""
        rng = np.random.default_rng(seed)
        top = Path(out) / "DeepBioNet-main"
        root = top
        (top / "Blood Cell Detection & Counting Dataset" / "Testing").mkdir(parents=True, exist_ok=True)
        truth: dict[str, FakeSample] = {}
        W, H = 640, 480

        def put(cls: str, name: str, data: bytes, group: str) -> None:
            p = root / PART / cls / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            rel = f"{PART}/{cls}/{name}"
            truth[rel] = FakeSample(rel_path=rel, label=cls, group_id=group)

        def field(k: int, cls: str) -> bytes:
            cells = [((int(rng.integers(0, W - 60)), int(rng.integers(0, H - 60)), 40, 40), "rbc") for _ in range(6)]
            cells.append(((W // 2 - 50, H // 2 - 50, 100, 100), "wbc"))
            return syn.encode(syn.smear(W, H, cells, seed * 100 + k), "JPEG", quality=90)

        def uid() -> str:
            return str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | int(rng.integers(0, 2**62)), version=4))

        k = 0
        for cls, nums in (("EOSINOPHIL", ["01", "310"]), ("LYMPHOCYTE", ["7"]), ("MONOCYTE", ["12"]), ("NEUTROPHIL", ["40", "41"])):
            for n in nums:
                k += 1
                data = field(k, cls)
                put(cls, f"{n}.jpg", data, f"{cls}/{n}")
                if n == "310":
                    put(cls, f"{COPY}{n}.jpg", data, f"{cls}/{n}")  # byte-identical copy
                    im = Image.open(io.BytesIO(data)).transpose(Image.Transpose.ROTATE_90)  # 480x640
                    put(cls, f"{cls}_original_{COPY}{n}.jpg_{uid()}.jpg", syn.encode(im, "JPEG", quality=88), f"{cls}/{n}")
                if n in ("01", "40"):
                    im = ImageOps.mirror(Image.open(io.BytesIO(data)))
                    put(cls, f"{cls}_original_{n}.jpg_{uid()}.jpg", syn.encode(im, "JPEG", quality=88), f"{cls}/{n}")
        # an augmentation whose original is not in the copy (flagged, converted)
        put("MONOCYTE", f"MONOCYTE_original_99.jpg_{uid()}.jpg", field(50, "MONOCYTE"), "MONOCYTE/99")
        (root / PART / "NEUTROPHIL" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        return FakeTruth(root=root, samples=truth)


ADAPTER = BioNetWbcClsAdapter
