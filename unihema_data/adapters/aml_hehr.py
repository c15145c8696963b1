"""AML-Cytomorphology_MLL_Helmholtz (Hehr et al. 2023, PLOS Digital Health 2(3):e0000187; TCIA
doi:10.7937/6PPE-4020): single-cell TIFF crops of peripheral blood of 189 subjects, grouped by
the patient's genetic AML subtype (or stem-cell-donor control). No per-cell type labels.

Native layout (TCIA package; ``locate`` accepts up to two levels above the root)::

    PKG - AML-Cytomorphology_MLL_Helmholtz_v1/data/<group>/<patient>/*.tif
    <group>: control CBFB_MYH11 NPM1 PML_RARA RUNX1_RUNX1T1     <patient>: 3-letter code (AQK)

Conventions:
* The label is the **patient-level** group, verbatim, mapped by ``sources.aml_hehr.labels`` to
  ``unlabeled`` (the cell's type is unknown); the group's diagnosis goes to the row's
  ``disease`` (``sources.aml_hehr.diagnosis``: ``control``, ``aml_npm1``, ``apl_pml_rara``, ...).
  Use the set for diagnosis / multiple-instance tasks, not for cell typing.
* ``group_id = "patient:<patient>"``: every cell of a patient lands in one split (no official
  split). A patient code under two groups would merge them into one split group; it is flagged
  on those rows (``patient_in_groups:<g1>,<g2>``) and reported.
* TIFFs are re-encoded losslessly to PNG by the core.

Detected and reported (``report.info``): patients per group and the cell count range per
patient (about 99 cells per patient, 144x144 px: UNCONFIRMED).

Evidence: research note ``datasets-classification.md`` §4 (layout, groups, 3-letter patient
codes from public listings of the package). No real sample is available.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..formats import disk
from ..taxonomy import load_taxonomy
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import ClassFolderAdapter, FileRecord

GROUPS = ("control", "CBFB_MYH11", "NPM1", "PML_RARA", "RUNX1_RUNX1T1")
DATA = "data"


class AmlHehrAdapter(ClassFolderAdapter):
    id = "aml_hehr"
    version = "1"
    markers = (DATA,)
    levels = ("class", "patient")
    classes = GROUPS
    layout_hint = "data/<group>/<patient>/*.tif"

    def signature(self, path: Path) -> bool:
        return any((path / DATA / g).is_dir() for g in GROUPS)

    def image_root(self, root: Path) -> Path:
        return root / DATA

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        groups_of: dict[str, list[str]] = defaultdict(list)
        cells: Counter = Counter()
        for folder, parts in self._leaf_folders(root / DATA, root):
            p = dict(parts)
            groups_of[p["patient"]].append(p["class"])
            cells[p["patient"]] += len(disk.list_files(folder, self.image_suffixes))
        self.multi = {pat: ",".join(sorted(gs)) for pat, gs in groups_of.items() if len(gs) > 1}
        for pat, gs in sorted(self.multi.items()):
            self.report.flag(f"{DATA}/*/{pat}", f"patient folder under several groups: {gs}")
        per_group = Counter(g for gs in groups_of.values() for g in gs)
        self.report.info["patients_per_group"] = ", ".join(f"{g}: {per_group[g]}" for g in GROUPS if per_group[g])
        if cells:
            self.report.info["cells_per_patient"] = f"{min(cells.values())}-{max(cells.values())}"

    def group_id(self, rec: FileRecord) -> str:
        return f"patient:{rec.part('patient')}"

    def flags(self, rec: FileRecord) -> list[str]:
        m = self.multi.get(rec.part("patient"))
        return [f"patient_in_groups:{m}"] if m else []

    def meta(self, rec: FileRecord) -> dict[str, str]:
        return {"disease": load_taxonomy().map_diagnosis(self.id, rec.part("class"), file=disk.show(rec.path))}

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/PKG - AML-Cytomorphology_MLL_Helmholtz_v1/data/<group>/<patient>/`` TIFF
        crops: four groups, two patients in one group, a ``Thumbs.db`` and a README at the root."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "PKG - AML-Cytomorphology_MLL_Helmholtz_v1"
        plan = [("control", "AQK", 2), ("NPM1", "AEC", 2), ("NPM1", "BXT", 1), ("PML_RARA", "CDA", 2), ("RUNX1_RUNX1T1", "DKF", 1)]
        truth: dict[str, FakeSample] = {}
        k = 0
        for group, patient, n in plan:
            for _ in range(n):
                rel = f"{DATA}/{group}/{patient}/image_{int(rng.integers(0, 99999)):05d}_{k}.tif"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(syn.encode(syn.single_cell(48, "wbc", seed * 100 + k), "TIFF"))
                truth[rel] = FakeSample(rel_path=rel, label=group, group_id=f"patient:{patient}")
                k += 1
        (root / DATA / "NPM1" / "AEC" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
        (root / "README.txt").write_text("AML-Cytomorphology_MLL_Helmholtz\n")
        return FakeTruth(root=root, samples=truth)


ADAPTER = AmlHehrAdapter
