"""The verifier: parse a text back into (attribute, value) claims and compare them to annotations.

Parsing is driven by the phrase tables of :mod:`.lexicon`: every frame becomes a regular
expression; matches are taken left to right, the longest match winning at a position, so
"light blue, clear cytoplasm" is one phrase (two claims) and "neutrophil" inside "band
neutrophil" is not a claim. After the phrases are removed, the rest of the text must not contain
a value word, an attribute noun or a negation: such a word means a claim the parser could not
read (e.g. "the cytoplasm is not clear"), and the text is rejected rather than trusted.

Matching is case-insensitive; hyphens count as word characters ("non-vacuolated" never contains
the phrase "vacuolated"). Every check returns a list of human-readable problems; empty = verified.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping, Optional

from .lexicon import (
    ATTRIBUTE_NOUNS, FRAMES, GENERIC_WORDS, LOCATIONS, NEGATIONS, QUESTION_NOUNS, Frame,
)

_B = r"(?<![\w-])"
_E = r"(?![\w-])"
_TOKEN = re.compile(r"[a-z0-9]+(?:['’:-][a-z0-9]+)*")
VQA_PREFIX = "Q: "
MLM_PREFIX = "mask: "


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def _word_re(word: str) -> str:
    return r"\s+".join(re.escape(w) for w in word.split())


@dataclass(frozen=True)
class _Compiled:
    frame: Frame
    regex: re.Pattern
    lookup: Mapping[str, Mapping[str, str]]  # slot -> normalised word -> value


@dataclass(frozen=True)
class Span:
    """A value span in the text: the characters ``text[start:end]`` say ``attr`` = ``value``."""

    start: int
    end: int
    attr: str
    value: str


@dataclass
class Parsed:
    """Claims in text order; ``spans`` are the maskable value spans (slot words)."""

    claims: list[tuple[str, str]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    phrases: list[tuple[int, int, str]] = field(default_factory=list)  # start, end, frame id
    unparsed: list[str] = field(default_factory=list)  # suspicious words outside phrases


@lru_cache(maxsize=1)
def _compiled() -> tuple[_Compiled, ...]:
    out = []
    for fr in FRAMES:
        pat = fr.pattern[2:] if fr.countable else fr.pattern
        parts = re.split(r"(\{\w+\})", pat)
        lookup: dict[str, dict[str, str]] = {}
        for slot in fr.slots:
            lookup[slot] = {_norm(w): v for v, ws in fr.words_for(slot).items() for w in ws}
        out.append(_Compiled(fr, re.compile(_B + _join(parts, lookup) + _E, re.IGNORECASE), lookup))
    return tuple(out)


def _join(parts: list[str], lookup: Mapping[str, Mapping[str, str]]) -> str:
    """Regex of a frame pattern split into literal and ``{slot}`` parts; whitespace -> ``\\s+``."""
    rx = ""
    for part in parts:
        m = re.fullmatch(r"\{(\w+)\}", part)
        if m:
            slot = m.group(1)
            alts = sorted(lookup[slot], key=len, reverse=True)
            rx += f"(?P<{slot}>" + "|".join(_word_re(w) for w in alts) + ")"
        elif part.strip():
            lead = r"\s+" if part[0].isspace() else ""
            trail = r"\s+" if part[-1].isspace() else ""
            rx += lead + _word_re(part.strip()) + trail
        elif part:
            rx += r"\s+"
    return rx


@lru_cache(maxsize=1)
def value_tokens() -> frozenset[str]:
    """Every token of every slot word (value words and cell-type words), minus generic words."""
    toks: set[str] = set()
    for c in _compiled():
        for table in c.lookup.values():
            for w in table:
                for t in _TOKEN.findall(w):
                    toks.add(t)
                    toks.update(t.split("-"))
    return frozenset(toks - GENERIC_WORDS)


def parse(text: str) -> Parsed:
    """All phrases of ``text`` (see module doc) and the suspicious words outside them."""
    found = []
    for c in _compiled():
        for m in c.regex.finditer(text):
            found.append((m.start(), -(m.end() - m.start()), m, c))
    found.sort(key=lambda t: (t[0], t[1], t[3].frame.id))
    res = Parsed()
    last = 0
    kept = []
    for start, _neg, m, c in found:
        if start < last:
            continue
        kept.append((m, c))
        last = m.end()
    for m, c in kept:
        res.phrases.append((m.start(), m.end(), c.frame.id))
        items = []
        for slot in c.frame.slots:
            word = _norm(m.group(slot))
            value = c.lookup[slot][word]
            items.append((m.start(slot), Span(m.start(slot), m.end(slot), slot, value)))
        for start, span in sorted(items, key=lambda t: t[0]):
            res.spans.append(span)
            res.claims.append((span.attr, span.value))
        for a, v in c.frame.fixed.items():
            res.claims.append((a, v))
    residual = _blank(text, [(m.start(), m.end()) for m, _ in kept])
    res.unparsed = suspicious_words(residual)
    return res


def _blank(text: str, ranges: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in ranges:
        for i in range(a, b):
            chars[i] = " "
    return "".join(chars)


def suspicious_words(residual: str) -> list[str]:
    """Words outside parsed phrases that would carry an unverified claim."""
    vt = value_tokens()
    bad = []
    for tok in _TOKEN.findall(residual.lower()):
        parts = {tok, *tok.split("-")}
        if parts & (vt | NEGATIONS | ATTRIBUTE_NOUNS) or tok.endswith("n't"):
            bad.append(tok)
    return bad


# ------------------------------------------------------------------------------------ checks
def check_claims(claims: list[tuple[str, str]], truth: Mapping[str, str], *, exact: bool,
                 include: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Compare parsed claims to the annotations ``truth`` (attr -> value; not-annotated
    attributes absent). ``exact``: every annotation said exactly once and nothing else;
    otherwise every claim must be true and ``include`` must be said."""
    problems = []
    said: dict[str, str] = {}
    for a, v in claims:
        if a in said and said[a] != v:
            problems.append(f"{a} said twice with different values ({said[a]!r}, {v!r})")
        elif a in said and exact:
            problems.append(f"{a} said twice")
        said.setdefault(a, v)
        if a not in truth:
            problems.append(f"{a}={v!r} is not annotated")
        elif truth[a] != v:
            problems.append(f"{a}={v!r} contradicts the annotation {truth[a]!r}")
    if exact:
        for a in truth:
            if a not in said:
                problems.append(f"{a}={truth[a]!r} is annotated but not said")
    for a, v in include:
        if said.get(a) != v:
            problems.append(f"{a}={v!r} should be said")
    return problems


