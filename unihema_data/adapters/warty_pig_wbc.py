"""Juvenile Visayan warty pig WBC dataset (Alipo-on et al. 2022, Data in Brief; IEEE DataPort /
Google Drive; CC BY 4.0 per the ``1aurent/WartyPig`` mirror card): white blood cells of *Sus
cebifrons* (a non-human species), five classes.

Native layout (``locate`` accepts up to two levels above the root)::

    <root>/Cropped Classified/<Class>/*.jpg    1,407 single-cell crops   (converted)
    <root>/Original/*.jpg                      285 unlabeled smear fields (not converted, counted)
    <root>/Augmented images/...                1,464 augmentations of the crops (not converted, counted)

Conventions:
* Label = the class folder under ``Cropped Classified``, verbatim. The spelling is UNCONFIRMED
  (the HF ClassLabel names are ``Basophil`` ... ``Neutrophil``): ``sources.warty_pig_wbc.labels``
  also aliases plural and lower-case variants; any other folder name fails the conversion naming
  the label (taxonomy). The folder names found are reported (``report.info["class_folders"]``).
* ``Augmented images`` derive from the crops: converting them would put copies of a crop in
  other splits (evaluation leakage), so they are not converted; ``Original`` fields carry no
  label. Both are counted in ``report.info`` so their absence from the corpus is visible.
* The species is recorded in the taxonomy (``species: sus_cebifrons``); rows carry no species
  column yet. No official split and no animal ids: each crop is its own group.

Evidence: research note ``datasets-classification.md`` §2 (layout from the HF mirror's
``gen_script.py``, counts from its card). No real sample is available.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import ClassFolderAdapter

CROPS = "Cropped Classified"
ORIGINAL = "Original"
AUGMENTED = "Augmented images"


class WartyPigWbcAdapter(ClassFolderAdapter):
    id = "warty_pig_wbc"
    version = "1"
    markers = (CROPS,)
    layout_hint = f"a folder holding '{CROPS}/<Class>/'"

    def signature(self, path: Path) -> bool:
        return bool(disk.subdirs(path / CROPS))

    def image_root(self, root: Path) -> Path:
        return root / CROPS

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.report.info["class_folders"] = ", ".join(d.name for d in disk.subdirs(root / CROPS))
        for name, why in ((ORIGINAL, "unlabeled smear fields"), (AUGMENTED, "augmentations of the crops (leakage)")):
            folder = root / name
            if folder.is_dir():
                n = sum(1 for _ in disk.walk_files(folder))
                self.report.info[name] = f"{n} files, not converted: {why}"

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/WartyPig/``: ``Cropped Classified/<5 classes>/`` JPEG crops (600 px wide
        scaled down), an ``Original/`` field and ``Augmented images/`` copies (not converted), a
        ``desktop.ini`` junk file."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "WartyPig"
        truth: dict[str, FakeSample] = {}
        plan = ["Basophil", "Eosinophil", "Lymphocyte", "Lymphocyte", "Monocyte", "Neutrophil", "Neutrophil"]
        for k, cls in enumerate(plan):
            rel = f"{CROPS}/{cls}/IMG_{int(rng.integers(1000, 9999))}_{k}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            data = syn.encode(syn.single_cell(60, "wbc", seed * 100 + k, size_h=56), "JPEG", quality=90)
            (root / rel).write_bytes(data)
            truth[rel] = FakeSample(rel_path=rel, label=cls)
            if k < 2:
                (root / AUGMENTED / cls).mkdir(parents=True, exist_ok=True)
                (root / AUGMENTED / cls / f"aug_{k}.jpg").write_bytes(data)
        (root / ORIGINAL).mkdir()
        (root / ORIGINAL / "field_1.jpg").write_bytes(syn.encode(syn.smear(120, 90, [], seed), "JPEG"))
        (root / CROPS / "desktop.ini").write_text("[.ShellClassInfo]\n")
        return FakeTruth(root=root, samples=truth)


ADAPTER = WartyPigWbcAdapter
