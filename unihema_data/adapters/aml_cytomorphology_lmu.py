"""AML-Cytomorphology_LMU (Matek et al. 2019, Nature Machine Intelligence 1:538; TCIA
doi:10.7937/tcia.2019.36f5o9ld): 18,365 single-cell crops of peripheral blood smears (100 AML
patients, 100 controls), 15 morphological classes, one folder per class.

Native layout (TCIA package; ``locate`` accepts up to two levels above the root)::

    <root>/annotations.dat                 <CLASS>/<CLASS>_NNNN.tiff <label> <reannot1> <reannot2>
    <root>/abbreviations.txt               code -> meaning (documentation only)
    <root>/<CLASS>/<CLASS>_NNNN.tiff       BAS EBO EOS KSC LYA LYT MMZ MOB MON MYB MYO NGB NGS PMB PMO

Conventions:
* Label = the class folder's code, verbatim (``labels`` table of ``taxonomy.yaml``). Beware:
  ``MYB`` = myelocyte but ``MYO`` = myeloblast; ``PMB`` = bilobed promyelocyte ("bilobled").
* ``annotations.dat`` (one space-separated line per image, LF, no header) must agree: its label
  for the image equals the folder (else an error naming the line). Re-annotations (1,905
  images, two columns; ``nan`` = not re-annotated, ``UNC`` = the re-annotator could not
  decide) keep the original label and are flagged ``reannotated:<r1>,<r2>`` plus
  ``reannotation_differs`` when either differs from the original.
* An image without a line in ``annotations.dat`` is converted from its folder and reported
  (``flagged``); a line without an image (partial download) is reported (``orphaned``).
* No official split, no patient ids in the release: each image is its own group (UNCONFIRMED
  whether images of one patient can be grouped). TIFFs are re-encoded losslessly to PNG.

Evidence: research note ``datasets-classification.md`` §5; real sample
``shared/real-samples/aml_cytomorphology_lmu`` (``annotations.dat``, ``abbreviations.txt``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import ClassFolderAdapter, FileRecord

CLASSES = ("BAS", "EBO", "EOS", "KSC", "LYA", "LYT", "MMZ", "MOB", "MON", "MYB", "MYO", "NGB", "NGS", "PMB", "PMO")
ANNOTATIONS = "annotations.dat"
NOT_REANNOTATED = "nan"


def read_annotations(path: Path) -> dict[str, tuple[int, str, str, str]]:
    """``annotations.dat``: image path -> (line number, label, re-annotation 1, re-annotation 2)."""
    out: dict[str, tuple[int, str, str, str]] = {}
    for lineno, line in disk.read_lines(path, "annotation file"):
        f = line.split()
        if len(f) != 4:
            raise CorruptInputError(f"{disk.show(path)}:{lineno}: {len(f)} fields, expected 4 (path label reannot1 reannot2)")
        if f[0] in out:
            raise CorruptInputError(f"{disk.show(path)}:{lineno}: {f[0]} is already listed on line {out[f[0]][0]}")
        out[f[0]] = (lineno, f[1], f[2], f[3])
    return out


class AMLCytomorphologyLMUAdapter(ClassFolderAdapter):
    id = "aml_cytomorphology_lmu"
    version = "1"
    markers = (ANNOTATIONS,)
    classes = CLASSES
    side_files = (ANNOTATIONS, "abbreviations.txt")

    def signature(self, path: Path) -> bool:
        return any((path / c).is_dir() for c in CLASSES)

    def locate(self, raw_dir: Path | str) -> Path:
        try:
            return super().locate(raw_dir)
        except MissingInputError as e:
            start = Path(raw_dir) / self.id if (Path(raw_dir) / self.id).is_dir() else Path(raw_dir)
            lone = [p.parent for p in sorted(start.glob(f"*/{ANNOTATIONS}")) + sorted(start.glob(ANNOTATIONS))][:1]
            hint = (f" Found {disk.show(lone[0] / ANNOTATIONS)} but no class folders ({', '.join(CLASSES[:3])}, ...) "
                    f"next to it: the images are missing (TCIA package not extracted there?).") if lone else ""
            raise MissingInputError(f"{e}{hint}") from None

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.annotations = read_annotations(root / ANNOTATIONS)
        self._unseen = set(self.annotations)

    def records(self, root: Path):
        for rec in super().records(root):
            self._unseen.discard(rec.rel_path)
            if rec.rel_path not in self.annotations:
                self.report.flag(rec.rel_path, f"not listed in {ANNOTATIONS}; label taken from the folder")
            yield rec
        for rel in sorted(self._unseen, key=lambda r: self.annotations[r][0]):
            self.report.orphan(f"{ANNOTATIONS}:{self.annotations[rel][0]}", f"{rel} has no image (partial download?)")

    def flags(self, rec: FileRecord) -> list[str]:
        ann = self.annotations.get(rec.rel_path)
        if ann is None:
            return []
        lineno, label, r1, r2 = ann
        if label != rec.part("class"):
            raise CorruptInputError(f"{ANNOTATIONS}:{lineno}: label {label!r} for {rec.rel_path} contradicts its folder")
        if (r1, r2) == (NOT_REANNOTATED, NOT_REANNOTATED):
            return []
        differs = any(r not in (NOT_REANNOTATED, label) for r in (r1, r2))
        return [f"reannotated:{r1},{r2}"] + (["reannotation_differs"] if differs else [])

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/PKG - AML-Cytomorphology_LMU/AML-Cytomorphology_LMU/`` with TIFF crops in
        six class folders (MYB and MYO both present), ``annotations.dat`` with ``nan``, ``UNC``, an
        agreeing and a differing re-annotation and one line whose image is absent, an
        ``abbreviations.txt`` and a ``.DS_Store``."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "PKG - AML-Cytomorphology_LMU" / "AML-Cytomorphology_LMU"
        plan = [("BAS", "UNC", "UNC"), ("MYB", "nan", "nan"), ("MYO", "MYO", "MYO"), ("MYO", "nan", "nan"),
                ("NGS", "NGB", "NGS"), ("PMB", "nan", "nan"), ("LYT", "nan", "nan")]
        lines, truth = [], {}
        for k, (code, r1, r2) in enumerate(plan):
            rel = f"{code}/{code}_{int(rng.integers(1, 9999)):04d}.tiff"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(syn.encode(syn.single_cell(48, "wbc", seed * 100 + k), "TIFF"))
            lines.append(f"{rel} {code} {r1} {r2}")
            truth[rel] = FakeSample(rel_path=rel, label=code)
        lines.append("EOS/EOS_0001.tiff EOS nan nan")  # listed, image absent: reported as orphaned
        (root / ANNOTATIONS).write_text("\n".join(lines) + "\n", encoding="utf-8")
        (root / "abbreviations.txt").write_text("BAS Basophil\nMYB Myelocyte\nMYO Myeloblast\n", encoding="utf-8")
        (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """Give an image another class in ``annotations.dat`` (contradicts its folder)."""
        path = truth.root / ANNOTATIONS
        lines = path.read_text().splitlines()
        lines[1] = lines[1].replace(" MYB ", " MYO ", 1)
        path.write_text("\n".join(lines) + "\n")
        return path.name


ADAPTER = AMLCytomorphologyLMUAdapter
