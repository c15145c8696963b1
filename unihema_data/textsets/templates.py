"""Sentence templates and the phrase renderer (data + small functions, no I/O).

Every template has an id (``<kind>.<name>.<n>``) recorded in the generation report
("template usage"). Phrases come from :mod:`.lexicon` frames, so the verifier can parse them.
All randomness goes through a caller-supplied :class:`random.Random`, seeded per image.
"""
from __future__ import annotations

import random
import re
from typing import Mapping, Optional, Sequence

from .lexicon import CELL_TYPE, CYTOPLASM_ADJECTIVES, FRAMES, FRAMES_BY_ID, SINGLE_FRAMES, Frame

# ------------------------------------------------------------------------------ question templates
#: Open questions, per attribute (several phrasings). Each names its attribute with one noun
#: of :data:`~.lexicon.QUESTION_NOUNS` (checked by the tests and by the verifier).
OPEN_QUESTIONS: dict[str, tuple[str, ...]] = {
    CELL_TYPE: ("What type of cell is this?", "Which cell is shown in this image?",
                "What kind of white blood cell is this?", "What is the cell type?"),
    "cell_size": ("What is the size of the cell?", "How big is this cell?", "What is the cell size?",
                  "How large is the cell?"),
    "cell_shape": ("What is the shape of the cell?", "What is the cell shape?", "How would you describe the cell outline?"),
    "nucleus_shape": ("What is the shape of the nucleus?", "What is the nuclear shape?",
                      "How would you describe the nuclear segmentation?", "What nucleus shape does this cell have?"),
    "nc_ratio": ("What is the nuclear-to-cytoplasmic ratio?", "What is the N:C ratio of this cell?",
                 "How is the nucleus-to-cytoplasm ratio?"),
    "chromatin": ("What does the chromatin look like?", "How is the chromatin packed?", "Describe the chromatin of this cell."),
    # open questions are wh-questions (answered by a statement); yes/no-shaped questions belong to
    # the yesno type, whose answers start with Yes/No (checked by verify.is_yesno_question)
    "cytoplasm_vacuoles": ("What can be said about vacuoles in the cytoplasm?", "How would you describe the vacuolation of the cytoplasm?",
                           "What about vacuoles in this cell?"),
    "cytoplasm_texture": ("What is the texture of the cytoplasm?", "What is the cytoplasmic texture?",
                          "How would you describe the cytoplasm texture?"),
    "cytoplasm_colour": ("What is the colour of the cytoplasm?", "What is the cytoplasmic colour?",
                         "What cytoplasm color does this cell have?"),
    "granule_type": ("What type of granules does this cell have?", "What is the granule type?",
                     "What kind of granules are present?"),
    "granule_colour": ("What is the colour of the granules?", "What is the granule colour?",
                       "What colour are the granules?"),
    "granularity": ("How granular is the cytoplasm?", "How would you describe the granularity of the cytoplasm?",
                    "What is the granularity of this cell?"),
    "nucleus_regularity": ("Is the nuclear outline regular or irregular?", "How does the nuclear contour look?",
                           "Describe the nuclear outline."),
    "nucleoli": ("What can be said about the nucleoli?", "How do the nucleoli look?", "Describe the nucleoli."),
    "cytoplasm_amount": ("What is the amount of cytoplasm?", "How much cytoplasm does the cell have?"),
    "cytoplasm_basophilia": ("How strong is the cytoplasmic basophilia?", "How basophilic is the cytoplasm?"),
}
YESNO_QUESTIONS = ("Does this cell have {np}?", "Does the cell show {np}?", "Can {np} be seen in this cell?")
YESNO_CELL_QUESTIONS = ("Is this {np}?", "Is this cell {np}?", "Does the image show {np}?")
CHOICE_QUESTIONS = ("Does this cell have {np1} or {np2}?", "Does the cell show {np1} or {np2}?")
CHOICE_CELL_QUESTIONS = ("Is this {np1} or {np2}?", "Is the cell {np1} or {np2}?")
ANSWERS = ("The cell has {np}.", "It has {np}.", "This cell shows {np}.")
CELL_ANSWERS = ("This is {np}.", "The cell is {np}.", "It is {np}.")

# ------------------------------------------------------------------------------ description templates
CAPTION_PROMPT = "Describe the morphology of this white blood cell."
CAPTION_OPENERS = ("This is {np}.", "The image shows {np}.", "{NP} is shown.")
CAPTION_BODIES = ("It has {list}.", "The cell has {list}.", "It shows {list}.", "The cell shows {list}.")
CAPTION_SECOND = ("It also has {list}.", "In addition, it has {list}.", "The cell also shows {list}.")
FOV_COUNTS = ("This field of view contains {count}.", "The image contains {count}.")
FOV_CELL = ("Cell {i} ({loc}) is {np} with {list}.", "Cell {i} ({loc}) is {np}; it has {list}.",
            "Cell {i} ({loc}), {np}, shows {list}.")
