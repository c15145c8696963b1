"""Turn one native :class:`~unihema_data.adapters.base.RawSample` into one unified row.

This runs in worker processes: everything it needs travels in a picklable :class:`SourceContext`.
All convention changes happen here (boxes -> COCO absolute, masks -> RLE / indexed PNG, native
labels -> taxonomy), so adapters stay pure parsers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Optional

import numpy as np

from . import masks as mask_codec
from .adapters.base import AdapterError, RawSample
from .errors import CorruptInputError
from .boxes import BoxFormat, clip_coco, native_degenerate, to_coco
from .formats.disk import show
from .images import ImageDecodeError
from .neardup import image_phashes
from .refs import MaskFileCache, Polygon, decode_object_mask, load_image_ref, rgb_to_values
from .prompts import task_prompt
from .schema import attrs_to_list, empty_row
from .splits import DEFAULT_SEED, grouped_split, normalize_split
from .taxonomy import TaxonomyError, load_taxonomy


#: adapters with ``mask_snap_stray_values`` snap undeclared mask values (brush edges) only when
#: they cover at most this fraction of the mask's pixels; a mask made of more of them is refused
#: (it is a different kind of mask, or a colour/antialiased export, not a few stray pixels)
MASK_SNAP_MAX_FRACTION = 0.01


class RowError(AdapterError):
    """A record could not be converted; the message names the file and the problem."""


@dataclass(frozen=True)
class SourceContext:
    """Per-source constants a worker needs (catalog defaults, adapter conventions, options)."""

    source: str
    license: str
    granularity: str
    disease: str
    magnification: str = ""
    microscope: str = ""
    stain: str = ""
    box_format: Optional[str] = None
    adapter_tasks: tuple[str, ...] = ()
    mask_class_order: tuple[str, ...] = ()
    mask_snap_stray_values: bool = False
    mask_palette: tuple = ()  # ((r, g, b), native value) pairs for RGB semantic masks
    seed: int = DEFAULT_SEED
    taxonomy_path: Optional[str] = None
    extra: dict = field(default_factory=dict)


def build_row(sample: RawSample, ctx: SourceContext) -> dict[str, Any]:
    """Convert one record. Raises :class:`RowError` (image/annotation problems) or
    :class:`~unihema_data.taxonomy.TaxonomyError` (unmapped labels); any other failure is
    wrapped in a :class:`RowError` naming the record's file."""
    try:
        return _build_row(sample, ctx)
    except (AdapterError, TaxonomyError):
        raise
    except Exception as e:  # noqa: BLE001 - name the file whatever went wrong
        where = sample.annotation_file or show(str(sample.image_path))
        raise RowError(f"{ctx.source}: {where}: {type(e).__name__}: {e}") from e


