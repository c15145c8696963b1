"""PBC (Acevedo et al. 2020, Data in Brief 30:105474; Mendeley Data snkd93bnjr v1).

17,092 single-cell JPEG crops of normal peripheral blood (CellaVision DM96, May-Grünwald-Giemsa),
one folder per class.

Native layout (``locate`` accepts up to two levels above ``PBC_dataset_normal_DIB``)::

    PBC_dataset_normal_DIB/<folder>/<PREFIX>_<anonymised int id>.jpg
    folders: basophil eosinophil erythroblast ig lymphocyte monocyte neutrophil platelet

Conventions:
* Label = the finest native label. The file-name prefix (text before the first ``_``) refines
  the folder: ``neutrophil`` holds ``BNE`` (band), ``SNE`` (segmented) and ``NEUTROPHIL``
  (unspecified); ``ig`` holds ``PMY`` / ``MY`` / ``MMY`` (promyelo-/myelo-/metamyelocyte) and
  ``IG`` (unspecified). When the prefix is one of :data:`PREFIX_FOLDER` the label is the prefix
  *without* the underscore (e.g. ``"BNE"``), mapped by the taxonomy table ``label_prefixes``;
  otherwise it is the folder name (e.g. ``"neutrophil"``), mapped by ``labels``, and the row is
  flagged ``unknown_prefix:<prefix>``.
* The folder is kept in the record through ``sample_id`` (``pbc/<folder>/<file>``). A known
  prefix inside another class's folder (e.g. ``EO_`` in ``neutrophil/``) keeps the prefix label
  and is flagged ``folder_prefix_conflict:<folder>`` (a data quirk, not an error).
* No official split (``source_split`` is empty) and no patient ids in the release: ``group_id`` is
  the image itself (left empty, so the core uses the relative path); the grouped fallback split
  applies.

Quirks handled:
* ``neutrophil/.DS_169665.jpg`` is a macOS ``.DS_Store`` file saved with a ``.jpg`` name: hidden
  files (leading ``.``), ``__MACOSX`` folders and files without an image extension are skipped by
  the class-folder family and listed in the run report (``convert`` summary, ``--verbose``, the
  manifest; :attr:`PBCAdapter.skipped` gives ``(relative path, reason)``).
* 17 groups of byte-identical images, one across classes (``eosinophil/EO_225902.jpg`` ==
  ``neutrophil/BNE_191112.jpg``): both are kept; the core flags ``duplicate_of:`` and keeps them
  in one split.
* Most images are 360x363 (WxH); some are 369x366 or 360x360. Nothing to do (sizes come from the
  image).

Evidence: research note ``datasets-classification.md`` §1 (prefix table; dedup ADR for the
``.DS_`` file and the duplicates); real sample ``shared/real-samples/pbc`` (8 images, 360x363).
Patient grouping: UNCONFIRMED (the release has none).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import ClassFolderAdapter, FileRecord

PBC_DIR = "PBC_dataset_normal_DIB"
FOLDERS = ("basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet")
#: known file-name prefix -> the folder it belongs to
PREFIX_FOLDER = {
    "BA": "basophil",
    "EO": "eosinophil",
    "ERB": "erythroblast",
    "PMY": "ig",
    "MY": "ig",
    "MMY": "ig",
    "IG": "ig",
    "LY": "lymphocyte",
    "MO": "monocyte",
    "BNE": "neutrophil",
    "SNE": "neutrophil",
    "NEUTROPHIL": "neutrophil",
    "PLATELET": "platelet",
}


def file_prefix(name: str) -> Optional[str]:
    """``"BNE_191112.jpg"`` -> ``"BNE"``; ``None`` when the name has no ``_``."""
    stem = Path(name).stem
    return stem.split("_", 1)[0] if "_" in stem else None


def native_label(folder: str, name: str) -> tuple[str, str, list[str]]:
    """``(label, label_table, qc_flags)`` of the image ``<folder>/<name>`` (see module doc)."""
    prefix = file_prefix(name)
    if prefix in PREFIX_FOLDER:
        flags = [] if PREFIX_FOLDER[prefix] == folder else [f"folder_prefix_conflict:{folder}"]
        return prefix, "label_prefixes", flags  # type: ignore[return-value]
    return folder, "labels", [f"unknown_prefix:{prefix or ''}"]


def write_fake_image(path: Path, kind: str, seed: int, size: tuple[int, int] = (360, 363)) -> bytes:
    """A synthetic PBC-like JPEG crop of ``size`` (W, H); returns the bytes written."""
    w, h = size
    data = syn.encode(syn.single_cell(w, kind, seed, size_h=h), "JPEG", quality=85)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


#: the first 16 bytes of a macOS ``.DS_Store`` (the ``Bud1`` header), used by the fake trap file
DS_STORE_BYTES = b"\x00\x00\x00\x01Bud1\x00\x00\x10\x00\x00\x00\x08\x00" + b"\x00" * 48


class PBCAdapter(ClassFolderAdapter):
    id = "pbc"
    version = "2"
    markers = FOLDERS
    classes = FOLDERS
    layout_hint = f"a {PBC_DIR}/ folder with class folders"

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Inputs skipped by the last listing: ``(relative path, reason)`` (the run report's)."""
        return self.report.of("skipped")

    def is_linked_root(self, path: Path) -> bool:
        """WBCAtt (catalog ``images_from: [pbc]``) needs only its five classes: a
        ``PBC_dataset_normal_DIB`` folder with at least one class folder is enough."""
        return path.name == PBC_DIR and any((path / f).is_dir() for f in FOLDERS)

    def label(self, rec: FileRecord) -> str:
        return native_label(rec.part("class"), rec.path.name)[0]

    def label_table(self, rec: FileRecord) -> str:
        return native_label(rec.part("class"), rec.path.name)[1]

    def flags(self, rec: FileRecord) -> list[str]:
        return native_label(rec.part("class"), rec.path.name)[2]

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/PBC_dataset_normal_DIB/<8 folders>/`` with every known prefix (BNE/SNE/
        NEUTROPHIL and PMY/MY/MMY/IG included), the ``neutrophil/.DS_169665.jpg`` trap file, the
        cross-class byte-identical pair ``eosinophil/EO_225902.jpg`` ==
        ``neutrophil/BNE_191112.jpg``, and odd sizes (369x366, 360x360) next to 360x363."""
        rng = np.random.default_rng(seed)
        root = Path(out) / PBC_DIR
        kind = {"platelet": "platelet", "erythroblast": "rbc"}
        files = [
            ("basophil", "BA", (360, 363)),
            ("eosinophil", "EO", (360, 363)),
            ("erythroblast", "ERB", (369, 366)),
            ("ig", "IG", (360, 363)),
            ("ig", "MMY", (360, 360)),
            ("ig", "MY", (360, 363)),
            ("ig", "PMY", (360, 363)),
            ("lymphocyte", "LY", (360, 363)),
            ("monocyte", "MO", (360, 363)),
            ("neutrophil", "NEUTROPHIL", (360, 363)),
            ("neutrophil", "SNE", (369, 366)),
            ("platelet", "PLATELET", (360, 363)),
        ]
        truth: dict[str, FakeSample] = {}
        for k, (folder, prefix, size) in enumerate(files):
            rel = f"{folder}/{prefix}_{int(rng.integers(1000, 999999))}.jpg"
            write_fake_image(root / rel, kind.get(folder, "wbc"), seed * 1000 + k, size)
            truth[rel] = FakeSample(rel_path=rel, label=prefix, label_table="label_prefixes")
        # the real cross-class duplicate: same bytes under two names and folders
        data = write_fake_image(root / "eosinophil" / "EO_225902.jpg", "wbc", seed * 1000 + 99)
        (root / "neutrophil" / "BNE_191112.jpg").write_bytes(data)
        for rel, prefix in (("eosinophil/EO_225902.jpg", "EO"), ("neutrophil/BNE_191112.jpg", "BNE")):
            truth[rel] = FakeSample(rel_path=rel, label=prefix, label_table="label_prefixes")
        (root / "neutrophil" / ".DS_169665.jpg").write_bytes(DS_STORE_BYTES)
        return FakeTruth(root=root, samples=truth)


ADAPTER = PBCAdapter
