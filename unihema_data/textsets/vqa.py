"""WBCAtt-VQA: question/answer pairs about one cell's type and morphology attributes.

Question types: ``open`` ("What is the colour of the cytoplasm?"), ``yesno`` (balanced: the asked
value is the annotated one or another value of the attribute, by a fair coin per question; "all"
mode asks both), ``choice`` ("Does this cell have condensed chromatin or open chromatin?").
Questions carry the ``Q: `` prefix. Answers are full sentences stating the annotated value
(yes/no answers start with "Yes,"/"No," and then state the annotated value; a "Yes" restates
every claim of the question). Yes/no questions may make two claims (the asked value plus another
true fact) whatever the answer, so two-claim questions are balanced like one-claim ones.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Optional, Sequence

from .common import Truth, lower_first, negatives, pick
from .lexicon import CELL_TYPE
from .templates import (
    ANSWERS, CELL_ANSWERS, CHOICE_CELL_QUESTIONS, CHOICE_QUESTIONS, OPEN_QUESTIONS, YESNO_CELL_QUESTIONS,
    YESNO_QUESTIONS, phrase_for, render_frame,
)
from .lexicon import FRAMES_BY_ID
from .verify import VQA_PREFIX, verify_answer, verify_question

QUESTION_TYPES = ("open", "yesno", "choice")
DEFAULT_QUESTION_TYPES = ("open", "yesno")


@dataclass
class QASpec:
    """What to ask: ``attr`` with question type ``qtype``; ``asked`` value (yes/no) or ``options``."""

    attr: str
    qtype: str
    asked: Optional[str] = None
    options: tuple[str, ...] = ()


@dataclass
class QAPair:
    spec: QASpec
    question: str
    answer: str
    templates: list[str] = field(default_factory=list)

    @property
    def polarity(self) -> Optional[str]:
        if self.spec.qtype != "yesno":
            return None
        return "yes" if self.answer.lower().startswith("yes") else "no"


def plan(truth: Truth, source: str, types: Sequence[str], pairs: int, rng: random.Random) -> list[QASpec]:
    """Questions for one cell. ``pairs`` = 0: every subject (cell type + annotated attributes)
    with every type (yes/no both ways); otherwise ``pairs`` questions on distinct subjects
    (cycling when there are fewer subjects), a random type each, fair-coin yes/no."""
    subjects = [a for a in truth if a in OPEN_QUESTIONS]
    subjects.sort(key=lambda a: (a != CELL_TYPE, a))
    specs: list[QASpec] = []
    if pairs == 0:
        for a in subjects:
            negs = negatives(source, a, truth[a])
            for t in types:
                if t == "open":
                    specs.append(QASpec(a, t))
                elif t == "yesno":
                    specs.append(QASpec(a, t, asked=truth[a]))
                    if negs:
                        specs.append(QASpec(a, t, asked=rng.choice(negs)))
                elif t == "choice" and negs:
                    specs.append(QASpec(a, t, options=_options(truth[a], negs, rng)))
        return specs
    order: list[str] = []
    while len(order) < pairs and subjects:
        order += rng.sample(subjects, len(subjects))
    for a in order[:pairs]:
        negs = negatives(source, a, truth[a])
        usable = [t for t in types if t == "open" or t == "yesno" or negs]
        t = rng.choice(usable) if usable else "open"
        if t == "yesno":
            asked = rng.choice(negs) if negs and rng.random() < 0.5 else truth[a]
            specs.append(QASpec(a, t, asked=asked))
        elif t == "choice":
            specs.append(QASpec(a, t, options=_options(truth[a], negs, rng)))
        else:
            specs.append(QASpec(a, "open"))
    return specs


def claims_of(question: str) -> int:
    """Number of claims a (yes/no) question makes, as the verifier parses them."""
    from .verify import parse

    body = question[len(VQA_PREFIX):] if question.startswith(VQA_PREFIX) else question
    return len(parse(body).claims)


def _options(value: str, negs: list[str], rng: random.Random) -> tuple[str, ...]:
    opts = [value, rng.choice(negs)]
    rng.shuffle(opts)
    return tuple(opts)


def render(spec: QASpec, truth: Truth, rng: random.Random) -> QAPair:
    """Question and answer text for one spec (template ids recorded)."""
    a = spec.attr
    cell = a == CELL_TYPE
    ids: list[str] = []
    if spec.qtype == "open":
        q, tid = pick(rng, OPEN_QUESTIONS[a], f"q.open.{a}")
        ids.append(tid)
    elif spec.qtype == "yesno":
        # multi-claim phrases either way: the asked value (true or not) plus other TRUE facts, so a
        # two-claim question is a Yes as often as a No (a two-claim question always answered Yes
        # is a shortcut a model learns)
        np, fid = phrase_for(a, spec.asked, rng, truth, max_claims=2)
        tmpl, tid = pick(rng, YESNO_CELL_QUESTIONS if cell else YESNO_QUESTIONS, f"q.yesno{'.cell' if cell else ''}")
        q = tmpl.format(np=np)
        ids += [tid, f"phrase.{fid}"]
    elif spec.qtype == "choice":
        (np1, f1), (np2, f2) = (phrase_for(a, o, rng) for o in spec.options)
        tmpl, tid = pick(rng, CHOICE_CELL_QUESTIONS if cell else CHOICE_QUESTIONS, f"q.choice{'.cell' if cell else ''}")
        q = tmpl.format(np1=np1, np2=np2)
        ids += [tid, f"phrase.{f1}", f"phrase.{f2}"]
    else:
        raise ValueError(f"unknown question type {spec.qtype!r}")
    if spec.qtype == "yesno" and spec.asked == truth[a]:
        # a Yes restates every claim the question made (same frame, the annotated values)
        fr = FRAMES_BY_ID[fid]
        np, fid = render_frame(fr, truth, rng), fr.id
    else:
        np, fid = phrase_for(a, truth[a], rng, truth, max_claims=2)
    tmpl, aid = pick(rng, CELL_ANSWERS if cell else ANSWERS, f"a{'.cell' if cell else ''}")
    ans = tmpl.format(np=np)
    ids += [aid, f"phrase.{fid}"]
    if spec.qtype == "yesno":
        ans = ("Yes, " if spec.asked == truth[a] else "No, ") + lower_first(ans)
    return QAPair(spec, VQA_PREFIX + q, ans, ids)


def check(pair: QAPair, truth: Truth) -> list[str]:
    """Verifier problems of a pair (question and answer); empty when it round-trips."""
    s = pair.spec
    problems = [f"question: {p}" for p in verify_question(pair.question, s.qtype, s.attr, truth, s.asked, s.options)]
    problems += [f"answer: {p}" for p in verify_answer(pair.answer, s.qtype, s.attr, truth, s.asked, pair.question)]
    return problems