FOV_CELL_BARE = ("Cell {i} ({loc}) is {np}.",)

#: Description order of attributes: the cell, its nucleus, then cytoplasm and granules.
CELL_ORDER = ("cell_size", "cell_shape", "nucleus_shape", "nucleus_regularity", "chromatin", "nc_ratio", "nucleoli")
CYTO_ORDER = CYTOPLASM_ADJECTIVES + ("granule_type", "granule_colour")


# ------------------------------------------------------------------------------ rendering
def with_article(phrase: str) -> str:
    return ("an " if re.match(r"[aeiou]", phrase, re.IGNORECASE) else "a ") + phrase


def capitalize(s: str) -> str:
    return s[:1].upper() + s[1:]


def join_list(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def frame_usable(frame: Frame, values: Mapping[str, str]) -> bool:
    """True when the frame can state ``values`` (every slot has a word for its value, fixed
    claims agree)."""
    for a, v in frame.fixed.items():
        if values.get(a) != v:
            return False
    for s in frame.slots:
        if s not in values or not frame.words_for(s).get(values[s]):
            return False
    return True


def render_frame(frame: Frame, values: Mapping[str, str], rng: Optional[random.Random] = None) -> str:
    """The phrase of ``frame`` for ``values`` (a word variant picked by ``rng``; canonical if None)."""
    pat = frame.pattern[2:] if frame.countable else frame.pattern

    def word(m: re.Match) -> str:
        ws = frame.words_for(m.group(1))[values[m.group(1)]]
        return rng.choice(ws) if rng is not None else ws[0]

    text = re.sub(r"\{(\w+)\}", word, pat)
    return with_article(text) if frame.countable else text


def phrase_for(attr: str, value: str, rng: random.Random, truth: Optional[Mapping[str, str]] = None,
               max_claims: int = 1) -> tuple[str, str]:
    """A phrase stating ``attr`` = ``value``; with ``truth`` it may also state up to
    ``max_claims`` - 1 other *true* facts (e.g. "no granules" states type and colour).
    Returns ``(phrase, frame id)``; raises ``KeyError`` when no frame can say it."""
    values = dict(truth or {})
    values[attr] = value
    cands = [fr for fr in SINGLE_FRAMES.get(attr, ()) if frame_usable(fr, {attr: value})]
    if truth is not None and max_claims > 1:
        cands += [fr for fr in FRAMES if attr in fr.claims() and 1 < len(fr.claims()) <= max_claims
                  and frame_usable(fr, values) and all(a in truth for a in fr.claims())]
    if not cands:
        raise KeyError(f"no phrase for {attr}={value!r}")
    fr = rng.choice(cands)
    return render_frame(fr, values, rng), fr.id


def describe_items(truth: Mapping[str, str], order: Sequence[str], rng: random.Random) -> list[tuple[str, str]]:
    """Phrases that state exactly the annotated attributes of ``order`` (each once), as
    ``(phrase, frame id)``: single frames, with stacked cytoplasm adjectives and combined granule
    phrases where they apply."""
    todo = [a for a in order if a in truth]
    items: list[tuple[str, str]] = []
    cyto = [a for a in CYTOPLASM_ADJECTIVES if a in todo]
    if "cytoplasm_vacuoles" in cyto and len(cyto) > 1 and rng.random() < 0.5:
        cyto.remove("cytoplasm_vacuoles")  # said as "no vacuoles" / "visible vacuoles" instead
    gran = [a for a in ("granule_type", "granule_colour") if a in todo]
    done: set[str] = set()
    for a in todo:
        if a in done:
            continue
        if a in cyto:
            fr = FRAMES_BY_ID["cytoplasm:" + "+".join(cyto)]
            items.append((render_frame(fr, truth, rng), fr.id))
            done.update(cyto)
        elif a in gran and len(gran) == 2:
            fr = next(f for f in FRAMES if set(f.claims()) == set(gran) and frame_usable(f, truth))
            items.append((render_frame(fr, truth, rng), fr.id))
            done.update(gran)
        elif a == "cytoplasm_vacuoles":  # not stacked: "no vacuoles" / "visible vacuoles"
            fr = FRAMES_BY_ID["cytoplasm_vacuoles.vac"]
            items.append((render_frame(fr, truth, rng), fr.id))
            done.add(a)
        else:
            items.append(phrase_for(a, truth[a], rng))
            done.add(a)
    return items