def _build_row(sample: RawSample, ctx: SourceContext) -> dict[str, Any]:
    tax = load_taxonomy(ctx.taxonomy_path)
    where = sample.annotation_file or show(str(sample.image_path))
    try:
        stored = load_image_ref(sample.image_path)  # lazy reference decoded here, in the worker
    except ImageDecodeError as e:
        raise RowError(f"{ctx.source}: {e}") from None
    W, H = stored.width, stored.height
    if sample.declared_size and sample.declared_size[:2] != (W, H):
        dw, dh, what = sample.declared_size
        image_name = show(sample.image_path.name if isinstance(sample.image_path, Path) else str(sample.image_path))
        raise CorruptInputError(f"{where}: {what} says {dw}x{dh} but image {image_name} is {W}x{H}")
    row = empty_row()
    flags = list(sample.qc_flags) + stored.flags
    name = PurePosixPath(sample.rel_path).name
    if sample.question or sample.answer:  # one row per QA pair: <image rel path>#qa-<n>
        name = name.rsplit("#", 1)[0]
    if stored.reencoded:
        name = str(PurePosixPath(name).with_suffix(".png")) if PurePosixPath(name).suffix else name + ".png"
        flags.append(f"reencoded_from:{stored.native_format.lower()}")
    meta = sample.meta
    group = sample.group_id or sample.rel_path
    source_split = sample.source_split
    split = normalize_split(source_split) or grouped_split(ctx.source, group, ctx.seed)
    row.update(
        sample_id=f"{ctx.source}/{sample.rel_path}",
        source=ctx.source,
        subset=sample.subset,
        split=split,
        source_split=source_split,
        group_id=group,
        license=ctx.license,
        image_sha256=stored.sha256,
        image_phash=_phashes(stored.data, ctx.source, where, stored.gray),
        image={"bytes": stored.data, "path": name},
        width=W,
        height=H,
        granularity=meta.get("granularity", ctx.granularity),
        disease=meta.get("disease", ctx.disease),
        magnification=meta.get("magnification", ctx.magnification),
        microscope=meta.get("microscope", ctx.microscope),
        stain=meta.get("stain", ctx.stain),
    )
    tasks: list[str] = []

    # classification + image-level attributes
    if sample.label is not None:
        label = tax.map_label(ctx.source, sample.label, file=where, table=sample.label_table)
        if "refine_label" in meta:  # a second native key refines the label (WBCAtt: file-name prefix)
            label, refine_flags = tax.refine_label(ctx.source, label, meta["refine_label"])
            flags.extend(refine_flags)
        info = tax.labels[label]
        row["label"], row["label_group"], row["label_cl"] = info.id, info.group, info.cl or ""
        row["source_label"] = str(sample.label)
        tasks.append("classification")
    if sample.attributes:
        row["attributes"] = attrs_to_list(_map_attrs(tax, ctx.source, sample.attributes, where))
        tasks.append("attributes")

    # objects
    objs = row["objects"]
    categories: dict[str, str] = {}  # native -> canonical, memo for this image
    mask_files = MaskFileCache()  # instance-mask files named by several objects: decoded once
    has_box = has_mask = has_obj_attrs = has_point = False
    box_format = BoxFormat(ctx.box_format) if ctx.box_format is not None else None
    for i, ob in enumerate(sample.objects):
        category = categories.get(ob.category)
        if category is None:
            category = categories[ob.category] = tax.map_label(ctx.source, ob.category, file=where)
        objs["category"].append(tax.class_id(category))
        objs["source_category"].append(str(ob.category))
        rle = ""
        if ob.mask is not None:
            m = np.asarray(ob.mask) if isinstance(ob.mask, (list, tuple)) else ob.mask
            if isinstance(m, np.ndarray) and m.shape != (H, W):
                raise RowError(f"{ctx.source}: {where}: object {i} mask is {m.shape[1]}x{m.shape[0]}, image is {W}x{H}")
            rle = decode_object_mask(m, H, W, mask_files, f"{where}: object {i}") or ""
            if isinstance(m, Polygon):  # vertices outside the image: rasterized clipped, and said
                xs = [v for r in m.rings for v in r[0::2]]
                ys = [v for r in m.rings for v in r[1::2]]
                if min(xs) < 0 or min(ys) < 0 or max(xs) > W or max(ys) > H:
                    flags.append(f"clipped_polygon:{i}:" + ",".join(_exact(v) for v in (min(xs), min(ys), max(xs), max(ys))))
            has_mask = True
        objs["mask_rle"].append(rle)
        circle = [float(v) for v in ob.circle] if getattr(ob, "circle", None) is not None else None
        if circle is not None:  # (cx, cy, r) or (cx, cy, x, y): centre and a point on the circumference
            if len(circle) not in (3, 4) or not all(math.isfinite(v) for v in circle) or circle[2] < 0 and len(circle) == 3:
                raise RowError(f"{ctx.source}: {where}: object {i} has a bad circle {list(ob.circle)} "
                               "(expected cx, cy, r >= 0 or cx, cy and a point on the circumference)")
        point = [float(v) for v in ob.point] if ob.point is not None else (circle[:2] if circle is not None else [])
        objs["point"].append(point)
        if ob.bbox is not None:
            if box_format is None:
                raise RowError(f"{ctx.source}: adapter gives boxes but declares no box_format")
            box = to_coco(ob.bbox, box_format, W, H)
            if not all(math.isfinite(v) for v in box):
                raise RowError(f"{ctx.source}: {where}: object {i} has a non-finite box {list(ob.bbox)}")
            if box[2] < 0 or box[3] < 0:
                raise RowError(f"{ctx.source}: {where}: object {i} has a negative-size box {list(ob.bbox)}")
            if native_degenerate(ob.bbox, box_format):
                flags.append(f"degenerate_native_box:{i}:" + ",".join(f"{float(v):g}" for v in ob.bbox))
            src = "annotated"
            has_box = True
        elif rle:
            box = mask_codec.rle_bbox(rle, H, W)
            src = "from_mask"
            has_box = True
        elif circle is not None:  # a circle: the centre is the point, the box the circumscribed square
            cx, cy = circle[0], circle[1]
            r = circle[2] if len(circle) == 3 else math.hypot(circle[2] - cx, circle[3] - cy)
            box = [cx - r, cy - r, 2.0 * r, 2.0 * r]
            src = "from_circle"
            has_box = True
        elif point:  # a point-annotated object: the point is kept, its "box" has no size
            box = [point[0], point[1], 0.0, 0.0]
            src = "from_point"
            has_point = True
        else:
            raise RowError(f"{ctx.source}: {where}: object {i} has neither box, mask nor point")
        box, clipped = clip_coco(box, W, H)
        if clipped:  # the native box stays recoverable from the flag
            native = (",".join(_exact(v) for v in ob.bbox) if ob.bbox is not None
                      else "circle:" + ",".join(_exact(v) for v in circle) if circle is not None and not rle else "")
            flags.append(f"clipped_box:{i}:{native}")
        if (box[2] == 0 or box[3] == 0) and src != "from_point":
            flags.append(f"zero_area_box:{i}")
        objs["bbox"].append(box)
        objs["bbox_source"].append(src)
        oattrs = _map_attrs(tax, ctx.source, ob.attributes, where) if ob.attributes else {}
        has_obj_attrs |= bool(oattrs)
        objs["attributes"].append(attrs_to_list(oattrs) if oattrs else [])
    if (has_box or has_point) and "detection" in ctx.adapter_tasks:  # points: point detection
        tasks.append("detection")
    if has_obj_attrs and "attributes" not in tasks:
        tasks.append("attributes")

    # semantic segmentation
    if sample.semantic_mask is not None:
        row["semantic_mask"], row["mask_classes"] = _semantic(sample, ctx, tax, where, W, H, flags)
        tasks.append("segmentation")
    elif has_mask:
        tasks.append("segmentation")

    # a published question/answer pair (the same columns as the generated VQA text sets)
    if sample.question or sample.answer:
        if not (isinstance(sample.question, str) and isinstance(sample.answer, str)
                and sample.question.strip() and sample.answer.strip()):
            raise RowError(f"{ctx.source}: {where}: a VQA row needs a non-empty question and answer")
        row["question"], row["answer"] = sample.question, sample.answer
        tasks.append("vqa")

    order = ("detection", "segmentation", "classification", "attributes", "vqa")
    row["tasks"] = [t for t in order if t in tasks]
    row["prompt"] = row["question"] if row["question"] else task_prompt(row["tasks"], row["disease"])
    row["qc_flags"] = flags
    return row


