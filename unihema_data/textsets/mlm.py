"""LeukemiaAttri-MLM: a faithful description of a field of view's annotated cells, and masked
versions of it with T5 sentinels.

Description: "This field of view contains N annotated cells[ and K artifacts][; M of them are
described]." then one sentence per described cell, in reading order (top to bottom by third of
the image, then left to right): "Cell i (<location>) is a <type> with <attributes>." The location
is the 3x3 grid cell of the box centre ("top left" ... "centre" ... "bottom right"). Attributes
annotated as ``not_annotated`` are left out, never invented. Artifacts (class ``None``) are counted,
not described.

Masking: value spans (cell types and attribute values, as found by the verifier's parser) are
replaced by ``<extra_id_0>``, ``<extra_id_1>``, ...; the target is
``<extra_id_0> span0 <extra_id_1> span1 ... <extra_id_n>`` (T5 span corruption format). The
masked text carries the ``mask: `` prefix.
"""
from __future__ import annotations

from ..schema import label_name

import random
import re
from dataclasses import dataclass
from typing import Optional

from .common import pick, truth_of
from .lexicon import CELL_TYPE, location_name
from .templates import CELL_ORDER, CYTO_ORDER, FOV_CELL, FOV_CELL_BARE, FOV_COUNTS, describe_items, join_list, phrase_for
from .verify import MLM_PREFIX, SENTINEL, CellTruth, parse, unmask, verify_fov

ARTIFACT = "artifact"
MAX_SENTINELS = 100  # T5 has <extra_id_0> ... <extra_id_99>
_ARTICLE = re.compile(r"(?<![\w-])(an?) ", re.IGNORECASE)


@dataclass
class FieldOfView:
    cells: list[CellTruth]    # described cells, reading order
    n_cells: int              # all annotated non-artifact objects
    n_artifacts: int
    unverbalizable: list[str]  # categories without a phrase (the image is skipped)


def field_of_view(row: dict, max_cells: int) -> FieldOfView:
    """The cells of a converted LeukemiaAttri row, in reading order, with their truth."""
    W, H = max(1, row["width"]), max(1, row["height"])
    objs = row["objects"]
    cells, arts, bad = [], 0, []
    for i, cat in enumerate(objs["category"]):
        if not isinstance(cat, str):
            cat = label_name(cat)
        if cat == ARTIFACT:
            arts += 1
            continue
        t = truth_of(cat, objs["attributes"][i])
        if CELL_TYPE not in t:
            bad.append(cat)
            continue
        x, y, w, h = objs["bbox"][i]
        cx, cy = x + w / 2, y + h / 2
        r, c = min(2, int(3 * cy / H)), min(2, int(3 * cx / W))
        cells.append((r, cx, cy, CellTruth(location_name(r, c), t)))
    cells.sort(key=lambda t: t[:3])
    n = len(cells) + len(bad)
    return FieldOfView([c[3] for c in cells[:max_cells]], n, arts, bad)


def describe_fov(fov: FieldOfView, rng: random.Random) -> tuple[str, list[str]]:
    """``(description, template ids)``."""
    n, k = fov.n_cells, len(fov.cells)
    count = f"{n} annotated cell{'s' if n != 1 else ''}"
    if fov.n_artifacts:
        count += f" and {fov.n_artifacts} artifact{'s' if fov.n_artifacts != 1 else ''}"
    if k < n:
        count += f"; {k} of them {'are' if k != 1 else 'is'} described"
    tmpl, cid = pick(rng, FOV_COUNTS, "fov.count")
    parts, ids = [tmpl.format(count=count)], [cid]
    for i, cell in enumerate(fov.cells, 1):
        np, _ = phrase_for(CELL_TYPE, cell.truth[CELL_TYPE], rng)
        items = [p for p, _ in describe_items(cell.truth, CELL_ORDER + CYTO_ORDER, rng)]
        if items:
            t, tid = pick(rng, FOV_CELL, "fov.cell")
        else:
            t, tid = pick(rng, FOV_CELL_BARE, "fov.cell_bare")
        parts.append(t.format(i=i, loc=cell.location, np=np, list=join_list(items)))
        ids.append(tid)
    return " ".join(parts), ids


def mask(text: str, rng: random.Random, fraction: float) -> Optional[tuple[str, str, int]]:
    """``(masked_text, target_text, n_masks)``: a random ``fraction`` (at least one) of the value
    spans replaced by sentinels; ``None`` when the text has no maskable span."""
    spans = parse(text).spans
    if not spans:
        return None
    k = min(MAX_SENTINELS - 1, len(spans), max(1, round(fraction * len(spans))))
    chosen = sorted(rng.sample(range(len(spans)), k))
    masked, target, pos = [], [], 0
    for j, si in enumerate(chosen):
        s = spans[si]
        start = s.start
        art = _ARTICLE.search(text, max(pos, start - 4), start)
        if art is not None and art.end() == start:  # "a"/"an" would leak the masked word's first sound
            start = art.start(1)
        masked.append(text[pos:start] + SENTINEL.format(j))
        target.append(f"{SENTINEL.format(j)} {text[start:s.end]}")
        pos = s.end
    masked.append(text[pos:])
    target.append(SENTINEL.format(k))
    return MLM_PREFIX + "".join(masked), " ".join(target), k


def check_description(text: str, fov: FieldOfView) -> list[str]:
    return verify_fov(text, fov.cells, fov.n_cells, fov.n_artifacts)


def check_masked(masked: str, target: str, fov: FieldOfView, original: str) -> list[str]:
    full, problems = unmask(masked, target)
    if full is None:
        return problems
    if full != original:
        problems.append("masked text + target do not rebuild the description")
    return problems + check_description(full, fov)
