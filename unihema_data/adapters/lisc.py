"""LISC, Leukocyte Images for Segmentation and Classification (Rezatofighi et al.; PubMed
21300521; http://users.cecs.anu.edu.au/~hrezatofighi/Data/Leukocyte%20Data.htm): 720x576 BMP
images of peripheral blood of 8 normal subjects (100 slides, Gismo-Right stain, Axioskope 40,
100x), classified by a haematologist into five leukocyte types.

Native layout (``locate`` accepts up to two levels above the root)::

    LISC Database/Main Dataset/<folder>/<n>.bmp
    LISC Database/Ground Truth Segmentation/<folder>/<n>_expert.bmp   (not converted, see below)
    <folder>: Baso eosi lymp mixt mono neut      (``Baso`` is capitalized, the others are not)

Conventions:
* Label = the folder name, verbatim (``sources.lisc.labels``). ``mixt`` holds images showing
  several cell types (no single cell label): they map to ``unlabeled`` and are flagged
  ``mixed_cells`` (UNCONFIRMED reading of the folder name; they are kept rather than dropped so
  that the image count matches the release).
* Image numbers restart in every folder (``Baso/1.bmp``, ``mixt/1.bmp``): the folder is part of
  ``sample_id``. No official split; the 8 subjects are not identified in the release, so each
  image is its own group (UNCONFIRMED whether images of one subject can be grouped).
* BMP is re-encoded losslessly to PNG by the core.

Detected at run time and reported (``report.info``): whether ``Ground Truth Segmentation/`` is
present (``ground_truth``) and how many images have an ``<n>_expert.bmp`` mask. The masks'
pixel encoding (nucleus / cytoplasm values) is UNCONFIRMED, so they are not converted; a
segmentation view can be added once a real mask has been inspected.

Evidence: research note ``datasets-segmentation.md`` (LISC: 720x576 BMP, 8 subjects, 400
samples); folder names from public code reading ``LISC Database/Main Dataset/{Baso,mixt,neut}``
and ``Ground Truth Segmentation/<folder>/<n>_expert.bmp``. No real sample is available.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import ClassFolderAdapter, FileRecord

MAIN = "Main Dataset"
GROUND_TRUTH = "Ground Truth Segmentation"
CLASSES = ("Baso", "eosi", "lymp", "mixt", "mono", "neut")
MIXED = "mixt"


class LiscAdapter(ClassFolderAdapter):
    id = "lisc"
    version = "1"
    markers = (MAIN,)
    classes = CLASSES
    layout_hint = f"a folder holding '{MAIN}/' with Baso/eosi/lymp/mixt/mono/neut"

    def signature(self, path: Path) -> bool:
        return any((path / MAIN / c).is_dir() for c in CLASSES)

    def image_root(self, root: Path) -> Path:
        return root / MAIN

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        gt = root / GROUND_TRUTH
        if gt.is_dir():
            n = sum(1 for d in disk.subdirs(gt) for f in disk.list_files(d, (".bmp",)) if f.stem.endswith("_expert"))
            self.report.info["ground_truth"] = (f"{GROUND_TRUTH}/ present ({n} *_expert.bmp masks); not converted: "
                                                "their pixel encoding is UNCONFIRMED")
        else:
            self.report.info["ground_truth"] = f"{GROUND_TRUTH}/ absent"

    def flags(self, rec: FileRecord) -> list[str]:
        return ["mixed_cells"] if rec.part("class") == MIXED else []

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/LISC Database/Main Dataset/<6 folders>/<n>.bmp`` (720x576 scaled down to
        90x72, numbers restarting per folder, ``1.bmp`` in two folders), two masks under
        ``Ground Truth Segmentation/`` and a ``Thumbs.db``."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "LISC Database"
        plan = [("Baso", 1), ("eosi", 3), ("lymp", 1), ("mixt", 2), ("mono", 7), ("neut", 38), ("neut", 4)]
        truth: dict[str, FakeSample] = {}
        for k, (folder, n) in enumerate(plan):
            rel = f"{folder}/{n}.bmp"
            path = root / MAIN / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(syn.encode(syn.single_cell(90, "wbc", seed * 100 + k + int(rng.integers(0, 9)) * 1000, size_h=72), "BMP"))
            truth[rel] = FakeSample(rel_path=rel, label=folder)
            if k < 2:
                (root / GROUND_TRUTH / folder).mkdir(parents=True, exist_ok=True)
                m = np.zeros((72, 90), np.uint8)
                m[20:50, 30:60] = 255
                (root / GROUND_TRUTH / folder / f"{n}_expert.bmp").write_bytes(syn.encode(Image.fromarray(m), "BMP"))
        (root / MAIN / "neut" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
        # ground truth keyed by the path relative to the located root
        return FakeTruth(root=root, samples={f"{MAIN}/{k}": FakeSample(rel_path=f"{MAIN}/{k}", label=v.label)
                                             for k, v in truth.items()})


ADAPTER = LiscAdapter
