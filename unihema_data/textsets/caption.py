"""WBCAtt captions: one faithful morphology description per cell (HemBLIP-style interpretable
captions): the cell type, then every annotated attribute exactly once, nothing else."""
from __future__ import annotations

import random

from .common import Truth, pick
from .lexicon import CELL_TYPE
from .templates import (
    CAPTION_BODIES, CAPTION_OPENERS, CAPTION_PROMPT, CAPTION_SECOND, CELL_ORDER, CYTO_ORDER, capitalize, describe_items,
    join_list, phrase_for,
)
from .verify import verify_statement

__all__ = ["CAPTION_PROMPT", "describe_cell", "check"]


def describe_cell(truth: Truth, rng: random.Random) -> tuple[str, list[str]]:
    """``(caption, template ids)``; ``truth`` must contain ``cell_type``."""
    np, fid = phrase_for(CELL_TYPE, truth[CELL_TYPE], rng)
    opener, oid = pick(rng, CAPTION_OPENERS, "caption.open")
    sentences = [opener.format(np=np, NP=capitalize(np))]
    ids = [oid, f"phrase.{fid}"]
    first = [p for p, _ in describe_items(truth, CELL_ORDER, rng)]
    second_items = describe_items(truth, CYTO_ORDER, rng)
    second = [p for p, _ in second_items]
    ids += [f"phrase.{f}" for _, f in second_items]
    if first:
        body, bid = pick(rng, CAPTION_BODIES, "caption.body")
        sentences.append(body.format(list=join_list(first)))
        ids.append(bid)
    if second:
        tmpl, sid = pick(rng, CAPTION_SECOND if first else CAPTION_BODIES, "caption.second" if first else "caption.body")
        sentences.append(tmpl.format(list=join_list(second)))
        ids.append(sid)
    return " ".join(sentences), ids


def check(text: str, truth: Truth) -> list[str]:
    return verify_statement(text, truth, exact=True)
