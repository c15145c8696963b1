"""LLD, the Large Leukemia Dataset (Rehman et al., Medical Image Analysis 106:103760, 2025,
arXiv:2504.02602): the journal release of LeukemiaAttri with sparse annotation regions.

Everything but the label line is LeukemiaAttri's and is read by the same code
(:class:`~unihema_data.adapters.leukemiaattri.LeukemiaAttriAdapter`: domain folders and release
layouts detected and reported, class names from ``WBC_v1.yaml`` or the built-in 14, file-name
metadata, missing label files refused). Only the label line differs:

    cls xc yc w h px1 px2 py1 py2 a0 a1 a2 a3 a4 a5 a6        16 columns

(README "``cls x y w h px1 px2 py1 py2 a1 ... a6``"; the authors' loader asserts 16 columns and
``train.py`` reads the 7 attributes from ``targets[:, 10:17]``: research note
datasets-detection.md section 1). Conventions:

* Box and attributes as in LeukemiaAttri's 12-column variant (``Cell Size`` first, then the six
  binary attributes, code ``2`` = not annotated). 11/12-column files are the MICCAI release: an
  error saying to use ``leukemiaattri``.
* ``px1 px2 py1 py2``: the sparsely annotated region of the field of view (``utils/loss.py``
  builds ``p_region`` from them), in the documented non-xyxy order x1, x2, y1, y2. The order is
  checked on every line (``px1 <= px2`` and ``py1 <= py2``, else an error naming file and line: a
  release in xyxy order would fail here instead of being misread). Whether the values are
  normalized is UNCONFIRMED: every label file's first line is pre-scanned and
  ``report.info["region_coordinates"]`` says ``normalized`` (all values in [0, 1]), ``absolute
  pixels`` or ``mixed`` (counts of each); a normalized value outside [0, 1] in a file whose other
  values are normalized is an error naming file and line. The region is kept verbatim on the row:
  one flag ``annotated_region:<px1>,<px2>,<py1>,<py2>`` per distinct region of the image (cells
  outside the region are *not annotated*, not absent).
* ``val`` = ``test`` in the LLD YOLO yaml: the published split folders are kept as found; the
  corpus split policy keeps byte-identical copies in one split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import CorruptInputError
from ..formats import yolo
from .leukemiaattri import ATTRS_7, LeukemiaAttriAdapter

REGION = 4
LLD_VARIANTS = {5 + REGION + len(ATTRS_7): ATTRS_7}


def _region_values(tokens, path, line) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(t) for t in tokens)
    except ValueError:
        raise CorruptInputError(f"{path}: line {line}: region values {' '.join(tokens)!r} are not numbers") from None
    if not all(v == v and abs(v) != float("inf") and v >= 0 for v in vals):
        raise CorruptInputError(f"{path}: line {line}: region values {' '.join(tokens)!r} must be finite and >= 0")
    px1, px2, py1, py2 = vals
    if px1 > px2 or py1 > py2:
        raise CorruptInputError(f"{path}: line {line}: region {' '.join(tokens)!r} is not in the documented order "
                                "px1 px2 py1 py2 (px1 <= px2, py1 <= py2)")
    return vals  # type: ignore[return-value]


class LldAdapter(LeukemiaAttriAdapter):
    id = "lld"
    version = "1"
    variants = LLD_VARIANTS
    region_columns = REGION
    foreign_columns = {
        n: f"{n} columns (cls x y w h + {n - 5} attributes) is the MICCAI LeukemiaAttri release, not LLD; "
           "convert it with the `leukemiaattri` adapter" for n in (11, 12)}
    fake_dirs = ("LLD_YOLO/LLD", "LLD")

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        kinds = {"normalized": 0, "absolute pixels": 0}
        for _d, p in self._pairs:
            first = _first_row(p.label)
            if first is None:
                continue
            vals = _region_values(first[1][5:5 + REGION], p.label, first[0])
            kinds["normalized" if max(vals) <= 1.0 else "absolute pixels"] += 1
        used = {k: v for k, v in kinds.items() if v}
        self.region_kind = next(iter(used)) if len(used) == 1 else ("mixed" if used else "")
        self.report.info["region_coordinates"] = (
            "no labelled cell" if not used else
            self.region_kind if len(used) == 1 else "mixed: " + ", ".join(f"{k} {v} files" for k, v in used.items()))

    def region_flags(self, p: yolo.YoloPair, rows) -> list[str]:
        seen: dict[str, None] = {}
        normalized: Optional[bool] = None
        for r in rows:
            vals = _region_values(r.extra[:REGION], p.label, r.line)
            norm = max(vals) <= 1.0
            if normalized is None:
                normalized = norm
            elif normalized and not norm:
                raise CorruptInputError(f"{p.label}: line {r.line}: region {' '.join(r.extra[:REGION])!r} is not "
                                        "normalized but earlier lines of this file are")
            seen.setdefault("annotated_region:" + ",".join(r.extra[:REGION]), None)
        return list(seen)

    def fake_region(self, rng: np.random.Generator, box) -> list:
        """The image's annotated region (px1 px2 py1 py2, normalized; one per image as in the sparse
        annotation protocol, asymmetric so that a swapped order would be noticed)."""
        return ["0.1000", "0.9000", "0.0500", "0.9500"]

    def fake(self, out: Path, seed: int = 0, variant: Optional[int] = None) -> "FakeTruth":  # noqa: F821
        """LeukemiaAttri's fake (layouts, quirks) with 16-column lines: a normalized region
        enclosing each cell between the box and the 7 attributes."""
        return super().fake(out, seed, variant=7 if variant is None else variant)


def _first_row(path: Path):
    from ..formats import disk

    for i, raw in enumerate(disk.read_text(path, "YOLO label file").split("\n"), 1):
        toks = raw.split()
        if toks:
            return i, toks
    return None


ADAPTER = LldAdapter
