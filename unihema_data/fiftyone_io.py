"""A converted corpus (``OUT``) as a persistent FiftyOne dataset, and curation written back.

FiftyOne is an optional extra (``pip install 'unihema[fiftyone]'``); it is imported inside the
functions here, never at import of this module. FiftyOne starts its own ``mongod`` (package
``fiftyone-db``); users with their own MongoDB set ``FIFTYONE_DATABASE_URI``.

Mapping (one FiftyOne sample per corpus row)
--------------------------------------------
``filepath``        the row's stored image bytes, written once to a content-addressed media folder
                    ``<media_dir>/<sha256[:2]>/<sha256>.<ext>`` (sha256 of the stored bytes); the
                    default ``media_dir`` is ``<fo.config.default_dataset_dir>/<dataset name>/media``.
``metadata``        ``fo.ImageMetadata`` (width, height, size, MIME type) from the row.
``unihema_id``      the row's ``sample_id`` (FiftyOne reserves ``sample_id`` in patch views).
sample fields       ``source``, ``subset``, ``split`` (``excluded`` for samples removed by
                    curation), ``source_split``, ``group_id``, ``license``, ``image_sha256``,
                    ``granularity``, ``disease``, ``magnification``, ``microscope``, ``stain``,
                    ``tasks``, ``prompt``, ``question``, ``answer``, ``masked_text``,
                    ``target_text``, ``qc_flags``, ``mask_classes``, ``row_digest``.
``label``           ``fo.Classification``: ``label`` canonical name, ``class_id`` stable taxonomy id,
                    ``source_label`` verbatim native label.
``attributes``      image-level morphology attributes: an embedded document, one string field per
                    harmonized attribute name.
``detections``      ``fo.Detections``, one per object with a box (``bbox_source`` annotated or
                    from_mask): ``bounding_box`` = ``[x/W, y/H, w/W, h/H]`` of the COCO absolute
                    box; ``label``, ``class_id``, ``source_category``, ``bbox_source``, ``index``
                    (position in the row's object lists) and every object attribute as a label
                    attribute; ``mask`` = the instance mask cropped to the box as FiftyOne's COCO
                    importer does (``mask[round(y):round(y+h), round(x):round(x+w)]``).
``keypoints``       ``fo.Keypoints``, one per object with a point: ``points`` = ``[(x/W, y/H)]``,
                    same label attributes as detections.
``segmentation``    ``fo.Segmentation`` (``mask_path``, PNG in the media folder) whose pixel values
                    are re-indexed to the taxonomy's mask-class table
                    (``dataset.mask_targets["segmentation"]``, 0 = background), so one table serves
                    every source whatever its per-row ``mask_classes`` order.
tags                ``qc:<kind>`` for each qc flag kind (``qc:duplicate_of``, ``qc:label_conflict``
                    ...), the curator's tags written back earlier (qc flag ``tag:<name>``), and
                    ``exclude`` for samples curation removed from their split.

``dataset.classes`` / ``default_classes`` hold the taxonomy's stable id table (index = id).

Reloading is incremental: a dataset remembers the shards it was loaded from (path, size, mtime);
an unchanged corpus is recognised without reading a row. Otherwise every row's ``row_digest``
(sha256 of the row, image bytes replaced by their hash) is compared: new rows are added, changed
rows replaced (keeping tags the curator added since), rows gone from the selection deleted.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
import pyarrow.parquet as pq

from .corpus import (EXCLUDED_SPLIT, CorpusError, corpus_shards, count_rows, data_folders, iter_row_groups,
                     label_name, require_corpus, shard_state)
from .curation import EXCLUDE_TAG, EXCLUDED_FLAG, USER_TAG_FLAG
from .masks import decode_rle, decode_semantic
from .taxonomy import load_taxonomy

INSTALL_HINT = ("FiftyOne is not installed: pip install 'unihema[fiftyone]' (it brings FiftyOne and a local "
                "MongoDB; to use your own MongoDB set FIFTYONE_DATABASE_URI)")
QC_TAG_PREFIX = "qc:"
LOADER_VERSION = 1
BATCH_SIZE = 512

_STRING_FIELDS = ("unihema_id", "source", "subset", "split", "source_split", "group_id", "license",
                  "image_sha256", "granularity", "disease", "magnification", "microscope", "stain", "prompt",
                  "question", "answer", "masked_text", "target_text", "row_digest")
_LIST_FIELDS = ("tasks", "qc_flags", "mask_classes")
_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
         ".webp": "image/webp"}


class FiftyOneError(Exception):
    """FiftyOne is missing, its database is unreachable, or a dataset does not fit; the message
    says what to do."""


def require_fiftyone():
    """``import fiftyone`` with a clear message when the extra is not installed (through
    :mod:`unihema_data.extras` where the package has it)."""
    try:
        from .extras import MissingExtraError, require
    except ImportError:
        pass
    else:
        try:
            require("fiftyone", feature="browsing and curating in FiftyOne")
        except MissingExtraError as e:
            raise FiftyOneError(f"{e} (it brings FiftyOne and a local MongoDB; to use your own MongoDB set "
                                f"FIFTYONE_DATABASE_URI)") from None
    try:
        import fiftyone as fo
    except ImportError as e:
        raise FiftyOneError(f"{INSTALL_HINT} ({e})") from None
    return fo


def default_dataset_name(out: Path) -> str:
    """``unihema-<folder name>-<8 hex of the absolute path>``: stable per corpus folder."""
    out = Path(out).resolve()
    return f"unihema-{out.name}-{hashlib.sha256(str(out).encode()).hexdigest()[:8]}"


def mask_class_table() -> list[str]:
    """Global mask-class table of the FiftyOne ``segmentation`` field (index = pixel value);
    ``background`` first so FiftyOne leaves it transparent."""
    names = list(load_taxonomy().mask_classes)
    if "background" in names:
        names.remove("background")
        names.insert(0, "background")
    return names


# ---------------------------------------------------------------------------------------- media
class MediaStore:
    """Content-addressed files: ``<root>/<sha[:2]>/<sha><ext>``; written once, atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.written = 0

    def put(self, data: bytes, ext: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / digest[:2] / f"{digest}{ext}"
        try:
            if path.stat().st_size == len(data):
                return str(path)
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.written += 1
        return str(path)


def _image_ext(img: dict) -> str:
    ext = Path(img.get("path") or "").suffix.lower()
    if ext in _MIME:
        return ext
    data = img["bytes"]
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:4] == b"GIF8":
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".png"


