"""The unified UniHema row schema: one row per image, for every source and task.

One definition (:data:`FEATURES`) yields both the ``datasets.Features`` and the pyarrow
schema (:data:`ARROW_SCHEMA`); Parquet shards carry the Hugging Face feature metadata so
``datasets.load_dataset`` decodes ``image`` and ``semantic_mask`` as images.

Conventions
-----------
Identity and provenance
    ``sample_id``     ``<source>/<native relative path of the image>`` (POSIX separators); stable
                      across reruns. Text-set rows append ``#<kind>-<n>``.
    ``source``        catalog dataset id. ``subset``: microscope/magnification subset or "".
    ``split``         ``train`` | ``validation`` | ``test`` (the split used by UniHema).
    ``source_split``  the split as published ("" when the source publishes none).
    ``group_id``      patient / slide / smear id used to keep a group inside one split
                      (defaults to the sample itself when the source gives no grouping).
    ``license``       SPDX id, ``other`` or ``unknown`` (from the catalog).
    ``image_sha256``  sha256 (hex) of the native image file's bytes, before any re-encoding.
    ``image_phash``   perceptual hashes (16 hex digits each, ``imagehash.phash``): ``[whole image,
                      central crop]`` (see :mod:`unihema_data.neardup`), used to find near-duplicates.
Image
    ``image``         ``datasets.Image``: original encoded bytes for JPEG/PNG/GIF/WebP; TIFF, BMP and
                      other formats browsers cannot show are re-encoded losslessly to PNG.
    ``width``/``height`` in pixels of the stored image (identical to the native image).
    ``granularity``   ``single_cell`` | ``field_of_view``. ``disease``, ``magnification``,
                      ``microscope``, ``stain``: free text, "" when unknown.
Tasks
    ``tasks``         subset of :data:`TASKS` this row carries annotations for.
Classification
    ``label``         ``datasets.ClassLabel`` over :data:`CLASS_NAMES`: the canonical taxonomy label's
                      stable id (``taxonomy.yaml`` ``id``; never renumbered, new labels append), ``-1``
                      when the row has no image-level label. ``source_label`` verbatim native.
    ``label_group``   the label's group (``wbc``/``rbc``/``platelet``/``parasite``/``other``), "" if none.
    ``label_cl``      the label's Cell Ontology id (``CL:0000775``) where one exists, else "".
    ``attributes``    image-level morphology attributes, list of ``{name, value}``, harmonized names/values.
Objects (parallel lists, one entry per object)
    ``bbox``          COCO ``[x, y, w, h]``: absolute pixels, float32, x/y = top-left corner of the
                      box in continuous pixel coordinates (pixel (0,0) covers [0,1)x[0,1)).
    ``category``      ``ClassLabel`` id over :data:`CLASS_NAMES` (as ``label``); ``source_category``
                      verbatim native string.
    ``bbox_source``   ``annotated`` | ``from_mask`` | ``from_point`` (zero-size box at the point) |
                      ``from_circle`` (square circumscribing an annotated circle; centre in ``point``).
    ``mask_rle``      COCO compressed RLE ``counts`` string (pycocotools), size = (height, width); "" if none.
    ``attributes``    per-object list of ``{name, value}``.
    ``point``         ``[x, y]`` absolute pixels for point annotations, ``[]`` when none.
Segmentation
    ``semantic_mask`` ``datasets.Image`` PNG (mode L), same size as the image; pixel value ``i`` means
                      class ``mask_classes[i]`` (canonical mask-class names).
Text
    ``prompt``        e.g. "This image is for the detection of leukemia cells."; ``question``/``answer``
                      (VQA, question prefixed ``Q: ``); ``masked_text``/``target_text`` (MLM, T5 sentinels).
Quality
    ``qc_flags``      e.g. ``clipped_box:<i>:<native box>``, ``clipped_polygon:<i>:<vertex extremes
                      xmin,ymin,xmax,ymax>`` (a polygon reaching outside the image, rasterized clipped),
                      ``inverted_box_dropped:<i>:<native box>``, ``zero_area_box``, ``degenerate_native_box``,
                      ``duplicate_of:<sample_id>``, ``near_duplicate_of:<sample_id>``,
                      ``label_conflict:<sample_id>:<its label>``, ``split_moved:<from>-><to>:<why>``
                      (see :mod:`unihema_data.integrity` for the split policy).
"""
from __future__ import annotations

from typing import Any, Optional

import pyarrow as pa

SCHEMA_VERSION = "2.1.0"  # 2.1.0: bbox_source from_circle, crop rows, source VQA rows; 2.0.0: ClassLabel ids, label_group, label_cl, image_phash

#: ``label`` / ``objects.category`` value of a row or object without a canonical label
NO_LABEL = -1

TASKS = ("detection", "segmentation", "classification", "attributes", "vqa", "mlm", "caption")
SPLITS = ("train", "validation", "test")
GRANULARITIES = ("single_cell", "field_of_view")
BBOX_SOURCES = ("annotated", "from_mask", "from_point", "from_circle")

