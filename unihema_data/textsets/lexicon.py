"""Verbalization tables: how every (attribute, value) pair and every cell type is said in text.

Everything here is *data*; rendering (:mod:`.templates`) and parsing (:mod:`.verify`) are both
driven by it, so a phrase the generator can write is a phrase the verifier can read back.

Conventions
-----------
* A :class:`Frame` is a noun phrase with slots, e.g. ``"a {chromatin} chromatin"`` ->
  "condensed chromatin". A slot ``{attr}`` is filled with one of the *surface words* of the
  attribute's value (first word = canonical). A leading ``"a "`` marks a countable phrase: the
  renderer writes "a"/"an", the parser ignores the article.
* ``fixed`` claims are implied by a frame's literal text (``"no granules"`` states
  granule_type=none *and* granule_colour=none).
* Surface words of one slot are injective (word -> value) and, among frames sharing the same
  literal text, the words of different attributes are disjoint; tests check that every frame
  rendered with every value parses back to exactly its claims.
* The cell type is the pseudo attribute :data:`CELL_TYPE` whose values are canonical taxonomy
  labels (``neutrophil_band`` -> "band neutrophil").
* Words in slots are *value words*: the verifier rejects a text in which a value word (or a
  negation, or an attribute noun) appears outside a parsed phrase (an unverifiable claim).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from types import MappingProxyType
from typing import Mapping

CELL_TYPE = "cell_type"

#: attribute -> canonical value -> surface words (first is canonical). Shared by all frames
#: of the attribute unless a frame overrides them.
VALUE_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "cell_size": {"small": ("small",), "medium": ("medium", "medium-sized"), "big": ("large", "big")},
    "cell_shape": {"round": ("round", "rounded"), "irregular": ("irregular",)},
    "nucleus_shape": {
        "segmented_bilobed": ("bilobed segmented", "segmented bilobed"),
        "segmented_multilobed": ("multilobed segmented", "segmented multilobed"),
        "unsegmented_band": ("band-shaped unsegmented", "unsegmented band-shaped"),
        "unsegmented_round": ("round unsegmented", "unsegmented round"),
        "unsegmented_indented": ("indented unsegmented", "unsegmented indented"),
        "irregular": ("irregularly shaped", "irregular"),
    },
    "nc_ratio": {"low": ("low",), "high": ("high",)},
    "chromatin": {"condensed": ("condensed", "densely packed", "dense"), "open": ("open", "loosely packed", "loose")},
    "cytoplasm_vacuoles": {"present": ("vacuolated",), "absent": ("non-vacuolated",)},
    "cytoplasm_texture": {"clear": ("clear",), "frosted": ("frosted",)},
    "cytoplasm_colour": {"light_blue": ("light blue", "pale blue"), "blue": ("blue",), "purple_blue": ("purple-blue", "purplish blue")},
    "granule_type": {"small": ("small", "fine"), "round": ("round",), "coarse": ("coarse",)},
    "granule_colour": {"pink": ("pink",), "red": ("red", "reddish"), "purple": ("purple",)},
    "granularity": {"present": ("granular",), "absent": ("agranular",)},
    "nucleus_regularity": {"regular": ("regular",), "irregular": ("irregular",)},
    "nucleoli": {"inconspicuous": ("inconspicuous", "indistinct"), "prominent": ("prominent",)},
    "cytoplasm_amount": {"scanty": ("scanty", "scant"), "abundant": ("abundant",)},
    "cytoplasm_basophilia": {"slight": ("slightly basophilic", "mildly basophilic"), "moderate": ("moderately basophilic",)},
}

#: canonical taxonomy label -> surface words (singular). Covers every label the WBCAtt and
#: LeukemiaAttri alias tables can produce (except ``artifact``, which is counted, not described).
CELL_TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "neutrophil": ("neutrophil",),
    "neutrophil_band": ("band neutrophil", "band form neutrophil"),
    "neutrophil_segmented": ("segmented neutrophil",),
    "eosinophil": ("eosinophil",),
    "basophil": ("basophil",),
    "lymphocyte": ("lymphocyte",),
    "lymphocyte_atypical": ("atypical lymphocyte",),
    "monocyte": ("monocyte",),
    "promonocyte": ("promonocyte",),
    "monoblast": ("monoblast",),
    "myeloblast": ("myeloblast",),
    "lymphoblast": ("lymphoblast",),
    "myelocyte": ("myelocyte",),
    "metamyelocyte": ("metamyelocyte",),
    "promyelocyte": ("promyelocyte",),
    "promyelocyte_abnormal": ("abnormal promyelocyte",),
    "immature_granulocyte": ("immature granulocyte",),
    "erythroblast": ("erythroblast",),
    "platelet": ("platelet",),
}


@dataclass(frozen=True)
class Frame:
    """A phrase pattern. ``slots`` are the attributes named ``{attr}`` in ``pattern``."""

    id: str
    pattern: str
    words: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    fixed: Mapping[str, str] = field(default_factory=dict)

    @property
    def slots(self) -> tuple[str, ...]:
        import re

        return tuple(re.findall(r"\{(\w+)\}", self.pattern))

    @property
    def countable(self) -> bool:
        return self.pattern.startswith("a ")

    def words_for(self, attr: str) -> Mapping[str, tuple[str, ...]]:
        if attr in self.words:
            return self.words[attr]
        if attr == CELL_TYPE:
            return CELL_TYPE_WORDS
        return VALUE_WORDS[attr]

    def claims(self) -> frozenset[str]:
        """Attributes this frame states (slots + fixed)."""
        return frozenset(self.slots) | frozenset(self.fixed)


def _f(id: str, pattern: str, words=None, fixed=None) -> Frame:
    return Frame(id, pattern, MappingProxyType(dict(words or {})), MappingProxyType(dict(fixed or {})))


_NONE = {"none": ()}  # 'none' granules are said through dedicated frames only

#: The cytoplasm adjectives that may be stacked ("light blue, clear, granular cytoplasm").
CYTOPLASM_ADJECTIVES = ("cytoplasm_colour", "cytoplasm_texture", "granularity", "cytoplasm_vacuoles",
                        "cytoplasm_amount", "cytoplasm_basophilia")

_FRAMES: list[Frame] = [
    _f(CELL_TYPE, "a {cell_type}"),
    _f("cell_size", "a {cell_size} cell size"),
    _f("cell_size.body", "a {cell_size} cell body"),
    _f("cell_shape", "a {cell_shape} cell shape"),
    _f("cell_shape.outline", "a {cell_shape} cell outline"),
    _f("nucleus_shape", "a {nucleus_shape} nucleus"),
    _f("nc_ratio", "a {nc_ratio} nuclear-to-cytoplasmic ratio"),
    _f("nc_ratio.nc", "a {nc_ratio} N:C ratio"),
    _f("chromatin", "{chromatin} chromatin"),
    _f("cytoplasm_vacuoles.vac", "{cytoplasm_vacuoles} vacuoles",
       words={"cytoplasm_vacuoles": {"present": ("cytoplasmic", "visible"), "absent": ("no",)}}),
    _f("granules", "{granule_type} {granule_colour} granules",
       words={"granule_type": {k: v for k, v in VALUE_WORDS["granule_type"].items()},
              "granule_colour": VALUE_WORDS["granule_colour"]}),
    _f("granule_type", "{granule_type} granules"),
    _f("granule_colour", "{granule_colour} granules"),
    _f("granules.none", "no granules", fixed={"granule_type": "none", "granule_colour": "none"}),
    _f("granule_type.none", "no distinct granule type", fixed={"granule_type": "none"}),
    _f("granule_colour.none", "no distinct granule colour", fixed={"granule_colour": "none"}),
    _f("granules.type_none", "{granule_colour} granules of no distinct type", fixed={"granule_type": "none"}),
    _f("granules.colour_none", "{granule_type} granules of no distinct colour", fixed={"granule_colour": "none"}),
    _f("nucleus_regularity", "a {nucleus_regularity} nuclear outline"),
    _f("nucleoli", "{nucleoli} nucleoli"),
]
# single and stacked cytoplasm adjectives, in the fixed order of CYTOPLASM_ADJECTIVES
for _n in range(1, len(CYTOPLASM_ADJECTIVES) + 1):
    for _combo in combinations(CYTOPLASM_ADJECTIVES, _n):
        _FRAMES.append(_f("cytoplasm:" + "+".join(_combo), ", ".join("{%s}" % a for a in _combo) + " cytoplasm"))

FRAMES: tuple[Frame, ...] = tuple(_FRAMES)
FRAMES_BY_ID: dict[str, Frame] = {fr.id: fr for fr in FRAMES}

#: attribute -> frames that state exactly that one attribute (used for single-claim phrases)
SINGLE_FRAMES: dict[str, tuple[Frame, ...]] = {}
for _fr in FRAMES:
    if len(_fr.claims()) == 1:
        (_a,) = tuple(_fr.claims())
        SINGLE_FRAMES.setdefault(_a, ())
        SINGLE_FRAMES[_a] = SINGLE_FRAMES[_a] + (_fr,)

#: attributes that are said through nouns in open questions, and those nouns (regexes).
#: Every open question template must contain exactly one of its attribute's nouns.
QUESTION_NOUNS: dict[str, tuple[str, ...]] = {
    CELL_TYPE: (r"type of (?:white blood )?cell", r"cell type", r"kind of (?:white blood )?cell", r"which (?:white blood )?cell"),
    "cell_size": (r"size of (?:the|this) cell", r"cell size", r"how (?:big|large)"),
    "cell_shape": (r"shape of (?:the|this) cell", r"cell shape", r"cell outline"),
    "nucleus_shape": (r"shape of (?:the|its) nucleus", r"nuclear shape", r"nucleus shape", r"nuclear segmentation"),
    "nc_ratio": (r"nuclear-to-cytoplasmic ratio", r"n:c ratio", r"nucleus-to-cytoplasm ratio"),
    "chromatin": (r"chromatin",),
    "cytoplasm_vacuoles": (r"vacuoles?", r"vacuolated", r"vacuolation"),
    "cytoplasm_texture": (r"texture of (?:the|its) cytoplasm", r"cytoplasmic texture", r"cytoplasm texture"),
    "cytoplasm_colour": (r"colou?r of (?:the|its) cytoplasm", r"cytoplasmic colou?r", r"cytoplasm colou?r"),
    "granule_type": (r"type of granules?", r"granule type", r"kind of granules?"),
    "granule_colour": (r"colou?r of (?:the|its) granules", r"granule colou?r", r"colou?r are (?:the|its) granules"),
    "granularity": (r"granularity", r"granular"),
    "nucleus_regularity": (r"nuclear outline", r"nuclear contour"),
    "nucleoli": (r"nucleoli",),
    "cytoplasm_amount": (r"amount of cytoplasm", r"how much cytoplasm"),
    "cytoplasm_basophilia": (r"basophilia", r"basophilic"),
}

#: Negation words: outside a parsed phrase they make a text unverifiable.
NEGATIONS = frozenset({"no", "not", "non", "without", "lacks", "lacking", "lack", "absent", "absence", "none",
                       "never", "neither", "nor", "n't", "isn't", "doesn't", "cannot", "free"})

#: Nouns naming attributes: outside a parsed phrase they signal an unparsed claim.
ATTRIBUTE_NOUNS = frozenset({"size", "shape", "outline", "nucleus", "nuclear", "chromatin", "vacuoles", "vacuole",
                             "cytoplasm", "cytoplasmic", "texture", "granules", "granule", "granularity", "ratio",
                             "nucleoli", "basophilia", "colour", "color"})

#: Words that occur inside value words but carry no claim on their own.
GENERIC_WORDS = frozenset({"a", "an", "the", "of", "cell", "form", "shaped"})

#: 3x3 location grid of a field of view (rows x columns), by bbox centre.
LOCATION_ROWS = ("top", "middle", "bottom")
LOCATION_COLS = ("left", "centre", "right")


def location_name(row: int, col: int) -> str:
    if row == 1 and col == 1:
        return "centre"
    return f"{LOCATION_ROWS[row]} {LOCATION_COLS[col]}"


LOCATIONS: tuple[str, ...] = tuple(location_name(r, c) for r in range(3) for c in range(3))


def attributes_covered() -> set[str]:
    """Every attribute some frame can state."""
    out: set[str] = set()
    for fr in FRAMES:
        out |= fr.claims()
    return out - {CELL_TYPE}
