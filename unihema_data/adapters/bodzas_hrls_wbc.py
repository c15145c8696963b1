"""HRLS: high-resolution large-scale dataset of pathological and normal white blood cells (Bodzas,
Kodytek, Zidek, Scientific Data 10:466, 2023; figshare): about 16k single-cell images from 78
patients (counts UNCONFIRMED).

Native layout: **UNCONFIRMED** (the figshare package could not be inspected). Two class-folder
layouts are accepted, detected at run time and reported (``report.info["layout"]``); anything
else is an error naming the folder:

* ``by_class``:   ``<root>/<class>/<image>``
* ``by_patient``: ``<root>/<patient>/<class>/<image>`` (``group_id`` = the patient folder, so a
  grouped split keeps a patient's cells together); at least two patient folders.

``<class>`` is a CellaVision-style cell name (``segmented neutrophil``, ``lymphocyte, variant``,
``giant thrombocyte``, ...) mapped by ``sources.bodzas_hrls_wbc.labels`` (exact strings
UNCONFIRMED; the lookup is case- and whitespace-insensitive). A class folder that the alias table
does not know is an error naming it (never a silent fall-through). The root is the folder whose
sub-folders (``by_class``) or sub-sub-folders (``by_patient``) are known class names; a single
wrapper folder around class folders is a wrapper (``by_class`` one level down), not a patient.
Files outside the expected levels, junk (``.DS_Store``, ``Thumbs.db``, ``__MACOSX``) and non-image
files are skipped and reported; names differing only in case are an error.

No official split (grouped fallback). Evidence: research note ``datasets-classification.md`` §3
and ``taxonomy.md`` (Bodzas HRLS alias table); everything about the layout is UNCONFIRMED.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..taxonomy import load_taxonomy
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import ClassFolderAdapter, FileRecord


def known_class(source: str, name: str) -> bool:
    tax = load_taxonomy()
    try:
        tax.map_label(source, name)
        return True
    except Exception:  # noqa: BLE001 - TaxonomyError: not a class name of this source
        return False


class ClassLayoutMixin:
    """Detects ``by_class`` / ``by_patient`` class-folder layouts (see :class:`BodzasHrlsAdapter`)."""

    id: str

    def _class_dirs(self, path: Path) -> tuple[int, int]:
        dirs = disk.subdirs(path)
        return sum(known_class(self.id, d.name) for d in dirs), len(dirs)

    def detect(self, path: Path) -> Optional[str]:
        known, total = self._class_dirs(path)
        if known:
            return "by_class"
        subs = disk.subdirs(path)
        patients = [d for d in subs if self._class_dirs(d)[0]]
        if len(patients) >= 2:
            return "by_patient"
        return None


class BodzasHrlsAdapter(ClassLayoutMixin, ClassFolderAdapter):
    id = "bodzas_hrls_wbc"
    version = "1"
    markers = ("*",)
    layout_hint = "class folders of CellaVision-style WBC names, optionally inside patient folders"

    def signature(self, path: Path) -> bool:
        return self.detect(path) is not None

    def records(self, root: Path) -> Iterator[FileRecord]:
        layout = self.detect(root)
        if layout is None:
            raise MissingInputError(f"{self.id}: {disk.show(root)} holds neither <class>/<image> nor "
                                    f"<patient>/<class>/<image> folders")
        self.levels = ("class",) if layout == "by_class" else ("patient", "class")
        self.report.info["layout"] = layout + (" (<class>/<image>)" if layout == "by_class"
                                               else " (<patient>/<class>/<image>)")
        for folder, parts in self._leaf_folders(root, root):
            name = dict(parts)["class"]
            if not known_class(self.id, name):
                raise CorruptInputError(f"{disk.show(folder)}: unknown class folder {disk.show(name)!r} "
                                        f"(not in sources.{self.id}.labels of taxonomy.yaml)")
        yield from super().records(root)

    def input_files(self, root: Path) -> Iterator[Path]:
        self.levels = ("class",) if self.detect(root) == "by_class" else ("patient", "class")
        yield from super().input_files(root)

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/HRLS/`` in the ``by_patient`` layout: three patients with class folders in
        several spellings (``segmented neutrophils``, ``Lymphocyte, variant``, ``blast, no lineage
        spec``, ``giant thrombocyte``), a ``.DS_Store``, a README next to the patients and a
        non-image file inside a class folder."""
        root = Path(out) / "HRLS"
        plan = {"P01": [("segmented neutrophils", 2), ("Lymphocyte, variant", 1)],
                "P02": [("blast, no lineage spec", 2), ("giant thrombocyte", 1)],
                "P17": [("normoblast", 1), ("segmented neutrophils", 1)]}
        truth: dict[str, FakeSample] = {}
        k = 0
        for patient, classes in plan.items():
            for cls, n in classes:
                for j in range(n):
                    rel = f"{patient}/{cls}/{patient}_{k:04d}.jpg"
                    (root / patient / cls).mkdir(parents=True, exist_ok=True)
                    kind = "platelet" if "thrombocyte" in cls else "rbc" if cls == "normoblast" else "wbc"
                    (root / rel).write_bytes(syn.encode(syn.single_cell(48 + 4 * j, kind, seed * 100 + k), "JPEG", quality=90))
                    truth[rel] = FakeSample(rel, label=cls, group_id=patient)
                    k += 1
        (root / "P01" / "segmented neutrophils" / "notes.txt").write_text("scan log\n")
        (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / "README.txt").write_text("HRLS dataset\n")
        return FakeTruth(root=root, samples=truth)


ADAPTER = BodzasHrlsAdapter
