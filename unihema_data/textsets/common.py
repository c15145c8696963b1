"""Shared helpers of the text-set generators: ground truth of a row, per-image RNG, value sets."""
from __future__ import annotations

from ..schema import label_name

import random
from functools import lru_cache
from typing import Mapping, Optional

from ..schema import attrs_to_dict
from ..taxonomy import NOT_ANNOTATED, load_taxonomy
from .lexicon import CELL_TYPE, CELL_TYPE_WORDS


def truth_of(label: str | int | None, attributes: list[dict] | None) -> dict[str, str]:
    """attr -> value of one cell: annotated attributes (``not_annotated`` left out) and, when the
    label has a verbalization, ``cell_type``. ``label`` is a canonical name or a ``ClassLabel`` id."""
    if not isinstance(label, str):
        label = label_name(label)
    out = {a: v for a, v in attrs_to_dict(attributes).items() if v and v != NOT_ANNOTATED}
    if label in CELL_TYPE_WORDS:
        out[CELL_TYPE] = label
    return out


def rng_for(seed: int, textset: str, sample_id: str, n: int = 0) -> random.Random:
    """A per-image RNG: output for one image depends only on (seed, text set, image id), never on
    processing order or on the other images (``random.Random`` seeds strings via SHA-512)."""
    return random.Random(f"{seed}\x00{textset}\x00{sample_id}\x00{n}")


@lru_cache(maxsize=None)
def source_values(source: str) -> dict[str, tuple[str, ...]]:
    """attr -> canonical values the source's alias table can produce (``not_annotated`` excluded),
    plus ``cell_type`` -> canonical labels of its ``labels`` table; sorted for determinism."""
    tax = load_taxonomy()
    raw = tax.source_aliases(source)
    out: dict[str, set[str]] = {}
    for spec in (raw.get("attributes") or {}).values():
        vals = {str(v) for v in (spec.get("values") or {}).values() if str(v) != NOT_ANNOTATED}
        out.setdefault(spec["name"], set()).update(vals)
    out[CELL_TYPE] = {str(v) for v in (raw.get("labels") or {}).values() if str(v) in CELL_TYPE_WORDS}
    return {a: tuple(sorted(v)) for a, v in out.items()}


def negatives(source: str, attr: str, value: str) -> list[str]:
    """Values to ask about in a negative yes/no or choice question: the attribute's other values
    in this source, never ``none`` (questions about absent granules read badly); for cell types,
    labels of another 5-part class (a band neutrophil *is* a neutrophil)."""
    vals = source_values(source).get(attr, ())
    if attr != CELL_TYPE:
        return [v for v in vals if v != value and v != "none"]
    tax = load_taxonomy()
    mine = tax.rollup(value) if tax.is_known_label(value) else None
    out = []
    for v in vals:
        if v == value:
            continue
        other = tax.rollup(v) if tax.is_known_label(v) else None
        if mine is not None and other == mine:
            continue
        out.append(v)
    return out


def pick(rng: random.Random, options, prefix: str) -> tuple[str, str]:
    """A template from ``options`` and its id ``<prefix>.<index>``."""
    i = rng.randrange(len(options))
    return options[i], f"{prefix}.{i}"


def opt(value: Optional[int], default: int) -> int:
    return default if value is None else value


def lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


Truth = Mapping[str, str]
