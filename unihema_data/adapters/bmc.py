"""Bone marrow cytomorphology, BMC (Matek et al. 2021, Blood 138(20):1917; TCIA
``Bone-Marrow-Cytomorphology_MLL_Helmholtz_Fraunhofer``, doi:10.7937/TCIA.AXH3-T579): 171,375
single-cell JPEG crops (250x250) of bone-marrow smears of 945 patients, 21 classes.

Native layout (``locate`` accepts up to two levels above the root)::

    BM_cytomorphology_data/abbreviations.csv               code -> meaning (documentation only)
    BM_cytomorphology_data/<CODE>/<CODE>_NNNNN.jpg         classes with <= 1,000 images
    BM_cytomorphology_data/<CODE>/<start>-<end>/<CODE>_NNNNN.jpg   larger classes, e.g. ART/0001-1000/
    <CODE>: ABE ART BAS BLA EBO EOS FGC HAC KSC LYI LYT MMZ MON MYB NGB NGS NIF OTH PEB PLM PMO

Conventions:
* Label = the class folder (the first folder under the root), verbatim, mapped by BMC's **own**
  alias table ``sources.bmc.labels``: the codes are LMU's style but not LMU's meanings in places
  (BMC has no ``MYO``; blasts are ``BLA``; ``FGC`` = faggot cell, ``NIF`` = not identifiable,
  ``ART`` = artefact). Never share the LMU table.
* Range sub-folders (``<start>-<end>``, digits) are entered; any other sub-folder is skipped and
  reported. The folder walk does not depend on which classes are large: both layouts are read
  for every class.
* File-name code (text before ``_``) differing from the class folder is kept (the folder wins)
  and flagged ``file_code_conflict:<code>``; an image number outside its range folder is flagged
  ``outside_range_folder:<folder>``. Both are data quirks, reported, not errors.
* No official split; no patient ids in the release: each image is its own group (UNCONFIRMED
  whether images can be grouped by patient). Uni-Hema's own ``BM_cytomorphology_data_train.json``
  split is not part of the release and is not used.

Detected at run time and reported: which classes use range sub-folders
(``report.info["range_folders"]``) and the classes present (``report.info["classes"]``), so a
partial download is visible.

Evidence: research note ``datasets-classification.md`` §6 (layout and counts from
openmedlab/Awesome-Medical-Dataset ``resources/BoneMarrowCytomorphology.md``); the exact range
folder spelling (``0001-1000``) and ``abbreviations.csv`` at the root are UNCONFIRMED. No real
sample is available.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import ClassFolderAdapter, FileRecord

CLASSES = ("ABE", "ART", "BAS", "BLA", "EBO", "EOS", "FGC", "HAC", "KSC", "LYI", "LYT", "MMZ", "MON", "MYB",
           "NGB", "NGS", "NIF", "OTH", "PEB", "PLM", "PMO")
#: codes of BMC that LMU does not have (the signature needs one of them)
BMC_ONLY = ("ABE", "ART", "BLA", "FGC", "HAC", "LYI", "NIF", "OTH", "PEB", "PLM")
RANGE = re.compile(r"^(\d+)-(\d+)$")
NUMBER = re.compile(r"_(\d+)$")


class BmcAdapter(ClassFolderAdapter):
    id = "bmc"
    version = "1"
    markers = ("[A-Z][A-Z][A-Z]",)
    classes = CLASSES
    side_files = ("abbreviations.csv",)
    layout_hint = "BM_cytomorphology_data/ with 3-letter class folders"

    def signature(self, path: Path) -> bool:
        """A BMC-only code folder (ART, BLA, NIF, ...) and no LMU ``annotations.dat``."""
        return not (path / "annotations.dat").exists() and any((path / c).is_dir() for c in BMC_ONLY)

    def _class_folders(self, root: Path, report=None) -> Iterator[tuple[Path, str, str]]:
        """``(folder, class code, range folder or "")`` for every folder holding images."""
        for cls_dir, parts in self._leaf_folders(root, root, report):
            yield cls_dir, dict(parts)["class"], ""
            for d in disk.subdirs(cls_dir):
                if RANGE.match(d.name):
                    yield d, dict(parts)["class"], d.name

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        ranged, present = set(), set()
        for _folder, code, rng in self._class_folders(root):
            present.add(code)
            if rng:
                ranged.add(code)
        self.report.info["classes"] = f"{len(present)} of {len(CLASSES)}: {', '.join(sorted(present))}"
        self.report.info["range_folders"] = ", ".join(sorted(ranged)) or "none"

    def records(self, root: Path) -> Iterator[FileRecord]:
        found = False
        for folder, code, rng in self._class_folders(root, self.report):
            dirs, visible = disk.list_dir(folder, self.report, root)
            wanted = {s.lower() for s in self.image_suffixes}
            files = [f for f in visible if f.suffix.lower() in wanted]
            for f in visible:
                if f.suffix.lower() not in wanted and f.name not in self.side_files:
                    self.report.skip(disk.rel(f, root), f"not an image file (extension {f.suffix or 'none'})")
            for d in dirs:
                if rng or not RANGE.match(d.name):
                    self.report.skip(disk.rel(d, root) + "/", "unexpected sub-folder (not a <start>-<end> range)")
            disk.refuse_case_collisions(files)  # one policy in every family: an error naming both
            for f in files:
                found = True
                yield FileRecord(disk.rel(f, root), f, (("class", code), ("range", rng)))
        if not found:
            raise MissingInputError(f"{self.id}: no images under {disk.show(root)} (expected <CODE>/[<start>-<end>/]<image>)")

    def flags(self, rec: FileRecord) -> list[str]:
        out = []
        stem = rec.path.stem
        code = stem.split("_", 1)[0] if "_" in stem else ""
        if code != rec.part("class"):
            out.append(f"file_code_conflict:{code}")
        m, r = NUMBER.search(stem), RANGE.match(rec.part("range"))
        if r and (m is None or not int(r.group(1)) <= int(m.group(1)) <= int(r.group(2))):
            out.append(f"outside_range_folder:{rec.part('range')}")
        return out

    def input_files(self, root: Path) -> Iterator[Path]:
        for folder, _code, _rng in self._class_folders(root):
            yield from disk.list_files(folder, self.image_suffixes)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/BM_cytomorphology_data/`` with flat class folders (FGC, LYI, BLA, MYB)
        and range sub-folders (``ART/0001-1000``, ``ART/1001-2000``, ``NGS/0001-1000``), an
        ``abbreviations.csv``, an image whose file-name code differs from its folder, one
        outside its range folder, a ``.DS_Store`` and a stray ``ART/notes/`` folder."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "BM_cytomorphology_data"
        plan = [("ART/0001-1000", "ART", 12), ("ART/1001-2000", "ART", 1500), ("NGS/0001-1000", "NGS", 7),
                ("FGC", "FGC", 3), ("LYI", "LYI", 41), ("BLA", "BLA", 900), ("MYB", "MYB", 5),
                ("PEB", "EBO", 2), ("NGS/0001-1000", "NGS", 2500)]
        truth: dict[str, FakeSample] = {}
        for k, (folder, code, num) in enumerate(plan):
            rel = f"{folder}/{code}_{num:05d}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            kind = "rbc" if folder.startswith("PEB") else "wbc"
            (root / rel).write_bytes(syn.encode(syn.single_cell(50, kind, seed * 100 + k + int(rng.integers(0, 50)) * 1000),
                                                "JPEG", quality=90))
            truth[rel] = FakeSample(rel_path=rel, label=folder.split("/")[0])
        (root / "abbreviations.csv").write_text("Abbreviation,Meaning\nART,Artefact\nFGC,Faggott cell\nMYB,Myelocyte\n")
        (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / "ART" / "notes").mkdir()
        (root / "ART" / "notes" / "readme.txt").write_text("not an image folder\n")
        return FakeTruth(root=root, samples=truth)


ADAPTER = BmcAdapter
