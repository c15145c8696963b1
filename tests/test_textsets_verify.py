"""Text sets: phrase tables, templates and the verifier (no OUT folder needed)."""
from __future__ import annotations

import itertools
import random
import re

import pytest

from unihema_data.taxonomy import NOT_ANNOTATED, load_taxonomy
from unihema_data.textsets import caption, mlm, vqa
from unihema_data.textsets.common import negatives, source_values, truth_of
from unihema_data.textsets.lexicon import CELL_TYPE, CELL_TYPE_WORDS, FRAMES, QUESTION_NOUNS, SINGLE_FRAMES
from unihema_data.textsets.templates import OPEN_QUESTIONS, frame_usable
from unihema_data.textsets.verify import (
    CellTruth, parse, question_attributes, unmask, verify_answer, verify_fov, verify_question, verify_statement,
)

SOURCES = ("wbcatt", "leukemiaattri")

NEUTROPHIL = {
    "cell_size": "big", "cell_shape": "round", "nucleus_shape": "unsegmented_band", "nc_ratio": "low",
    "chromatin": "condensed", "cytoplasm_vacuoles": "absent", "cytoplasm_texture": "clear",
    "cytoplasm_colour": "light_blue", "granule_type": "small", "granule_colour": "pink", "granularity": "present",
}


def _truth(label="neutrophil_band", **over):
    attrs = {**NEUTROPHIL, **over}
    return truth_of(label, [{"name": k, "value": v} for k, v in attrs.items()])


def _used_attributes() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for s in SOURCES:
        for a, vals in source_values(s).items():
            out.setdefault(a, set()).update(vals)
    return out


# ------------------------------------------------------------------------------ coverage + injectivity
def test_every_taxonomy_attribute_and_value_of_the_sources_has_phrases_and_questions():
    tax = load_taxonomy()
    used = _used_attributes()
    attrs = [a for a in used if a != CELL_TYPE]
    assert set(attrs) >= {"cell_size", "chromatin", "nucleoli", "granule_colour"}  # both sources are read
    for a in attrs:
        assert a in tax.attributes, a
        assert set(used[a]) <= set(tax.attributes[a].values)
        assert OPEN_QUESTIONS.get(a), f"no open question for {a}"
        for v in used[a]:
            frames = [f for f in SINGLE_FRAMES.get(a, ()) if frame_usable(f, {a: v})]
            assert frames, f"no single-claim phrase for {a}={v}"
    assert NOT_ANNOTATED not in {v for vs in used.values() for v in vs}


def test_every_label_of_the_sources_has_a_cell_type_phrase():
    tax = load_taxonomy()
    for s in SOURCES:
        for table in tax.label_tables(s):
            for label in set(tax.source_aliases(s)[table].values()):
                assert label == "artifact" or label in CELL_TYPE_WORDS, (s, table, label)


def _renderings():
    """Every frame rendered with every value combination and every word variant."""
    for fr in FRAMES:
        slots = fr.slots
        choices = []
        for s in slots:
            choices.append([(s, v, w) for v, ws in fr.words_for(s).items() for w in ws])
        for combo in itertools.product(*choices) if choices else [()]:
            values = {s: v for s, v, _ in combo}
            words = {s: w for s, _, w in combo}
            pat = fr.pattern[2:] if fr.countable else fr.pattern
            text = re.sub(r"\{(\w+)\}", lambda m: words[m.group(1)], pat)
            claims = {**values, **fr.fixed}
            yield fr, text, claims


def test_phrase_tables_are_injective_every_phrase_parses_back_to_exactly_its_claims():
    seen: dict[str, dict] = {}
    n = 0
    for fr, text, claims in _renderings():
        key = text.lower()
        assert seen.setdefault(key, claims) == claims, f"{text!r} means both {seen[key]} and {claims}"
        p = parse(text)
        assert dict(p.claims) == claims and len(p.claims) == len(claims), (fr.id, text, p.claims)
        assert p.unparsed == [], (text, p.unparsed)
        n += 1
    assert n > 500


def test_value_words_are_injective_per_slot():
    for fr in FRAMES:
        for s in fr.slots:
            words = [w.lower() for ws in fr.words_for(s).values() for w in ws]
            assert len(words) == len(set(words)), (fr.id, s)


def test_open_questions_name_exactly_their_attribute():
    for attr, qs in OPEN_QUESTIONS.items():
        assert len(qs) >= 2, attr
        for q in qs:
            assert question_attributes(q) == {attr}, (q, question_attributes(q))
            assert parse(q).claims == [], q
    assert set(OPEN_QUESTIONS) == set(QUESTION_NOUNS)