def verify_statement(text: str, truth: Mapping[str, str], *, exact: bool = True,
                     include: Iterable[tuple[str, str]] = ()) -> list[str]:
    """A description or answer sentence (no yes/no prefix)."""
    p = parse(text)
    problems = [f"unverifiable word {w!r}" for w in p.unparsed]
    return problems + check_claims(p.claims, truth, exact=exact, include=include)


_YESNO = re.compile(r"^\s*(yes|no)\b[\s,.;:!-]*", re.IGNORECASE)


def split_polarity(answer: str) -> tuple[Optional[bool], str]:
    m = _YESNO.match(answer)
    if not m:
        return None, answer
    return m.group(1).lower() == "yes", answer[m.end():]


def question_attributes(question: str) -> set[str]:
    """Attributes an open question asks about (by their nouns, :data:`QUESTION_NOUNS`)."""
    q = question.lower()
    found = set()
    for attr, nouns in QUESTION_NOUNS.items():
        for n in nouns:
            if re.search(_B + n + _E, q):
                found.add(attr)
                break
    return found


def _strip_prefix(text: str, prefix: str) -> tuple[str, list[str]]:
    if not text.startswith(prefix):
        return text, [f"missing prefix {prefix!r}"]
    return text[len(prefix):], []


def verify_question(question: str, qtype: str, attr: str, truth: Mapping[str, str],
                    asked: Optional[str] = None, options: tuple[str, ...] = ()) -> list[str]:
    """``open``: asks about ``attr`` only and states nothing; ``yesno``: states (attr, asked)
    (a positive question may state other true facts, a negative one nothing else);
    ``choice``: states exactly (attr, o) for each option, the true value among them."""
    q, problems = _strip_prefix(question, VQA_PREFIX)
    p = parse(q)
    # a negation outside a recognised phrase ("does this cell *not* have ...") flips the
    # question's meaning while the answer stays the same: reject it
    negations = [w for w in p.unparsed if w.lower() in NEGATIONS or w.lower().endswith("n't")]
    problems += [f"negation {w!r} outside a recognised phrase in the question" for w in negations]
    if qtype == "open":
        got = question_attributes(q)
        if got != {attr}:
            problems.append(f"open question asks about {sorted(got)}, expected [{attr!r}]")
        if p.claims:
            problems.append(f"open question states {p.claims}")
    elif qtype == "yesno":
        if asked is None:
            return problems + ["yes/no question without an asked value"]
        if truth.get(attr) == asked:
            problems += check_claims(p.claims, truth, exact=False, include=[(attr, asked)])
        elif (attr, asked) not in p.claims:
            problems.append(f"negative question states {p.claims}, expected ({attr!r}, {asked!r}) among them")
        else:  # the asked (false) value, plus possibly other facts that must be true
            others = [c for c in p.claims if c != (attr, asked)]
            problems += check_claims(others, truth, exact=False)
    elif qtype == "choice":
        if set(p.claims) != {(attr, o) for o in options} or len(p.claims) != len(options):
            problems.append(f"choice question states {p.claims}, expected options {options}")
        if truth.get(attr) not in options:
            problems.append("the true value is not among the options")
    else:
        problems.append(f"unknown question type {qtype!r}")
    return problems