# ``FEATURES``, ``ARROW_SCHEMA``, ``COLUMNS``, ``OBJECT_FIELDS`` and ``CLASS_NAMES`` (canonical label
# names indexed by their stable taxonomy id: the ``ClassLabel`` names) are built on first use (module
# ``__getattr__``): ``datasets`` takes ~0.8 s to import, and ``import unihema_data`` / the CLI's
# ``--help`` must not pay for it. ``from unihema_data.schema import FEATURES`` works as before.
_LAZY = ("FEATURES", "ARROW_SCHEMA", "COLUMNS", "OBJECT_FIELDS", "CLASS_NAMES")


def _build() -> None:
    from datasets import ClassLabel, Features, Image, List, Value

    from .taxonomy import load_taxonomy

    class_names = load_taxonomy().class_names()
    _STR = Value("string")
    _ATTRS = List({"name": _STR, "value": _STR})
    _CLASS = ClassLabel(names=list(class_names))

    features = Features(
        {
            # identity and provenance
            "sample_id": _STR,
            "source": _STR,
            "subset": _STR,
            "split": _STR,
            "source_split": _STR,
            "group_id": _STR,
            "license": _STR,
            "image_sha256": _STR,
            "image_phash": List(_STR),
            # image
            "image": Image(),
            "width": Value("int32"),
            "height": Value("int32"),
            "granularity": _STR,
            "disease": _STR,
            "magnification": _STR,
            "microscope": _STR,
            "stain": _STR,
            # tasks
            "tasks": List(_STR),
            # classification
            "label": _CLASS,
            "label_group": _STR,
            "label_cl": _STR,
            "source_label": _STR,
            "attributes": _ATTRS,
            # objects, parallel lists
            "objects": {
                "bbox": List(List(Value("float32"), length=4)),
                "category": List(_CLASS),
                "source_category": List(_STR),
                "bbox_source": List(_STR),
                "mask_rle": List(_STR),
                "attributes": List(_ATTRS),
                "point": List(List(Value("float32"))),
            },
            # segmentation
            "semantic_mask": Image(),
            "mask_classes": List(_STR),
            # text
            "prompt": _STR,
            "question": _STR,
            "answer": _STR,
            "masked_text": _STR,
            "target_text": _STR,
            # quality
            "qc_flags": List(_STR),
        }
    )
    arrow: pa.Schema = features.arrow_schema.with_metadata(
        {**(features.arrow_schema.metadata or {}), b"unihema_schema_version": SCHEMA_VERSION.encode()}
    )
    globals().update(FEATURES=features, ARROW_SCHEMA=arrow, COLUMNS=tuple(features.keys()), CLASS_NAMES=class_names,
                     OBJECT_FIELDS=tuple(features["objects"].keys()))


def _get(name: str) -> Any:
    g = globals()
    if name not in g:
        _build()
    return g[name]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _get(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def empty_objects() -> dict[str, list]:
    return {k: [] for k in _get("OBJECT_FIELDS")}


def empty_row() -> dict[str, Any]:
    """A row with every column present and neutral values ("" / [] / None)."""
    global _EMPTY_KINDS
    if _EMPTY_KINDS is None:
        from datasets import ClassLabel, Image, List, Value

        kinds = []
        for name, feat in _get("FEATURES").items():
            if name == "objects":
                kinds.append((name, "objects"))
            elif isinstance(feat, Image):
                kinds.append((name, None))
            elif isinstance(feat, List):
                kinds.append((name, "list"))
            elif isinstance(feat, ClassLabel):
                kinds.append((name, NO_LABEL))
            elif isinstance(feat, Value) and feat.dtype.startswith("int"):
                kinds.append((name, 0))
            else:
                kinds.append((name, ""))
        _EMPTY_KINDS = tuple(kinds)
    row: dict[str, Any] = {}
    for name, kind in _EMPTY_KINDS:
        if kind == "objects":
            row[name] = empty_objects()
        elif kind == "list":
            row[name] = []
        else:
            row[name] = kind
    return row


_EMPTY_KINDS: Optional[tuple] = None


def attrs_to_list(attrs: dict[str, str]) -> list[dict[str, str]]:
    """``{name: value}`` -> schema list of ``{name, value}`` (sorted by name for stable output)."""
    return [{"name": k, "value": str(v)} for k, v in sorted(attrs.items())]


def label_name(value: "int | str | None") -> str:
    """Canonical name of a stored ``label``/``objects.category`` value: an int is a stable class id
    (``ClassLabel``, schema >= 2), a string a name (schema 1 corpora, returned as is); ``None``,
    ``""`` and ``-1`` mean no label (""). ``ValueError`` for an id outside the taxonomy. The one
    reader every consumer (export, FiftyOne, curation, cards, tests) uses."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool):
        raise ValueError(f"label value {value!r} is neither a name nor a taxonomy id")
    i = int(value)  # numpy integers too
    if i < 0:
        return ""
    names = _get("CLASS_NAMES")
    if i >= len(names):
        raise ValueError(f"label id {i} is outside the taxonomy's {len(names)} class ids")
    return names[i]


def label_id(value: "int | str") -> int:
    """Stable class id of a stored ``label``/``objects.category`` value (an int id or a name);
    ``KeyError`` naming an unknown name."""
    if isinstance(value, str):
        from .taxonomy import load_taxonomy

        return load_taxonomy().class_id(value)
    return int(value)


def attrs_to_dict(attrs: list[dict[str, str]] | None) -> dict[str, str]:
    return {a["name"]: a["value"] for a in (attrs or [])}