# ------------------------------------------------------------------------------ the verifier rejects wrong texts
@pytest.mark.parametrize("text,why", [
    ("This is a band neutrophil. It has a small cell size.", "contradicts"),             # wrong value
    ("This is an eosinophil.", "contradicts"),                                          # wrong cell type
    ("This is a band neutrophil with prominent nucleoli.", "not annotated"),             # invented attribute
    ("This is a band neutrophil. The cytoplasm is not clear.", "unverifiable"),          # negation outside a phrase
    ("This is a band neutrophil whose chromatin looks condensed.", "unverifiable"),      # unparsed claim
    ("This is a band neutrophil with a large cell size and a small cell size.", "said twice"),
])
def test_verifier_rejects_wrong_descriptions(text, why):
    problems = verify_statement(text, _truth(), exact=False)
    assert problems and any(why in p for p in problems), problems


def test_verifier_exact_mode_needs_every_annotation():
    t = _truth()
    problems = verify_statement("This is a band neutrophil with a large cell size.", t, exact=True)
    assert any("not said" in p for p in problems)
    full, _ = caption.describe_cell(t, random.Random(0))
    assert verify_statement(full, t, exact=True) == []


def test_verifier_questions_and_answers():
    t = _truth()
    Q = "Q: "
    assert verify_question(Q + "What is the colour of the cytoplasm?", "open", "cytoplasm_colour", t) == []
    assert verify_question(Q + "What is the colour of the granules?", "open", "cytoplasm_colour", t)  # wrong subject
    assert verify_question("What is the colour of the cytoplasm?", "open", "cytoplasm_colour", t)  # no Q: prefix
    assert verify_question(Q + "Does this cell have open chromatin?", "yesno", "chromatin", t, asked="open") == []
    # a negative question may carry other TRUE facts (so two-claim questions are not always Yes) ...
    assert verify_question(Q + "Does this cell have open chromatin and a round cell shape?", "yesno", "chromatin",
                           t, asked="open") == []
    # ... but must not smuggle in a false one
    assert verify_question(Q + "Does this cell have open chromatin and an irregular cell shape?", "yesno",
                           "chromatin", t, asked="open")
    assert verify_answer("No, it has condensed chromatin.", "yesno", "chromatin", t, asked="open") == []
    assert verify_answer("Yes, it has condensed chromatin.", "yesno", "chromatin", t, asked="open")  # wrong polarity
    assert verify_answer("No, it has open chromatin.", "yesno", "chromatin", t, asked="open")        # wrong value
    assert verify_answer("It has condensed chromatin.", "yesno", "chromatin", t, asked="condensed")  # no yes/no
    assert verify_answer("The cell has small pink granules.", "open", "granule_type", t) == []       # true extra fact
    assert verify_answer("The cell has small red granules.", "open", "granule_type", t)              # false extra fact
    assert verify_answer("The cell has pink granules.", "open", "granule_type", t)                   # misses the asked one


def test_not_annotated_values_are_left_out_not_invented():
    t = truth_of("lymphoblast", [{"name": "chromatin", "value": "open"}, {"name": "nucleoli", "value": NOT_ANNOTATED}])
    assert t == {"chromatin": "open", CELL_TYPE: "lymphoblast"}
    cell = CellTruth("centre", t)
    fov = mlm.FieldOfView([cell], 1, 0, [])
    text, _ = mlm.describe_fov(fov, random.Random(3))
    assert "nucleoli" not in text
    assert mlm.check_description(text, fov) == []
    invented = text.replace(" chromatin", " chromatin and prominent nucleoli")
    assert invented != text and verify_fov(invented, [cell], 1, 0)


def test_verifier_rejects_wrong_field_of_view_texts():
    cells = [CellTruth("top left", {CELL_TYPE: "lymphoblast", "chromatin": "open"}),
             CellTruth("bottom right", {CELL_TYPE: "lymphocyte", "chromatin": "condensed"})]
    good = ("This field of view contains 2 annotated cells. Cell 1 (top left) is a lymphoblast with open chromatin. "
            "Cell 2 (bottom right) is a lymphocyte with condensed chromatin.")
    assert verify_fov(good, cells, 2, 0) == []
    assert verify_fov(good.replace("2 annotated", "3 annotated"), cells, 2, 0)          # wrong count
    assert verify_fov(good.replace("(top left)", "(top right)"), cells, 2, 0)           # wrong location
    assert verify_fov(good.replace("lymphoblast", "myeloblast"), cells, 2, 0)           # wrong type
    assert verify_fov(good.split(" Cell 2")[0], cells, 2, 0)                            # a cell left out
    assert verify_fov(good, cells, 2, 1)                                                # artifact count


