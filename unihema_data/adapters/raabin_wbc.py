"""Raabin-WBC, classification part (Kouzehkanan et al. 2022, Scientific Reports 12:1123;
doi:10.1038/s41598-021-04426-x; https://raabindata.com/free-data/): cropped white blood cells of
normal peripheral blood, imaged with two microscopes and two phone cameras, five classes.

Native layout (``locate`` accepts up to two levels above the root)::

    <root>/Train/<Class>/<image>.jpg
    <root>/TestA/<Class>/<image>.jpg
    <root>/TestB/<Class>/<image>.jpg
    <Class>: Basophil Eosinophil Lymphocyte Monocyte Neutrophil

Conventions:
* Label = the class folder name, verbatim (``sources.raabin_wbc.labels``, Title case).
* Split: the published one. ``Train`` -> ``source_split = "train"``; ``TestA`` and ``TestB`` ->
  ``source_split = "test"`` with ``subset`` = the native folder name (``TestA`` / ``TestB``), so
  both official test sets stay distinguishable (TestB was reportedly imaged with another
  microscope/camera, to test domain shift: UNCONFIRMED).
* ``group_id``: none (each image its own group). File names such as ``95-8-27-1_154_1.jpg`` look
  like ``<smear>_<cell>_<crop>`` but that reading is UNCONFIRMED, so no smear grouping is made.
* The root is the folder holding ``Train/`` (with at least one class folder); ``TestA`` /
  ``TestB`` are matched case-insensitively, the native spelling is kept in ``sample_id``.

Quirks handled:
* TestB does not hold all five classes (wbc-benchmark re-indexes its labels for it): the classes
  present in each split are detected and written to the run report
  (``report.info["classes_per_split"]``); a missing class is not an error.
* An unknown class folder (e.g. a sixth class) fails the conversion naming the folder.
* An unknown split folder is an error naming it (the family's walk would otherwise take its name
  as a split).

Evidence: research note ``datasets-classification.md`` §10b (layout from
``apple2373/wbc-benchmark`` README/main.py; 575x575 JPEG crops). UNCONFIRMED: split sizes (about
10.2k / 4.3k / 2.1k), the exact archive top folder, the nucleus/cytoplasm ground-truth subset
(not handled here). No real sample is available.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import CorruptInputError
from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import ClassFolderAdapter, FileRecord

CLASSES = ("Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil")
#: native split folder (lower case) -> (source_split, subset)
SPLITS = {"train": ("train", ""), "testa": ("test", "TestA"), "testb": ("test", "TestB")}


class RaabinWbcAdapter(ClassFolderAdapter):
    id = "raabin_wbc"
    version = "1"
    levels = ("split", "class")
    classes = CLASSES
    markers = ("Train",)
    layout_hint = "Train/, TestA/ and TestB/ folders with class folders"

    def signature(self, path: Path) -> bool:
        """``Train`` (the marker) must hold at least one of the five class folders."""
        for d in disk.subdirs(path):
            if d.name.lower() in SPLITS and any((d / c).is_dir() for c in CLASSES):
                return True
        return False

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        present: dict[str, set[str]] = defaultdict(set)
        for d in disk.subdirs(root):
            if d.name.lower() not in SPLITS:
                raise CorruptInputError(f"{disk.show(d)}: unknown split folder {disk.show(d.name)!r} "
                                        f"(expected Train, TestA or TestB)")
            present[d.name] = {c.name for c in disk.subdirs(d)}
        self.report.info["classes_per_split"] = "; ".join(
            f"{s}: {', '.join(sorted(c)) or 'none'}" for s, c in sorted(present.items()))
        missing = {s: sorted(set(CLASSES) - c) for s, c in present.items() if set(CLASSES) - c}
        if missing:
            self.report.info["classes_missing"] = "; ".join(f"{s}: {', '.join(m)}" for s, m in sorted(missing.items()))

    def split(self, rec: FileRecord) -> str:
        return SPLITS[rec.part("split").lower()][0]

    def subset(self, rec: FileRecord) -> str:
        return SPLITS[rec.part("split").lower()][1]

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/Raabin-WBC/{Train,TestA,TestB}/<Class>/`` with JPEG crops named like the
        release (``95-8-27-1_154_1.jpg``, ``20190531_114409_2.jpg``); TestB holds only
        Lymphocyte and Neutrophil (the missing-classes quirk); a ``.DS_Store`` and a
        ``Thumbs.db`` junk file."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "Raabin-WBC"
        plan = [("Train", c) for c in CLASSES] + [("TestA", c) for c in ("Basophil", "Monocyte", "Neutrophil")] \
            + [("TestB", "Lymphocyte"), ("TestB", "Neutrophil"), ("Train", "Neutrophil")]
        truth: dict[str, FakeSample] = {}
        for k, (split, cls) in enumerate(plan):
            name = (f"95-8-{int(rng.integers(1, 30))}-1_{int(rng.integers(1, 999))}_{k}.jpg" if k % 2 == 0
                    else f"20190531_{int(rng.integers(100000, 999999))}_{k}.jpg")
            rel = f"{split}/{cls}/{name}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(syn.encode(syn.single_cell(72, "wbc", seed * 100 + k), "JPEG", quality=90))
            truth[rel] = FakeSample(rel_path=rel, label=cls, source_split=SPLITS[split.lower()][0])
        (root / "Train" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / "TestA" / "Monocyte" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
        return FakeTruth(root=root, samples=truth)


ADAPTER = RaabinWbcAdapter
