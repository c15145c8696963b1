"""``unihema-data export``: a converted corpus as COCO, YOLO (Ultralytics) or class folders.

Common to every format
    * Images are written once, as the stored bytes (never re-encoded): the file name is
      ``<sha256 of the stored bytes>.<ext>`` (extension from the bytes' format), so an image shared
      by several rows or sources is one file. Within one export the first file is written and the
      others are hard links to it where the format wants one file per split.
    * The export is built in a temporary sibling folder and swapped into ``--out`` when complete;
      an existing ``--out`` is replaced only if it holds a previous export (``unihema-export.json``).
    * Class ids are the taxonomy's stable ids (``load_taxonomy().class_names()``, index = id).

coco
    ``annotations/<split>.json`` per split and ``images/<split>/``: ``images`` (id, file_name,
    width, height, sample_id, source), ``categories`` (every taxonomy class, ``id`` = stable id + 1,
    since COCO reserves 0), ``annotations`` with ``bbox`` ``[x, y, w, h]`` (absolute, as stored),
    ``area`` (mask area when a mask exists, else ``w * h``), ``segmentation`` as compressed RLE
    (``{"size": [h, w], "counts": ...}``) where the object has a mask, ``iscrowd`` 0. Only
    detection/segmentation objects are exported; a row without objects is an image without
    annotations.
yolo
    Ultralytics layout: ``images/<split>/``, ``labels/<split>/<stem>.txt`` and ``data.yaml``
    (``path``, ``train``/``val``/``test``, ``names`` = ``{id: name}`` in id order). One line per object:
    ``<id> <xc> <yc> <w> <h>`` normalized to [0, 1] by the image size; an object with a mask is
    written as a segmentation polygon ``<id> x1 y1 x2 y2 ...`` (normalized; the largest outer contour
    of the mask) when ``--format yolo`` runs with masks present (``task: segment`` in data.yaml).
    A corpus mixing objects with and without masks writes boxes for the latter.
imagefolder
    ``<split>/<label>/<file>`` for rows with an image label (single-cell classification), loadable
    with ``datasets.load_dataset("imagefolder", data_dir=...)``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import yaml
from PIL import Image

from .corpus import CorpusError, class_id, class_name, iter_rows, shards
from .schema import SCHEMA_VERSION, SPLITS

FORMATS = ("coco", "yolo", "imagefolder")
MARKER = "unihema-export.json"
YOLO_SPLIT = {"train": "train", "validation": "val", "test": "test"}
_EXT = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


class ExportError(Exception):
    """The export cannot be made (message names the path and the problem); ``--out`` is unchanged."""


@dataclass
class ExportReport:
    format: str
    out: Path
    images: dict[str, int] = field(default_factory=dict)       # per split
    annotations: dict[str, int] = field(default_factory=dict)  # per split (objects, or labelled images)
    skipped: int = 0                                           # rows without anything to export
    files_written: int = 0                                     # distinct image files written


def _ext(data: bytes, sample_id: str) -> str:
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
    except Exception as e:
        raise ExportError(f"{sample_id}: stored image cannot be read ({e})") from None
    return _EXT.get(fmt or "", ".png" if fmt is None else f".{fmt.lower()}")


class _ImageStore:
    """Writes each distinct image once; further uses in other folders are hard links (copy if the
    filesystem refuses links)."""

    def __init__(self) -> None:
        self.first: dict[str, Path] = {}
        self.files_written = 0

    def put(self, data: bytes, folder: Path, sample_id: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        name = digest + _ext(data, sample_id)
        target = folder / name
        if target.exists():
            return name
        folder.mkdir(parents=True, exist_ok=True)
        src = self.first.get(digest)
        if src is not None:
            try:
                os.link(src, target)
            except OSError:
                shutil.copyfile(src, target)
        else:
            target.write_bytes(data)
            self.first[digest] = target
            self.files_written += 1
        return name


def _prepare_out(dest: Path) -> Path:
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"{dest}: exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MARKER).exists():
        raise ExportError(f"{dest}: folder exists, is not empty and holds no previous export ({MARKER}); "
                          "choose another --out")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    return tmp


def _swap_in(tmp: Path, dest: Path) -> None:
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


def export(out: Path, fmt: str, dest: Path, sources: Optional[Sequence[str]] = None, split: Optional[str] = None,
           on_progress: Optional[Callable[[int, int], None]] = None) -> ExportReport:
    """Export ``out`` (or its ``sources`` / ``split``) as ``fmt`` into ``dest`` (atomic)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    try:
        parts = shards(out, sources, split)
    except CorpusError as e:
        raise ExportError(str(e)) from None
    if not parts:
        raise ExportError(f"{out}: nothing to export (no shards for the chosen sources/split)")
    from .corpus import count_rows

    total = count_rows(p.path for p in parts)
    tmp = _prepare_out(Path(dest))
    try:
        try:
            rep = {"coco": _coco, "yolo": _yolo, "imagefolder": _imagefolder}[fmt](parts, tmp, total, on_progress)
        except CorpusError as e:
            raise ExportError(str(e)) from None
        except OSError as e:  # disk full, permissions
            raise ExportError(f"cannot write {dest}: {e}") from None
        rep.out = Path(dest)
        (tmp / MARKER).write_text(json.dumps({"format": fmt, "corpus": str(Path(out).resolve()),
                                              "sources": sorted({p.source for p in parts}), "split": split,
                                              "images": rep.images, "annotations": rep.annotations}, indent=1) + "\n")
        _swap_in(tmp, Path(dest))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rep