def row_digest(row: dict) -> str:
    """sha256 of a row's content, image and mask bytes replaced by their own sha256."""
    slim = dict(row)
    for key in ("image", "semantic_mask"):
        v = row.get(key)
        if v:
            slim[key] = {"sha256": hashlib.sha256(v["bytes"]).hexdigest(), "path": v.get("path")}
    slim["_loader"] = LOADER_VERSION
    return hashlib.sha256(json.dumps(slim, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------ row -> sample
def _flag_tags(flags: Iterable[str]) -> list[str]:
    tags: list[str] = []
    for f in flags:
        if f.startswith(USER_TAG_FLAG):
            t = f[len(USER_TAG_FLAG):]
        elif f == EXCLUDED_FLAG:
            t = EXCLUDE_TAG
        else:
            t = QC_TAG_PREFIX + f.split(":", 1)[0]
        if t and t not in tags:
            tags.append(t)
    return tags


def row_to_sample(fo, row: dict, split: str, media: MediaStore, mask_ids: dict[str, int], digest: str):
    """One FiftyOne sample for one corpus row (see the module docstring for the mapping)."""
    tax = load_taxonomy()
    W, H = int(row["width"]), int(row["height"])
    img = row["image"]
    ext = _image_ext(img)
    sample = fo.Sample(filepath=media.put(img["bytes"], ext), tags=_flag_tags(row["qc_flags"]))
    if split == EXCLUDED_SPLIT and EXCLUDE_TAG not in sample.tags:
        sample.tags.append(EXCLUDE_TAG)
    sample["metadata"] = fo.ImageMetadata(width=W, height=H, size_bytes=len(img["bytes"]), mime_type=_MIME[ext])
    for k in _STRING_FIELDS:
        if k in ("unihema_id", "row_digest"):
            continue
        sample[k] = row.get(k) or ""
    sample["unihema_id"] = row["sample_id"]
    sample["split"] = split
    sample["row_digest"] = digest
    for k in _LIST_FIELDS:
        sample[k] = list(row.get(k) or [])

    name = label_name(row.get("label"))
    if name:
        sample["label"] = fo.Classification(label=name, class_id=tax.class_id(name), source_label=row["source_label"])
    if row.get("attributes"):
        sample["attributes"] = fo.DynamicEmbeddedDocument(**{a["name"]: a["value"] for a in row["attributes"]})

    objs = row["objects"]
    dets, kps = [], []
    for i, cat in enumerate(objs["category"]):
        cat = label_name(cat)
        common = dict(label=cat, class_id=tax.class_id(cat), source_category=objs["source_category"][i],
                      bbox_source=objs["bbox_source"][i], index=i)
        common.update({a["name"]: a["value"] for a in objs["attributes"][i] or []})
        if objs["bbox_source"][i] != "from_point":
            x, y, w, h = (float(v) for v in objs["bbox"][i])
            det = fo.Detection(bounding_box=[x / W, y / H, w / W, h / H], **common)
            if objs["mask_rle"][i]:
                full = decode_rle(objs["mask_rle"][i], H, W)
                det["mask"] = full[int(round(y)):int(round(y + h)), int(round(x)):int(round(x + w))]
            dets.append(det)
        if objs["point"][i]:
            px, py = (float(v) for v in objs["point"][i][:2])
            kps.append(fo.Keypoint(points=[(px / W, py / H)], **common))
    if dets:
        sample["detections"] = fo.Detections(detections=dets)
    if kps:
        sample["keypoints"] = fo.Keypoints(keypoints=kps)

    sm = row.get("semantic_mask")
    if sm and sm.get("bytes"):
        sample["segmentation"] = fo.Segmentation(mask_path=_semantic_path(row, sm["bytes"], media, mask_ids))
    return sample


def row_to_doc(row: dict, split: str, media: MediaStore, mask_ids: dict[str, int], digest: str,
               dataset_id, now) -> dict:
    """The MongoDB document FiftyOne stores for :func:`row_to_sample`'s sample, built directly
    (no per-label Python objects: FiftyOne's ODM costs ~1 ms per label). The layout is FiftyOne's
    (``_cls``, ``_id``, ``_dataset_id``, ``_media_type``, ``_rand``; masks serialized with
    ``fiftyone.core.utils.serialize_numpy_array``); ``tests/test_fiftyone.py`` checks that it reads
    back identically to the sample path."""
    import random

    from bson import ObjectId
    from fiftyone.core.utils import serialize_numpy_array

    tax = load_taxonomy()
    W, H = int(row["width"]), int(row["height"])
    img = row["image"]
    ext = _image_ext(img)
    tags = _flag_tags(row["qc_flags"])
    if split == EXCLUDED_SPLIT and EXCLUDE_TAG not in tags:
        tags.append(EXCLUDE_TAG)
    d: dict = {"_id": ObjectId(), "filepath": media.put(img["bytes"], ext), "tags": tags, "_media_type": "image",
               "_rand": random.random() * 0.001 + 0.999, "_dataset_id": dataset_id, "created_at": now,
               "last_modified_at": now,
               "metadata": {"_cls": "ImageMetadata", "width": W, "height": H, "size_bytes": len(img["bytes"]),
                            "mime_type": _MIME[ext]}}
    for k in _STRING_FIELDS:
        d[k] = row.get(k) or ""
    d.update(unihema_id=row["sample_id"], split=split, row_digest=digest)
    for k in _LIST_FIELDS:
        d[k] = list(row.get(k) or [])
    name = label_name(row.get("label"))
    if name:
        d["label"] = {"_id": ObjectId(), "_cls": "Classification", "tags": [], "label": name,
                      "class_id": tax.class_id(name), "source_label": row["source_label"]}
    if row.get("attributes"):
        d["attributes"] = {"_cls": "DynamicEmbeddedDocument", **{a["name"]: a["value"] for a in row["attributes"]}}
    objs = row["objects"]
    dets, kps = [], []
    for i, cat in enumerate(objs["category"]):
        cat = label_name(cat)
        common = {"label": cat, "class_id": tax.class_id(cat), "source_category": objs["source_category"][i],
                  "bbox_source": objs["bbox_source"][i], "index": i}
        common.update({a["name"]: a["value"] for a in objs["attributes"][i] or []})
        if objs["bbox_source"][i] != "from_point":
            x, y, w, h = (float(v) for v in objs["bbox"][i])
            det = {"_id": ObjectId(), "_cls": "Detection", "tags": [], "attributes": {},
                   "bounding_box": [x / W, y / H, w / W, h / H], **common}
            if objs["mask_rle"][i]:
                full = decode_rle(objs["mask_rle"][i], H, W)
                det["mask"] = serialize_numpy_array(
                    full[int(round(y)):int(round(y + h)), int(round(x)):int(round(x + w))])
            dets.append(det)
        if objs["point"][i]:
            px, py = (float(v) for v in objs["point"][i][:2])
            kps.append({"_id": ObjectId(), "_cls": "Keypoint", "tags": [], "attributes": {},
                        "points": [[px / W, py / H]], **common})
    if dets:
        d["detections"] = {"_cls": "Detections", "detections": dets}
    if kps:
        d["keypoints"] = {"_cls": "Keypoints", "keypoints": kps}
    sm = row.get("semantic_mask")
    if sm and sm.get("bytes"):
        d["segmentation"] = {"_id": ObjectId(), "_cls": "Segmentation", "tags": [],
                             "mask_path": _semantic_path(row, sm["bytes"], media, mask_ids)}
    return d


def _semantic_path(row: dict, data: bytes, media: MediaStore, mask_ids: dict[str, int]) -> str:
    """The row's semantic mask re-indexed to :func:`mask_class_table`, as a PNG in ``media``."""
    from PIL import Image

    arr = decode_semantic(data)
    lut = np.zeros(256, dtype=np.uint8)
    for i, c in enumerate(row["mask_classes"]):
        lut[i] = mask_ids[c]
    buf = io.BytesIO()
    Image.fromarray(lut[arr], mode="L").save(buf, format="PNG")
    return media.put(buf.getvalue(), ".png")


def _declare_schema(fo, ds) -> None:
    """Declare every field once, through one prototype sample (one schema merge instead of one
    reload per ``add_sample_field``), then the class and mask-target tables."""
    schema = ds.get_field_schema()
    wanted = (*_STRING_FIELDS, *_LIST_FIELDS, "label", "detections", "keypoints", "segmentation", "attributes")
    if any(k not in schema for k in wanted):
        proto = fo.Sample(filepath="/unihema-schema-prototype.png")
        for k in _STRING_FIELDS:
            proto[k] = ""
        for k in _LIST_FIELDS:
            proto[k] = [""]
        proto["label"] = fo.Classification(label="")
        proto["detections"] = fo.Detections(detections=[])
        proto["keypoints"] = fo.Keypoints(keypoints=[])
        proto["segmentation"] = fo.Segmentation(mask_path="")
        proto["attributes"] = fo.DynamicEmbeddedDocument()
        ds.add_sample(proto, expand_schema=True)
        ds.delete_samples(proto)
    names = list(load_taxonomy().class_names())
    if ds.default_classes != names:
        ds.default_classes = names
    classes = {"label": names, "detections": names, "keypoints": names}
    if ds.classes != classes:
        ds.classes = classes
    targets = {"segmentation": dict(enumerate(mask_class_table()))}
    if ds.mask_targets != targets:
        ds.mask_targets = targets


# ------------------------------------------------------------------------------------ loading
@dataclass
class LoadReport:
    name: str
    media_dir: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    media_written: int = 0
    seconds: float = 0.0
    up_to_date: bool = False
    total: int = 0
    shards_skipped: int = 0  # unchanged shards whose rows were not read

    def summary(self) -> str:
        if self.up_to_date:
            return f"{self.name}: up to date ({self.total} samples), nothing read ({self.seconds:.1f} s)"
        return (f"{self.name}: {self.total} samples; added {self.added}, updated {self.updated}, deleted "
                f"{self.deleted}, unchanged {self.unchanged}; {self.media_written} media files written to "
                f"{self.media_dir} ({self.seconds:.1f} s)")


def to_fiftyone(
    out: Path | str,
    name: Optional[str] = None,
    sources: Optional[list[str]] = None,
    splits: Optional[list[str]] = None,
    max_samples: Optional[int] = None,
    media_dir: Optional[Path | str] = None,
    overwrite: bool = False,
    batch_size: int = BATCH_SIZE,
    on_progress: Optional[Callable[[int, int], None]] = None,
    engine: str = "bulk",
):
    """Load (or incrementally update) the persistent FiftyOne dataset ``name`` from ``out``.

    ``sources`` / ``splits`` / ``max_samples`` select rows (``splits`` may include ``excluded``;
    by default curation-excluded rows are loaded too, tagged ``exclude``, so they can be restored).
    ``on_progress(done, total)`` is called per batch. ``engine="bulk"`` (default) inserts
    documents built by :func:`row_to_doc` in batches; ``"samples"`` goes through ``fo.Sample``
    objects and ``Dataset.add_samples`` (:func:`row_to_sample`), ~3x slower, same result.
    Returns ``(dataset, LoadReport)``."""
    t0 = time.perf_counter()
    fo = require_fiftyone()
    try:
        out = require_corpus(Path(out))
    except CorpusError as e:
        raise FiftyOneError(str(e)) from None
    name = name or default_dataset_name(out)
    if splits:
        bad = sorted(set(splits) - {"train", "validation", "test", EXCLUDED_SPLIT})
        if bad:
            raise FiftyOneError(f"unknown split(s) {', '.join(bad)}: use train, validation, test or excluded")
    shards = corpus_shards(out, sources, splits)
    if sources:
        present = data_folders(out)
        missing = sorted(set(sources) - set(present))
        if missing:
            raise FiftyOneError(f"{out}: no data for {', '.join(missing)} (present: {', '.join(present)})")
    if not shards:
        raise FiftyOneError(f"{out}: nothing to load for sources {sources or 'all'} and splits {splits or 'all'}")
    ds = _open_dataset(fo, name, out, overwrite)
    info = dict(ds.info.get("unihema") or {})
    media_root = Path(media_dir or info.get("media_dir") or Path(fo.config.default_dataset_dir) / name / "media")
    media = MediaStore(media_root.resolve())
    report = LoadReport(name, str(media.root))
    selection = {"sources": sorted(sources) if sources else None, "splits": sorted(splits) if splits else None,
                 "max_samples": max_samples, "loader": LOADER_VERSION}
    state = shard_state(out, shards)
    if (info.get("shards") == state and info.get("selection") == selection and info.get("media_dir") == str(media.root)
            and len(ds) == info.get("count")):
        report.up_to_date, report.total = True, len(ds)
        report.seconds = time.perf_counter() - t0
        return ds, report

    _declare_schema(fo, ds)
    existing: dict[str, tuple[str, str, list[str]]] = {}
    if len(ds):
        for uid, dg, sid, tags in zip(*ds.values(["unihema_id", "row_digest", "id", "tags"])):
            existing[uid] = (dg, sid, tags or [])
    total = count_rows(shards)
    if max_samples is not None:
        total = min(total, max_samples)
    mask_ids = {c: i for i, c in enumerate(mask_class_table())}
    seen: set[str] = set()
    batch: list = []
    replace: list[str] = []
    done = 0
    if engine not in ("bulk", "samples"):
        raise ValueError(f"engine must be 'bulk' or 'samples', not {engine!r}")
    if ds.media_type is None:
        ds.media_type = "image"
    import datetime as _dt

    def flush() -> None:
        nonlocal batch, replace
        if replace:
            ds.delete_samples(replace)
        if batch and engine == "samples":
            ds.add_samples(batch, progress=False)
        elif batch:
            ds._sample_collection.insert_many(batch, ordered=True)
        batch, replace = [], []

    # shards unchanged since the last load of the same selection: only their ids are read
    same_selection = (info.get("selection") == selection and info.get("media_dir") == str(media.root)
                      and max_samples is None)
    prev_shards = (info.get("shards") or {}) if same_selection else {}
    to_read = []
    for sh in shards:
        rel = sh.path.relative_to(out).as_posix()
        if prev_shards.get(rel) == state[rel]:
            ids = pq.read_table(sh.path, columns=["sample_id"]).column(0).to_pylist()
            if all(i in existing and i not in seen for i in ids):
                seen.update(ids)
                report.unchanged += len(ids)
                report.shards_skipped += 1
                done += len(ids)
                continue
        to_read.append(sh)

    for shard, rows in iter_row_groups(to_read):
        for row in rows:
            if max_samples is not None and done >= max_samples:
                break
            done += 1
            uid = row["sample_id"]
            if uid in seen:
                raise FiftyOneError(f"{shard.path}: sample_id {uid!r} appears twice in {out}; "
                                    f"run `unihema-data validate {out}`")
            seen.add(uid)
            dg = row_digest({**row, "split": shard.split})
            old = existing.get(uid)
            if old is not None and old[0] == dg:
                report.unchanged += 1
                continue
            try:
                if engine == "samples":
                    item = row_to_sample(fo, row, shard.split, media, mask_ids, dg)
                    tags = item.tags
                else:
                    item = row_to_doc(row, shard.split, media, mask_ids, dg, ds._doc.id,
                                      _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None))
                    tags = item["tags"]
            except (KeyError, ValueError, TypeError) as e:
                raise FiftyOneError(f"{shard.path}: row {uid!r} cannot be mapped ({type(e).__name__}: {e}); "
                                    f"run `unihema-data validate {out}`") from None
            if old is not None:  # keep tags the curator added in FiftyOne since the last load
                for t in old[2]:
                    if not t.startswith(QC_TAG_PREFIX) and t not in tags and t != EXCLUDE_TAG:
                        tags.append(t)
                replace.append(old[1])
                report.updated += 1
            else:
                report.added += 1
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
                if on_progress:
                    on_progress(done, total)
        if max_samples is not None and done >= max_samples:
            break
    flush()
    gone = [v[1] for k, v in existing.items() if k not in seen]
    if gone:
        ds.delete_samples(gone)
        report.deleted = len(gone)
    if on_progress:
        on_progress(done, total)
    ds.add_dynamic_sample_fields()
    ds.info["unihema"] = {"out": str(out), "shards": state, "selection": selection, "media_dir": str(media.root),
                          "count": len(ds), "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ds.save()
    report.total = len(ds)
    report.media_written = media.written
    report.seconds = time.perf_counter() - t0
    return ds, report


def _open_dataset(fo, name: str, out: Path, overwrite: bool):
    try:
        exists = fo.dataset_exists(name)
    except Exception as e:  # noqa: BLE001 - mongod did not start / URI unreachable
        raise FiftyOneError(f"cannot reach FiftyOne's database ({type(e).__name__}: {e}); set "
                            f"FIFTYONE_DATABASE_URI to a running MongoDB or reinstall 'unihema[fiftyone]'") from None
    if exists:
        ds = fo.load_dataset(name)
        prev = (ds.info.get("unihema") or {}).get("out")
        if overwrite or (not prev and len(ds) == 0):
            if overwrite:
                ds.delete()
                ds = fo.Dataset(name, persistent=True)
            return ds
        if prev is None:
            raise FiftyOneError(f"FiftyOne dataset {name!r} exists and was not loaded by unihema-data; "
                                f"choose another --name or pass --overwrite")
        if prev != str(out):
            raise FiftyOneError(f"FiftyOne dataset {name!r} was loaded from {prev}, not {out}; choose another "
                                f"--name or pass --overwrite")
        return ds
    ds = fo.Dataset(name, persistent=True)
    return ds


# ----------------------------------------------------------------------------------- write-back
def collect_edits(ds) -> list:
    """The curator's state of every sample of ``ds`` as :class:`~unihema_data.curation.Edit` s:
    image label, object labels by ``index`` (detections and keypoints), user tags (every tag not
    starting with ``qc:``). Objects without ``index`` (drawn in the App) are reported in
    ``Edit.new_objects``."""
    from .curation import CurationError, Edit

    fields = ["unihema_id", "tags", "label.label", "detections.detections.index", "detections.detections.label",
              "detections.detections.bounding_box", "keypoints.keypoints.index", "keypoints.keypoints.label"]
    schema = ds.get_field_schema()
    for f in ("label", "detections", "keypoints"):
        if f not in schema:
            raise FiftyOneError(f"FiftyOne dataset {ds.name!r} has no {f!r} field: it was not loaded by unihema-data")
    edits = []
    for uid, tags, lab, di, dl, db, ki, kl in zip(*ds.values(fields)):
        objects: dict[int, str] = {}
        boxes: dict[int, list[float]] = {}
        new = 0
        for idxs, labs, bbs in ((di, dl, db), (ki, kl, None)):
            for j, (idx, l) in enumerate(zip(idxs or [], labs or [])):
                if idx is None:
                    new += 1
                    continue
                idx = int(idx)
                if idx in objects and objects[idx] != l:
                    raise CurationError(f"{uid}: object {idx} is labelled {objects[idx]!r} as a detection and "
                                        f"{l!r} as a keypoint in FiftyOne; make them agree")
                objects[idx] = l
                if bbs is not None and bbs[j] is not None:
                    boxes[idx] = list(bbs[j])
        user_tags = {t for t in tags or [] if not t.startswith(QC_TAG_PREFIX)}
        edits.append(Edit(sample_id=uid, label=lab if lab is not None else "", objects=objects, tags=user_tags,
                          new_objects=new, boxes=boxes))
    return edits


def from_fiftyone(name: str, into: Path | str, actor: Optional[str] = None, reload: bool = True,
                  dry_run: bool = False):
    """Write the curation of FiftyOne dataset ``name`` into ``into`` (see
    :func:`unihema_data.curation.apply_curation`); afterwards the dataset is reloaded from
    ``into`` so it shows the written state. ``dry_run``: report the changes, write nothing. Returns the :class:`~unihema_data.curation.CurationReport`."""
    from .curation import apply_curation

    fo = require_fiftyone()
    try:
        into = require_corpus(Path(into))
    except CorpusError as e:
        raise FiftyOneError(str(e)) from None
    if not fo.dataset_exists(name):
        raise FiftyOneError(f"no FiftyOne dataset named {name!r} (have: {', '.join(fo.list_datasets()) or 'none'})")
    ds = fo.load_dataset(name)
    edits = collect_edits(ds)
    report = apply_curation(into, edits, actor=actor or f"fiftyone:{name}", dry_run=dry_run)
    info = ds.info.get("unihema") or {}
    if reload and not dry_run and report.changes and info.get("out") == str(into):
        sel = info.get("selection") or {}
        to_fiftyone(into, name, sources=sel.get("sources"), splits=sel.get("splits"),
                    max_samples=sel.get("max_samples"), media_dir=info.get("media_dir"))
    return report


# ----------------------------------------------------------------------------------------- App
def launch_app(ds, port: Optional[int] = None, address: str = "127.0.0.1", open_browser: bool = False):
    """Serve the FiftyOne App for ``ds`` on ``address:port`` (a free port when ``port`` is None).
    Returns the session; ``session.close()`` stops the server."""
    import logging

    fo = require_fiftyone()
    if port is None:
        port = free_port(address)
    log = logging.getLogger("fiftyone.core.session.session")  # its banner and ssh text; we print our own
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        return fo.launch_app(ds, port=port, address=address, remote=not open_browser, auto=False)
    finally:
        log.setLevel(level)


def free_port(address: str = "127.0.0.1") -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]
