"""Label vocabularies of the model, taken from the UniHema taxonomy (never re-derived per corpus).

* Classes: the taxonomy's **stable ids** - ``unihema_data.taxonomy.load_taxonomy().class_names()[i]`` has id ``i``;
  ids are never renumbered, so a checkpoint trained on one corpus reads another. Both the detection and the
  classification head use this id space (``num_det_classes = num_cls_classes = len(class_names())``) and the
  config stores it as ``id2label``.
* The corpus stores ``label`` / ``objects.category`` either as the canonical name (string) or, with
  ``datasets.ClassLabel`` columns, as the stable id (int). :func:`label_id` accepts both.
* Morphology: the taxonomy's attributes in file order, each with its values in file order;
  ``not_annotated`` (``unihema_data.taxonomy.NOT_ANNOTATED``) and a missing attribute become
  ``config.morph_ignore_index``. The vocabulary is stored in the config as ``morph_attributes`` /
  ``morph_num_values`` / ``morph_value_names``.
"""
from __future__ import annotations

from functools import lru_cache
from numbers import Integral


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    from unihema_data.taxonomy import load_taxonomy

    return tuple(load_taxonomy().class_names())


@lru_cache(maxsize=1)
def _name_to_id() -> dict[str, int]:
    return {n: i for i, n in enumerate(class_names())}


def has_label(value) -> bool:
    """False for "no label": ``None``, ``""`` (string column) and ``-1`` (``datasets.ClassLabel`` missing)."""
    return value is not None and value != "" and not (isinstance(value, Integral) and int(value) == -1)


def label_id(value, names: tuple[str, ...] | list[str] | None = None, where: str = "") -> int:
    """Stable class id of ``value`` (a canonical name or an int id). ``names`` defaults to the taxonomy
    (``id2label`` order). Raises ``ValueError`` naming the label (and ``where``) when it is unknown."""
    table = list(names) if names is not None else class_names()
    suffix = f" ({where})" if where else ""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"missing or invalid class label {value!r}{suffix}")
    if isinstance(value, Integral):
        if not 0 <= int(value) < len(table):
            raise ValueError(f"class id {int(value)} out of range 0..{len(table) - 1}{suffix}")
        return int(value)
    if isinstance(value, str):
        lookup = _name_to_id() if names is None else {n: i for i, n in enumerate(table)}
        if value not in lookup:
            raise ValueError(f"class {value!r} is not a canonical taxonomy label{suffix}")
        return lookup[value]
    raise ValueError(f"class label must be a name or an int id, got {type(value).__name__}{suffix}")


def id2label() -> dict[int, str]:
    return dict(enumerate(class_names()))


@lru_cache(maxsize=1)
def attribute_vocabulary() -> dict[str, tuple[str, ...]]:
    """``{attribute: values}`` in taxonomy order (``not_annotated`` excluded)."""
    from unihema_data.taxonomy import load_taxonomy

    return {name: tuple(info.values) for name, info in load_taxonomy().attributes.items()}


def not_annotated() -> str:
    from unihema_data.taxonomy import NOT_ANNOTATED

    return NOT_ANNOTATED


def vocabulary_overrides() -> dict:
    """``UniHemaConfig`` fields for the taxonomy vocabularies (class heads, id2label, morphology)."""
    names = class_names()
    attrs = attribute_vocabulary()
    return {
        "num_det_classes": len(names),
        "num_cls_classes": len(names),
        "id2label": {i: n for i, n in enumerate(names)},
        "morph_attributes": list(attrs),
        "morph_num_values": [len(v) for v in attrs.values()],
        "morph_value_names": {k: list(v) for k, v in attrs.items()},
    }
