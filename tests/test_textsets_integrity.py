"""Issue 17, text sets: polar questions answered Yes/No first, two-claim questions balanced,
a Yes restates every asked attribute; checked by the verifier, on every real WBCAtt annotation."""
from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import pytest

from unihema_data.schema import label_name
from unihema_data.taxonomy import load_taxonomy
from unihema_data.textsets import vqa as vqa_mod
from unihema_data.textsets.common import rng_for, truth_of
from unihema_data.textsets.templates import OPEN_QUESTIONS
from unihema_data.textsets.verify import (
    BALANCE_RANGE, VQA_PREFIX, check_balance, is_yesno_question, parse, split_polarity, verify_answer,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / "wbcatt" / "submission"
ATTRS = ("cell_size", "cell_shape", "nucleus_shape", "nuclear_cytoplasmic_ratio", "chromatin_density",
         "cytoplasm_vacuole", "cytoplasm_texture", "cytoplasm_colour", "granule_type", "granule_colour", "granularity")


def _truths() -> list[tuple[str, dict]]:
    tax = load_taxonomy()
    out = []
    for split in ("train", "val", "test"):
        with open(REAL / f"pbc_attr_v1_{split}.csv", newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                label = tax.map_label("wbcatt", r["label"])
                label, _ = tax.refine_label("wbcatt", label, r["img_name"].split("_", 1)[0])
                attrs = [{"name": n, "value": v} for n, v in (tax.map_attribute("wbcatt", a, r[a]) for a in ATTRS)]
                out.append((r["img_name"], truth_of(tax.class_id(label), attrs)))
    return out


def test_polar_question_detection():
    assert is_yesno_question("Q: Is the cytoplasm vacuolated?")
    assert is_yesno_question("Does this cell have light blue, non-vacuolated cytoplasm?")
    assert not is_yesno_question("Q: Is this a lymphocyte or a monocyte?")  # a choice
    assert not is_yesno_question("What is the colour of the cytoplasm?")
    # every open template is a wh-question, so its statement answer is right
    assert not [q for qs in OPEN_QUESTIONS.values() for q in qs if is_yesno_question(q)]


def test_verifier_rejects_the_three_shortcuts():
    t = {"cytoplasm_colour": "light_blue", "cytoplasm_vacuoles": "absent", "cell_shape": "round"}
    q = VQA_PREFIX + "Does this cell have light blue, non-vacuolated cytoplasm?"
    assert len(parse(q[len(VQA_PREFIX):]).claims) == 2
    # a polar question answered with a bare statement
    assert "a yes/no question answered without Yes/No first" in verify_answer(
        "The cytoplasm has no vacuoles.", "open", "cytoplasm_vacuoles", t, question=VQA_PREFIX + "Is the cytoplasm vacuolated?")
    # a Yes that confirms only one of the two asked attributes
    bad = verify_answer("Yes, the cell has light blue cytoplasm.", "yesno", "cytoplasm_colour", t, "light_blue", q)
    assert any("does not restate" in p for p in bad)
    assert verify_answer("Yes, the cell has light blue, non-vacuolated cytoplasm.", "yesno", "cytoplasm_colour", t,
                         "light_blue", q) == []
    # two-claim questions all answered Yes
    assert check_balance({2: {"yes": 100}}) and check_balance({2: {"yes": 69, "no": 31}}) == []
    assert check_balance({1: {"yes": 100}}) == []  # one-claim questions are balanced per attribute elsewhere


@pytest.mark.skipif(not REAL.is_dir(), reason="real WBCAtt CSVs absent")
def test_real_annotations_every_pair_passes_and_two_claim_questions_are_balanced():
    truths = _truths()
    assert len(truths) == 10298
    by_claims: dict[int, Counter] = {}
    polar_open = 0
    for name, truth in truths[::4]:  # a quarter of the 10,298 cells keeps this under ~15 s
        rng = rng_for(0, "wbcatt_vqa", name)
        for spec in vqa_mod.plan(truth, "wbcatt", ("open", "yesno", "choice"), 3, rng):
            pair = vqa_mod.render(spec, truth, rng)
            assert vqa_mod.check(pair, truth) == [], (name, pair.question, pair.answer)
            pol, _ = split_polarity(pair.answer)
            if is_yesno_question(pair.question):
                assert pol is not None
                polar_open += spec.qtype == "open"
            if spec.qtype == "yesno":
                by_claims.setdefault(vqa_mod.claims_of(pair.question), Counter())["yes" if pol else "no"] += 1
    assert polar_open == 0
    multi = Counter()
    for k, c in by_claims.items():
        if k >= 2:
            multi.update(c)
    assert multi["yes"] + multi["no"] > 200
    share = multi["yes"] / (multi["yes"] + multi["no"])
    assert BALANCE_RANGE[0] <= share <= BALANCE_RANGE[1], (share, by_claims)
    assert check_balance(by_claims) == []
    # deterministic: the same cell gives the same pairs
    name, truth = truths[0]
    a = [vqa_mod.render(s, truth, r).answer for r in [rng_for(0, "x", name)] for s in vqa_mod.plan(truth, "wbcatt", ("yesno",), 3, r)]
    b = [vqa_mod.render(s, truth, r).answer for r in [rng_for(0, "x", name)] for s in vqa_mod.plan(truth, "wbcatt", ("yesno",), 3, r)]
    assert a == b
    assert label_name(0) and random  # noqa: B018