_YESNO_QUESTION = re.compile(r"^\s*(?:Q:\s*)?(?:is|are|was|were|does|do|did|has|have|can|could|will|would|should)\b",
                             re.IGNORECASE)
_ALTERNATIVE = re.compile(r"(?<![\w-])or(?![\w-])", re.IGNORECASE)


def is_yesno_question(question: str) -> bool:
    """A polar question ("Is the cytoplasm vacuolated?", "Does this cell have ...?"): starts with
    an auxiliary verb and offers no alternatives ("Is it X or Y?" is a choice)."""
    return bool(_YESNO_QUESTION.match(question)) and not _ALTERNATIVE.search(question)


def verify_answer(answer: str, qtype: str, attr: str, truth: Mapping[str, str],
                  asked: Optional[str] = None, question: Optional[str] = None) -> list[str]:
    """The answer states the true value of ``attr`` (and only true facts); a yes/no answer
    starts with the right polarity ("Yes" iff the asked value is the annotated one). With the
    ``question``: every polar question must be answered Yes/No first, and a "Yes" must restate
    every claim the question made (not just some of them)."""
    polarity, rest = split_polarity(answer)
    problems = []
    if question is not None and is_yesno_question(question) and polarity is None:
        problems.append("a yes/no question answered without Yes/No first")
    if qtype == "yesno" and question is not None and polarity:
        q = question[len(VQA_PREFIX):] if question.startswith(VQA_PREFIX) else question
        said = set(parse(rest).claims)
        missing = [c for c in parse(q).claims if c not in said]
        if missing:
            problems.append(f"the Yes explanation does not restate {missing}")
    if qtype == "yesno":
        want = truth.get(attr) == asked
        if polarity is None:
            problems.append("yes/no answer does not start with yes or no")
        elif polarity != want:
            problems.append(f"answer says {'yes' if polarity else 'no'}, annotation says {'yes' if want else 'no'}")
    elif polarity is not None:
        problems.append(f"{qtype} answer starts with yes/no")
    if attr not in truth:
        return problems + [f"{attr} is not annotated"]
    return problems + verify_statement(rest, truth, exact=False, include=[(attr, truth[attr])])


BALANCE_RANGE = (0.3, 0.7)
BALANCE_MIN_QUESTIONS = 50


def check_balance(polarity_by_claims: Mapping[int, Mapping[str, int]]) -> list[str]:
    """Corpus-level check: among yes/no questions making two or more claims, the share answered
    Yes lies in :data:`BALANCE_RANGE` (checked once there are :data:`BALANCE_MIN_QUESTIONS`)."""
    yes = sum(c.get("yes", 0) for k, c in polarity_by_claims.items() if k >= 2)
    n = yes + sum(c.get("no", 0) for k, c in polarity_by_claims.items() if k >= 2)
    if n < BALANCE_MIN_QUESTIONS:
        return []
    lo, hi = BALANCE_RANGE
    if not lo <= yes / n <= hi:
        return [f"{yes} of {n} yes/no questions with two or more claims are answered Yes ({yes / n:.0%}); "
                f"expected {lo:.0%}..{hi:.0%}"]
    return []


