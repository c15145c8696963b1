"""APL / AML single-cell images (Kaggle ``eugeneshenderov/acute-promyelocytic-leukemia-apl``;
data of Sidhom et al. 2021, npj Precision Oncology 5:38, PubMed 33990660): 15,517 CellaVision
crops of 106 APL/AML patients in about 20 cell categories.

Native layout (partly UNCONFIRMED; ``locate`` accepts up to two levels above the root)::

    <root>/Signed slides/Patient_<n>/[<folder>/...]<PREFIX>_<id>.jpg     labelled (converted)
    <root>/Unsigned slides/...                                           unlabelled (counted only)

Conventions:
* Label = the file-name prefix (text before the first ``_``), mapped by the taxonomy table
  ``sources.apl_aml_kaggle.label_prefixes`` (``SNE``, ``BNE``, ``BL``, ``PMY``, ``VLY``, ``GT``,
  ``SMU`` ...). The prefix is used, not the folder: users report images mis-sorted into folders.
  An unknown prefix fails the conversion naming it (taxonomy); a name without ``_`` is an error
  naming the file. The folder names met between the patient folder and the images are reported
  (``report.info["folders"]``) so the folder scheme, UNCONFIRMED, becomes visible.
* ``group_id = "patient:Patient_<n>"`` (first path component matching ``Patient_<digits>``):
  every cell of a patient lands in one split (no official split). An image outside a patient
  folder is its own group and is flagged ``no_patient``.
* The patient-level diagnosis (APL vs AML) lives in a file whose name and columns are
  UNCONFIRMED; it is not read: rows keep the catalog's ``leukemia``. The 28 images duplicated
  across categories are found by the core (``duplicate_of:``, ``label_conflict:``).
* Names differing only in case in one folder are an error naming both (they cannot coexist on a
  case-insensitive file system; one would silently replace the other).

Evidence: research note ``datasets-classification.md`` §9 (``Signed slides`` / ``Unsigned
slides``, ``Patient_\\d+``, the prefix list, the mis-sorting note). No real sample.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawSample

SIGNED = "Signed slides"
UNSIGNED = "Unsigned slides"
PATIENT = re.compile(r"^Patient_\d+$")


@dataclass(frozen=True)
class Record:
    rel_path: str
    path: Path
    prefix: str
    patient: str


class AplAmlKaggleAdapter(Adapter):
    id = "apl_aml_kaggle"
    version = "1"
    tasks = ("classification",)
    markers = (SIGNED,)
    layout_hint = f"'{SIGNED}/Patient_<n>/'"

    def signature(self, path: Path) -> bool:
        return any(PATIENT.match(d.name) for d in disk.subdirs(path / SIGNED))

    def _walk(self, folder: Path, root: Path, report) -> Iterator[Path]:
        dirs, files = disk.list_dir(folder, report, root)
        for group in disk.case_collisions(files):
            raise CorruptInputError("file names differ only in case (one would replace the other on a case-insensitive "
                                    "file system): " + ", ".join(disk.show(p) for p in group))
        yield from files
        for d in dirs:
            yield from self._walk(d, root, report)

    def records(self, root: Path) -> Iterator[Record]:
        unsigned = root / UNSIGNED
        if unsigned.is_dir():
            n = sum(1 for f in self._walk(unsigned, root, None) if f.suffix.lower() in disk.IMAGE_SUFFIXES)
            self.report.info["unsigned"] = f"{n} unlabelled images in {UNSIGNED}/ (not converted)"
        folders: Counter = Counter()
        recs = []
        for f in self._walk(root / SIGNED, root, self.report):
            rel = disk.rel(f, root)
            if f.suffix.lower() not in disk.IMAGE_SUFFIXES:
                self.report.skip(rel, f"not an image file (extension {f.suffix or 'none'})")
                continue
            parts = rel.split("/")[1:-1]
            patient = next((p for p in parts if PATIENT.match(p)), "")
            inner = parts[parts.index(patient) + 1:] if patient else parts
            folders["/".join(inner) or "(none)"] += 1
            if "_" not in f.stem:
                raise CorruptInputError(f"{disk.show(f)}: no <PREFIX>_ in the file name (the prefix is the cell class)")
            recs.append(Record(rel, f, f.stem.split("_", 1)[0], patient))
        if not recs:
            raise MissingInputError(f"{self.id}: no images under {disk.show(root / SIGNED)}")
        self.report.info["folders"] = ", ".join(f"{k} ({v})" for k, v in sorted(folders.items()))
        yield from recs

    def parse(self, rec: Record) -> RawSample:
        return RawSample(rel_path=rec.rel_path, image_path=rec.path, label=rec.prefix, label_table="label_prefixes",
                         group_id=f"patient:{rec.patient}" if rec.patient else "",
                         qc_flags=[] if rec.patient else ["no_patient"], annotation_file=disk.show(rec.path))

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/APL/``: two patients under ``Signed slides`` with class sub-folders, one
        image whose prefix disagrees with its folder (mis-sorted: the prefix wins), one image
        outside a patient folder, a ``Thumbs.db``; an ``Unsigned slides/`` patient (counted)."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "APL"
        plan = [("Patient_1", "Blast", "BL"), ("Patient_1", "Promyelocyte", "PMY"), ("Patient_1", "Promyelocyte", "PMY"),
                ("Patient_12", "Neutrophil", "SNE"), ("Patient_12", "Neutrophil", "BNE"), ("Patient_12", "Lymphocyte", "VLY"),
                ("Patient_12", "Lymphocyte", "SMU")]
        truth: dict[str, FakeSample] = {}
        for k, (patient, folder, prefix) in enumerate(plan):
            rel = f"{SIGNED}/{patient}/{folder}/{prefix}_{int(rng.integers(10000, 99999))}{k}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(syn.encode(syn.single_cell(60, "wbc", seed * 100 + k), "JPEG", quality=90))
            truth[rel] = FakeSample(rel_path=rel, label=prefix, label_table="label_prefixes", group_id=f"patient:{patient}")
        rel = f"{SIGNED}/EO_{int(rng.integers(10000, 99999))}.jpg"
        (root / rel).write_bytes(syn.encode(syn.single_cell(60, "wbc", seed * 100 + 50), "JPEG", quality=90))
        truth[rel] = FakeSample(rel_path=rel, label="EO", label_table="label_prefixes")
        (root / SIGNED / "Patient_1" / "Blast" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
        (root / UNSIGNED / "Patient_30").mkdir(parents=True)
        (root / UNSIGNED / "Patient_30" / "cell_1.jpg").write_bytes(syn.encode(syn.single_cell(60, "wbc", seed + 77), "JPEG"))
        return FakeTruth(root=root, samples=truth)


ADAPTER = AplAmlKaggleAdapter
