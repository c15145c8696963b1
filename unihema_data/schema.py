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
# ``__getattr__``). The columns are declared once, below, in the serialised form of
# ``datasets.Features`` (``Features.to_dict()``); the pyarrow schema is built from that declaration
# directly, and ``datasets`` (~1 s to import) is imported only when ``FEATURES`` itself is asked for:
# conversion, validation and the CLI never pay for it. ``tests/test_core.py`` checks that the
# schema built here is byte-for-byte the one ``datasets.Features.from_dict(...).arrow_schema`` gives.
_LAZY = ("FEATURES", "ARROW_SCHEMA", "COLUMNS", "OBJECT_FIELDS", "CLASS_NAMES", "FEATURES_DICT")


def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


def _list(feature: Any, length: int = -1) -> dict:
    return {"feature": feature, **({"length": length} if length != -1 else {}), "_type": "List"}


def _features_dict(class_names: list[str]) -> dict:
    """The columns, as ``datasets.Features.to_dict()`` writes them (Hub ``huggingface`` metadata)."""
    string = _value("string")
    attrs = _list({"name": string, "value": string})
    image = {"_type": "Image"}
    label = {"names": list(class_names), "_type": "ClassLabel"}
    return {
        # identity and provenance
        "sample_id": string,
        "source": string,
        "subset": string,
        "split": string,
        "source_split": string,
        "group_id": string,
        "license": string,
        "image_sha256": string,
        "image_phash": _list(string),
        # image
        "image": image,
        "width": _value("int32"),
        "height": _value("int32"),
        "granularity": string,
        "disease": string,
        "magnification": string,
        "microscope": string,
        "stain": string,
        # tasks
        "tasks": _list(string),
        # classification
        "label": label,
        "label_group": string,
        "label_cl": string,
        "source_label": string,
        "attributes": attrs,
        # objects, parallel lists
        "objects": {
            "bbox": _list(_list(_value("float32"), length=4)),
            "category": _list(label),
            "source_category": _list(string),
            "bbox_source": _list(string),
            "mask_rle": _list(string),
            "attributes": _list(attrs),
            "point": _list(_list(_value("float32"))),
        },
        # segmentation
        "semantic_mask": image,
        "mask_classes": _list(string),
        # text
        "prompt": string,
        "question": string,
        "answer": string,
        "masked_text": string,
        "target_text": string,
        # quality
        "qc_flags": _list(string),
    }


def _arrow_type(spec: Any) -> pa.DataType:
    """The pyarrow type ``datasets`` gives the serialised feature ``spec``."""
    if "_type" not in spec:  # a dict of features: a struct
        return pa.struct([(k, _arrow_type(v)) for k, v in spec.items()])
    kind = spec["_type"]
    if kind == "Value":
        return pa.string() if spec["dtype"] == "string" else pa.from_numpy_dtype(spec["dtype"])
    if kind == "ClassLabel":
        return pa.int64()
    if kind == "Image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    if kind == "List":
        item = _arrow_type(spec["feature"])
        return pa.list_(item, spec["length"]) if spec.get("length", -1) != -1 else pa.list_(item)
    raise ValueError(f"schema: no arrow type for {kind!r}")


def _build() -> None:
    import json

    from .taxonomy import load_taxonomy

    class_names = load_taxonomy().class_names()
    spec = _features_dict(class_names)
    arrow = pa.schema([(k, _arrow_type(v)) for k, v in spec.items()]).with_metadata({
        "huggingface": json.dumps({"info": {"features": spec}}),
        b"unihema_schema_version": SCHEMA_VERSION.encode(),
    })
    globals().update(FEATURES_DICT=spec, ARROW_SCHEMA=arrow, COLUMNS=tuple(spec), CLASS_NAMES=class_names,
                     OBJECT_FIELDS=tuple(spec["objects"]))


def _build_features() -> None:
    from datasets import Features

    globals()["FEATURES"] = Features.from_dict(_get("FEATURES_DICT"))


def _get(name: str) -> Any:
    g = globals()
    if name not in g:
        _build_features() if name == "FEATURES" else _build()
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
        kinds = []
        for name, spec in _get("FEATURES_DICT").items():
            kind = spec.get("_type")
            if kind is None:
                kinds.append((name, "objects"))
            elif kind == "Image":
                kinds.append((name, None))
            elif kind == "List":
                kinds.append((name, "list"))
            elif kind == "ClassLabel":
                kinds.append((name, NO_LABEL))
            elif kind == "Value" and spec["dtype"].startswith("int"):
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