# ------------------------------------------------------------------------------------ fields of view
_COUNT = re.compile(r"\bcontains (\d+|no) annotated cells?\b", re.IGNORECASE)
_ARTIFACTS = re.compile(r"\b(\d+) artifacts?\b", re.IGNORECASE)
_DESCRIBED = re.compile(r"\b(\d+) of them (?:are|is) described\b", re.IGNORECASE)
_CELL = re.compile(r"\bCell (\d+) \((" + "|".join(sorted(LOCATIONS, key=len, reverse=True)) + r")\)")


@dataclass(frozen=True)
class CellTruth:
    """One described cell of a field of view: its location name and annotations (incl. cell_type)."""

    location: str
    truth: Mapping[str, str]


def verify_fov(text: str, cells: list[CellTruth], n_cells: int, n_artifacts: int) -> list[str]:
    """A field-of-view description: the counts sentence, then ``Cell i (location) ...`` segments,
    one per described cell in order, each stating exactly that cell's annotations."""
    problems = []
    m = _COUNT.search(text)
    if not m:
        return ["no 'contains N annotated cells' sentence"]
    said_n = 0 if m.group(1).lower() == "no" else int(m.group(1))
    if said_n != n_cells:
        problems.append(f"says {said_n} cells, {n_cells} are annotated")
    a = _ARTIFACTS.search(text)
    if (int(a.group(1)) if a else 0) != n_artifacts:
        problems.append(f"says {int(a.group(1)) if a else 0} artifacts, {n_artifacts} are annotated")
    d = _DESCRIBED.search(text)
    described = int(d.group(1)) if d else n_cells
    if described != len(cells):
        problems.append(f"says {described} cells are described, {len(cells)} should be")
    heads = list(_CELL.finditer(text))
    if len(heads) != len(cells):
        problems.append(f"{len(heads)} cell segments, expected {len(cells)}")
        return problems
    preamble = text[: heads[0].start()] if heads else text
    pre = _blank(preamble, [x.span() for x in (m, a, d) if x is not None and x.end() <= len(preamble)])
    problems += [f"unverifiable word {w!r} before the cells" for w in suspicious_words(pre)]
    for i, (h, cell) in enumerate(zip(heads, cells)):
        if int(h.group(1)) != i + 1:
            problems.append(f"cell segment {i + 1} is numbered {h.group(1)}")
        if h.group(2) != cell.location:
            problems.append(f"cell {i + 1} is at {cell.location!r}, text says {h.group(2)!r}")
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        seg = text[h.end(): end]
        problems += [f"cell {i + 1}: {p}" for p in verify_statement(seg, cell.truth, exact=True)]
    return problems


# ------------------------------------------------------------------------------------ masking
SENTINEL = "<extra_id_{}>"
_SENTINEL_RE = re.compile(r"<extra_id_(\d+)>")


def unmask(masked: str, target: str) -> tuple[Optional[str], list[str]]:
    """Rebuild the full text from a T5 masked text and its target
    (``<extra_id_0> span0 <extra_id_1> span1 ... <extra_id_N>``)."""
    body, problems = _strip_prefix(masked, MLM_PREFIX)
    ids = [int(x) for x in _SENTINEL_RE.findall(body)]
    if ids != list(range(len(ids))) or not ids:
        return None, problems + [f"masked text sentinels {ids} are not 0..n-1"]
    pieces = _SENTINEL_RE.split(target)
    # split -> ['', '0', ' span0 ', '1', ' span1 ', ..., 'N', '']
    tids = [int(x) for x in pieces[1::2]]
    if tids != list(range(len(ids) + 1)) or pieces[0].strip() or pieces[-1].strip():
        return None, problems + [f"target sentinels {tids} do not close the {len(ids)} masks"]
    spans = [s.strip() for s in pieces[2::2][: len(ids)]]
    if any(not s for s in spans):
        return None, problems + ["empty target span"]
    out = _SENTINEL_RE.sub(lambda mm: spans[int(mm.group(1))], body)
    return out, problems