def test_masking_round_trips_and_broken_targets_are_rejected():
    cells = [CellTruth("centre", {CELL_TYPE: "myeloblast", "chromatin": "open", "nucleoli": "prominent",
                                  "cytoplasm_amount": "scanty", "cell_size": "big"})]
    fov = mlm.FieldOfView(cells, 1, 0, [])
    text, _ = mlm.describe_fov(fov, random.Random(0))
    masked, target, k = mlm.mask(text, random.Random(1), 0.5)
    assert masked.startswith("mask: ") and k >= 2
    assert re.findall(r"<extra_id_(\d+)>", masked) == [str(i) for i in range(k)]
    assert target.endswith(f"<extra_id_{k}>")
    assert " a <extra_id_" not in masked and " an <extra_id_" not in masked  # articles do not leak
    assert mlm.check_masked(masked, target, fov, text) == []
    full, problems = unmask(masked, target)
    assert full == text and problems == []
    # swap the first masked span for a wrong value of the same kind
    bad_target = target.replace("myeloblast", "lymphocyte").replace("open", "condensed").replace("prominent", "inconspicuous")
    bad_target = bad_target.replace("scanty", "abundant").replace("large", "small").replace("big", "small")
    assert bad_target != target and mlm.check_masked(masked, bad_target, fov, text)
    assert mlm.check_masked(masked, target.rsplit(" <extra_id_", 1)[0], fov, text)  # unclosed sentinels


def test_vqa_render_is_verified_for_every_subject_and_type_and_balanced():
    rng = random.Random(0)
    t = _truth(granule_type="none", granule_colour="none", granularity="absent")
    specs = vqa.plan(t, "wbcatt", vqa.QUESTION_TYPES, 0, rng)
    assert {s.attr for s in specs} == set(t)
    pairs = [vqa.render(s, t, rng) for s in specs]
    for p in pairs:
        assert vqa.check(p, t) == [], (p.question, p.answer, vqa.check(p, t))
        assert p.question.startswith("Q: ")
    pol = [p.polarity for p in pairs if p.polarity]
    assert pol.count("yes") == len(t) and pol.count("no") == len(t)  # "all" mode: one of each per subject


def test_negatives_come_from_the_attributes_other_values_and_other_cell_classes():
    assert set(negatives("wbcatt", "cytoplasm_colour", "blue")) == {"light_blue", "purple_blue"}
    assert "none" not in negatives("wbcatt", "granule_type", "small")
    assert "medium" not in negatives("wbcatt", "cell_size", "big")  # WBCAtt has no 'medium'
    neg = negatives("wbcatt", CELL_TYPE, "neutrophil_band")
    assert "neutrophil" not in neg and "lymphocyte" in neg


def test_negated_paraphrased_questions_are_rejected():
    """A paraphrase that negates a yes/no or choice question flips its meaning while the answer
    stays the same: the question verifier must reject it."""
    from unihema_data.textsets.verify import verify_question

    truth = {"chromatin": "condensed"}
    ok = verify_question("Q: Does this cell have condensed chromatin?", "yesno", "chromatin", truth, "condensed")
    assert ok == []
    for q in ("Q: Does this cell not have condensed chromatin?",
              "Q: Doesn't this cell lack condensed chromatin?"):
        assert verify_question(q, "yesno", "chromatin", truth, "condensed"), q
    q = "Q: Which does this cell not have: condensed chromatin or open chromatin?"
    assert verify_question(q, "choice", "chromatin", truth, options=("condensed", "open"))


def test_paraphrases_cannot_add_content_words():
    """Hedges and new facts slip past a block-list verifier: a paraphrase may only add function
    words to its template text (reorder/rephrase), never new content."""
    from unihema_data.textsets.paraphrase import new_content_words, try_paraphrase

    template = "This is a neutrophil. It has condensed chromatin."
    assert new_content_words(template, "It is a neutrophil; the cell has condensed chromatin.") == []
    for bad in ("This is hardly a neutrophil. It has condensed chromatin.",
                "This cell was mislabeled as a neutrophil. It has condensed chromatin.",
                "This is a neutrophil with five lobes. It has condensed chromatin."):
        assert new_content_words(template, bad), bad
        stats: dict = {}
        assert try_paraphrase(lambda t, b=bad: b, template, lambda x: [], stats) == (template, False)
        assert stats["rejected"] == 1