def _phashes(data: bytes, source: str, where: str, gray=None) -> list[str]:
    try:
        return image_phashes(data, gray)
    except (OSError, ValueError) as e:
        raise RowError(f"{source}: {where}: cannot decode the image for its perceptual hash ({e})") from None


def _exact(v) -> str:
    """Shortest text that reads back as the same float (``:g`` kept only 6 digits: 0.3027343 became
    0.302734 and 12345678901234567890 became 1.23457e+19, so the native box was not recoverable)."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _map_attrs(tax, source: str, attrs: dict[str, Any], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in attrs.items():
        name, value = tax.map_attribute(source, k, v, file=where)
        out[name] = value
    return out


def _semantic(sample: RawSample, ctx: SourceContext, tax, where: str, W: int, H: int, qc_flags: list[str]):
    mask_name = show(str(sample.semantic_mask)) if not isinstance(sample.semantic_mask, np.ndarray) else where
    try:
        native = mask_codec.read_native_mask(sample.semantic_mask, mask_name, keep_rgb=bool(ctx.mask_palette))
    except (OSError, ValueError) as e:
        raise RowError(f"{ctx.source}: {mask_name}: unreadable mask ({e})") from None
    if native.ndim == 3:  # colour mask with a declared palette
        native = rgb_to_values(native[..., :3], dict(ctx.mask_palette), f"{ctx.source}: {mask_name}")
    if native.shape != (H, W):
        raise RowError(
            f"{ctx.source}: {mask_name}: mask is {native.shape[1]}x{native.shape[0]} but image is {W}x{H} "
            f"(image {show(str(sample.image_path))})"
        )
    classes = list(ctx.mask_class_order)
    lut: dict[int, int] = {}
    stray = [int(v) for v in np.unique(native).tolist() if int(v) not in sample.mask_values]
    if stray and not ctx.mask_snap_stray_values:
        raise RowError(
            f"{ctx.source}: {mask_name}: unexpected mask value(s) {stray} (expected one of {sorted(sample.mask_values)})"
        )
    if stray:  # documented source quirk: snap to the nearest declared value, and say so
        levels = np.array(sorted(sample.mask_values))
        n = int(np.isin(native, stray).sum())
        if n > MASK_SNAP_MAX_FRACTION * native.size:
            raise RowError(
                f"{ctx.source}: {mask_name}: {n} of {native.size} pixels ({n / native.size:.1%}) hold undeclared "
                f"mask value(s) {stray[:10]}{'...' if len(stray) > 10 else ''} (expected one of "
                f"{sorted(sample.mask_values)}); stray values are snapped only when they are at most "
                f"{MASK_SNAP_MAX_FRACTION:.0%} of the mask: this is not the same kind of mask"
            )
        snapped = levels[np.abs(levels[None, :] - np.array(stray)[:, None]).argmin(axis=1)]
        remap = np.arange(max(int(native.max()), int(levels.max())) + 1)
        remap[stray] = snapped
        native = remap[native]
        qc_flags.append(f"mask_stray_pixels:{n}")
    for v in np.unique(native).tolist():
        canon = tax.map_mask_class(ctx.source, sample.mask_values[int(v)], file=mask_name)
        if canon not in classes:
            classes.append(canon)
        lut[int(v)] = classes.index(canon)
    table = np.zeros(int(native.max()) + 1, dtype=np.uint8)
    for v, idx in lut.items():
        table[v] = idx
    indices = table[native]
    return {"bytes": mask_codec.encode_semantic(indices), "path": "mask.png"}, classes


__all__ = ["SourceContext", "build_row", "RowError"]
