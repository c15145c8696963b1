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
  files (leading ``.``), ``__MACOSX`` folders and files without an image extension are skipped with
  a logged warning and listed in :attr:`PBCAdapter.skipped` (``(relative path, reason)``).
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

import logging
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, MissingInputError, RawSample

log = logging.getLogger(__name__)

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
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
IGNORED_DIRS = ("__MACOSX",)


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


def find_pbc_parent(starts: Iterable[Path]) -> Optional[Path]:
    """The first folder holding ``PBC_dataset_normal_DIB/`` found at, one or two levels below each
    of ``starts`` (searched in order, children sorted). ``None`` when there is none."""
    for start in starts:
        frontier = [start]
        for _depth in range(3):
            for p in frontier:
                if (p / PBC_DIR).is_dir():
                    return p
            frontier = [c for p in frontier for c in _dirs(p)]
    return None


def _dirs(p: Path) -> list[Path]:
    try:
        return sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".") and c.name != PBC_DIR)
    except OSError:
        return []


def write_fake_image(path: Path, kind: str, seed: int, size: tuple[int, int] = (360, 363)) -> bytes:
    """A synthetic PBC-like JPEG crop of ``size`` (W, H); returns the bytes written."""
    w, h = size
    data = syn.encode(syn.single_cell(w, kind, seed, size_h=h), "JPEG", quality=85)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


#: the first 16 bytes of a macOS ``.DS_Store`` (the ``Bud1`` header), used by the fake trap file
DS_STORE_BYTES = b"\x00\x00\x00\x01Bud1\x00\x00\x10\x00\x00\x00\x08\x00" + b"\x00" * 48


class PBCAdapter(Adapter):
    id = "pbc"
    version = "1"
    tasks = ("classification",)
    markers = FOLDERS

    def __init__(self) -> None:
        #: files skipped by the last :meth:`iter_samples` run: ``(relative path, reason)``
        self.skipped: list[tuple[str, str]] = []

    def _class_dirs(self, root: Path) -> list[Path]:
        out = []
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            if d.name.startswith(".") or d.name in IGNORED_DIRS:
                self._skip(root, d, "hidden or archive-metadata folder")
                continue
            out.append(d)
        return out

    def _skip(self, root: Path, p: Path, reason: str) -> None:
        rel = p.relative_to(root).as_posix()
        self.skipped.append((rel, reason))
        log.warning("%s: skipping %s (%s)", self.id, rel, reason)

    def _images(self, root: Path, folder: Path) -> list[Path]:
        out = []
        for f in sorted(folder.iterdir()):
            if f.is_dir():
                self._skip(root, f, "unexpected sub-folder")
            elif f.name.startswith("."):
                self._skip(root, f, "hidden file (e.g. a .DS_Store saved with an image extension)")
            elif f.suffix.lower() not in IMAGE_SUFFIXES:
                self._skip(root, f, "not an image file name")
            else:
                out.append(f)
        return out

    def input_files(self, root: Path) -> Iterator[Path]:
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            yield from sorted(f for f in d.iterdir() if f.is_file())

    def iter_samples(self, root: Path) -> Iterator[RawSample]:
        self.skipped = []
        dirs = self._class_dirs(root)
        if not dirs:
            raise MissingInputError(f"{self.id}: no class folders under {root}")
        for d in dirs:
            for img in self._images(root, d):
                label, table, flags = native_label(d.name, img.name)
                yield RawSample(
                    rel_path=img.relative_to(root).as_posix(),
                    image_path=img,
                    label=label,
                    label_table=table,
                    annotation_file=str(img),
                    qc_flags=flags,
                )

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