def _rows_by_split(parts, total, on_progress, columns=None):
    n = 0
    for sp in SPLITS:
        for row in iter_rows([p.path for p in parts if p.split == sp], columns):
            n += 1
            if on_progress:
                on_progress(n, total)
            yield sp, row


def _detection_row(row: dict) -> bool:
    """Rows exported as COCO/YOLO images: with objects, of a detection/segmentation task, or without
    any annotation (a background image of a detection source); classification/text-only rows are not."""
    return bool(row["objects"]["bbox"]) or bool(set(row["tasks"]) & {"detection", "segmentation"}) or not row["tasks"]


def _categories() -> list[dict]:
    from .taxonomy import load_taxonomy

    return [{"id": i + 1, "name": n, "supercategory": "cell", "taxonomy_id": i}
            for i, n in enumerate(load_taxonomy().class_names())]


def _coco(parts, tmp: Path, total: int, on_progress) -> ExportReport:
    rep = ExportReport("coco", tmp)
    store = _ImageStore()
    cats = _categories()
    docs: dict[str, dict] = {}
    next_img: dict[str, int] = defaultdict(int)
    next_ann: dict[str, int] = defaultdict(int)
    for sp, row in _rows_by_split(parts, total, on_progress):
        objs = row["objects"]
        if not _detection_row(row):
            rep.skipped += 1
            continue
        doc = docs.setdefault(sp, {"info": {"description": f"UniHema export, split {sp}", "version": SCHEMA_VERSION,
                                            "url": "https://github.com/intelligentMachines-ITU/Uni-Hema"},
                                   "licenses": [],
                                   "images": [], "annotations": [], "categories": cats})
        name = store.put(row["image"]["bytes"], tmp / "images" / sp, row["sample_id"])
        next_img[sp] += 1
        img_id = next_img[sp]
        w, h = int(row["width"]), int(row["height"])
        doc["images"].append({"id": img_id, "file_name": name, "width": w, "height": h,
                              "sample_id": row["sample_id"], "source": row["source"], "license": row["license"]})
        for box, cat, rle in zip(objs["bbox"], objs["category"], objs["mask_rle"]):
            if not box:
                continue
            next_ann[sp] += 1
            x, y, bw, bh = (float(v) for v in box)
            ann = {"id": next_ann[sp], "image_id": img_id, "category_id": class_id(cat) + 1,
                   "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0}
            if rle:
                from .masks import rle_area

                ann["segmentation"] = {"size": [h, w], "counts": rle}
                ann["area"] = float(rle_area(rle, h, w))
            doc["annotations"].append(ann)
        rep.images[sp] = len(doc["images"])
        rep.annotations[sp] = len(doc["annotations"])
    if not docs:
        raise ExportError("no row carries boxes or instance masks: nothing to export as COCO "
                          "(use --format imagefolder for classification sources)")
    (tmp / "annotations").mkdir()
    for sp, doc in docs.items():
        (tmp / "annotations" / f"{sp}.json").write_text(json.dumps(doc), encoding="utf-8")
    rep.files_written = store.files_written
    return rep


def mask_polygon(mask: np.ndarray) -> list[tuple[float, float]]:
    """Outer boundary of the largest 4-connected part of a binary mask, as a polygon of pixel-corner
    coordinates (pixel ``(x, y)`` covers ``[x, x+1) x [y, y+1)``), collinear points dropped.

    Every pixel edge between the mask and the background is a directed edge with the mask on its
    right (clockwise in image coordinates); edges chain into closed loops, taking the right-most turn
    where two pixels touch only at a corner (so diagonal neighbours stay separate, 4-connectivity).
    Outer boundaries enclose a positive area, holes a negative one; the loop of largest area is
    returned, so its polygon encloses exactly that part's pixels (holes ignored). Pure numpy."""
    m = np.asarray(mask, bool)
    if not m.any():
        return []
    ys0, xs0 = np.nonzero(m)
    oy, ox = int(ys0.min()), int(xs0.min())
    c = m[oy:ys0.max() + 1, ox:xs0.max() + 1]  # work on the mask's extent only
    p = np.zeros((c.shape[0] + 2, c.shape[1] + 2), bool)
    p[1:-1, 1:-1] = c
    out_edges: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for dy, dx, a, b in ((-1, 0, (0, 0), (1, 0)), (0, 1, (1, 0), (1, 1)), (1, 0, (1, 1), (0, 1)), (0, -1, (0, 1), (0, 0))):
        # pixels whose neighbour in direction (dy, dx) is background -> one boundary edge each
        nb = np.roll(p, (-dy, -dx), axis=(0, 1))
        yy, xx = np.nonzero(p & ~nb)
        for y, x in zip((yy - 1).tolist(), (xx - 1).tolist()):
            out_edges[(x + a[0], y + a[1])].append((x + b[0], y + b[1]))
    best: list[tuple[int, int]] = []
    best_area = 0.0
    while out_edges:
        start = min(out_edges)
        loop = [start]
        prev, cur = start, out_edges[start].pop()
        if not out_edges[start]:
            del out_edges[start]
        while cur != start or out_edges.get(cur):
            options = out_edges.get(cur)
            if not options:
                break
            d = (cur[0] - prev[0], cur[1] - prev[1])
            right = (-d[1], d[0])  # right turn in image coordinates (y down)
            nxt = next((o for o in options if (o[0] - cur[0], o[1] - cur[1]) == right), None)
            if nxt is None:
                nxt = next((o for o in options if (o[0] - cur[0], o[1] - cur[1]) == d), options[0])
            options.remove(nxt)
            if not options:
                del out_edges[cur]
            loop.append(cur)
            prev, cur = cur, nxt
            if cur == start:
                break
        xs = np.array([q[0] for q in loop], float)
        ys = np.array([q[1] for q in loop], float)
        area = 0.5 * float(np.dot(xs, np.roll(ys, -1)) - np.dot(np.roll(xs, -1), ys))
        if area > best_area:
            best, best_area = loop, area
    poly = []
    n = len(best)
    for i in range(n):
        a, b, c2 = best[i - 1], best[i], best[(i + 1) % n]
        if (b[0] - a[0]) * (c2[1] - b[1]) != (b[1] - a[1]) * (c2[0] - b[0]):
            poly.append((float(b[0] + ox), float(b[1] + oy)))
    return poly


def _yolo(parts, tmp: Path, total: int, on_progress) -> ExportReport:
    from .masks import decode_rle
    from .taxonomy import load_taxonomy

    rep = ExportReport("yolo", tmp)
    store = _ImageStore()
    any_mask = False
    for sp, row in _rows_by_split(parts, total, on_progress):
        objs = row["objects"]
        if not _detection_row(row):
            rep.skipped += 1
            continue
        ysp = YOLO_SPLIT[sp]
        name = store.put(row["image"]["bytes"], tmp / "images" / ysp, row["sample_id"])
        w, h = int(row["width"]), int(row["height"])
        lines = []
        for box, cat, rle in zip(objs["bbox"], objs["category"], objs["mask_rle"]):
            if not box:
                continue
            cid = class_id(cat)
            poly = mask_polygon(decode_rle(rle, h, w)) if rle else []
            if len(poly) >= 3:
                any_mask = True
                lines.append(f"{cid} " + " ".join(f"{x / w:.6f} {y / h:.6f}" for x, y in poly))
            else:
                x, y, bw, bh = (float(v) for v in box)
                lines.append(f"{cid} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}")
        lab = tmp / "labels" / ysp / (Path(name).stem + ".txt")
        lab.parent.mkdir(parents=True, exist_ok=True)
        if lab.exists():  # the same image in one split twice (e.g. two sources): keep both label sets
            lines = lab.read_text().splitlines() + [ln for ln in lines if ln not in lab.read_text().splitlines()]
        lab.write_text("".join(ln + "\n" for ln in lines))
        rep.images[sp] = rep.images.get(sp, 0) + 1
        rep.annotations[sp] = rep.annotations.get(sp, 0) + len(lines)
    if not rep.images:
        raise ExportError("no row carries boxes or instance masks: nothing to export as YOLO "
                          "(use --format imagefolder for classification sources)")
    names = load_taxonomy().class_names()
    # no `path`: Ultralytics then takes the folder holding data.yaml as the dataset root (a relative
    # `path` would be resolved against its global datasets_dir instead), so the export can be moved
    data = {**{YOLO_SPLIT[s]: f"images/{YOLO_SPLIT[s]}" for s in SPLITS if s in rep.images},
            "nc": len(names), "names": {i: n for i, n in enumerate(names)}}
    if any_mask:
        data["task"] = "segment"
    (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    rep.files_written = store.files_written
    return rep


def parse_yolo_label(line: str) -> tuple[int, list[float]]:
    """``(class id, values)`` of one YOLO label line (4 values = box, more = polygon)."""
    parts = line.split()
    return int(parts[0]), [float(v) for v in parts[1:]]


def _imagefolder(parts, tmp: Path, total: int, on_progress) -> ExportReport:
    rep = ExportReport("imagefolder", tmp)
    store = _ImageStore()
    seen: set[tuple[str, str, str]] = set()
    for sp, row in _rows_by_split(parts, total, on_progress):
        label = class_name(row["label"])
        if not label:
            rep.skipped += 1
            continue
        if "/" in label or label in (".", ".."):
            raise ExportError(f"{row['sample_id']}: label {label!r} cannot be a folder name")
        key = (sp, label, store.put(row["image"]["bytes"], tmp / sp / label, row["sample_id"]))
        if key in seen:  # the same image with the same label twice (e.g. PBC and WBCAtt): one file
            continue
        seen.add(key)
        rep.images[sp] = rep.images.get(sp, 0) + 1
        rep.annotations[sp] = rep.annotations.get(sp, 0) + 1
    if not rep.images:
        raise ExportError("no row has an image label: nothing to export as class folders "
                          "(use --format coco or yolo for detection sources)")
    rep.files_written = store.files_written
    return rep
