"""``unihema-data preview``: a sample grid per source with boxes, masks, points and labels drawn.

Samples are chosen deterministically (the rows with the smallest ``sha256(sample_id)``), so a grid
changes only when the data does. Each sample is drawn in a ``CELL x CELL`` cell: the image scaled
to fit (aspect kept, centred), instance masks and semantic masks as translucent overlays, boxes as
``BOX_WIDTH``-pixel outlines in the class colour (:func:`grid_colours`: distinct per class within a
grid, listed in a legend after the title), points as dots, and a caption
strip (``CAPTION`` px) with the image label or the object categories; text-set rows get a taller
strip (``TEXT_CAPTION``) with their question and answer, masked text and target, or caption. A grid of several sources
stacks one band per source, each with a title strip (``TITLE`` px).

The card (:mod:`unihema_data.card`) shows ``OUT/previews/<source>.png``; :func:`refresh_previews`
re-renders them only for sources whose fingerprint changed (``OUT/previews/index.json``).
"""
from __future__ import annotations

import hashlib
import heapq
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .corpus import CorpusError, class_name, count_rows, iter_rows, shards, sources_of
from .images import decode
from .masks import decode_rle, decode_semantic
from .outdir import read_manifest

CELL = 256
CAPTION = 28
#: caption strip of text-set rows: the label plus up to ``TEXT_LINES`` wrapped lines of the text
TEXT_LINES = 5
TEXT_CAPTION = CAPTION + TEXT_LINES * 15
TITLE = 30
COLUMNS = 4
BOX_WIDTH = 3
MASK_ALPHA = 0.45
BACKGROUND = (24, 24, 24)
TEXT = (240, 240, 240)
PREVIEW_VERSION = "1"

_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
            (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
            (0, 0, 128), (128, 128, 255)]


#: semantic-mask class ``i`` (``mask_classes[i]``, 0 = background, not drawn) is tinted ``MASK_PALETTE[i]``
MASK_PALETTE = [(0, 0, 0), (255, 200, 0), (0, 200, 255), (255, 0, 128), (0, 255, 128), (255, 96, 0),
                (128, 64, 255), (255, 255, 255)]


def class_colour(label: str) -> tuple[int, int, int]:
    """Default colour of a canonical label: its stable taxonomy class id indexes a 20-colour palette
    (labels outside the taxonomy hash into it). Grids use :func:`grid_colours` instead, which keeps
    the classes of one grid apart."""
    from .taxonomy import load_taxonomy

    tax = load_taxonomy()
    if tax.is_known_label(label):
        i = tax.class_id(label)
    else:
        i = int.from_bytes(hashlib.sha256(label.encode()).digest()[:4], "big")
    return _PALETTE[i % len(_PALETTE)]


def grid_colours(rows: Sequence[dict]) -> dict[str, tuple[int, int, int]]:
    """Colours of the labels and object categories of ``rows``: distinct palette entries in order of
    stable class id (so two classes of one grid never share a colour, up to 20 classes)."""
    from .taxonomy import load_taxonomy

    tax = load_taxonomy()
    names = {class_name(r.get("label")) for r in rows} | {class_name(c) for r in rows for c in r["objects"]["category"]}
    names.discard("")
    order = sorted(names, key=lambda n: (tax.class_id(n) if tax.is_known_label(n) else 10**9, n))
    return {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(order)}


@dataclass
class CellInfo:
    """Where a sample was drawn: cell origin in the grid, scale and offset of the image inside it."""

    sample_id: str
    origin: tuple[int, int]
    scale: float
    offset: tuple[int, int]
    boxes: list[tuple[list[float], str, tuple[int, int, int]]] = field(default_factory=list)  # [x,y,w,h], label, colour
    legend: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # drawn name -> colour

    def to_grid(self, x: float, y: float) -> tuple[float, float]:
        """Grid pixel of a native image coordinate."""
        return (self.origin[0] + self.offset[0] + x * self.scale, self.origin[1] + self.offset[1] + y * self.scale)


def pick_rows(out: Path, source: str, n: int) -> list[dict]:
    """The ``n`` rows of ``source`` with the smallest ``sha256(sample_id)`` (deterministic, order-free)."""
    files = [s.path for s in shards(out, [source])]
    best = heapq.nsmallest(n, ((hashlib.sha256(r["sample_id"].encode()).hexdigest(), r["sample_id"])
                               for r in iter_rows(files, ["sample_id"])))
    want = {sid for _, sid in best}
    order = {sid: i for i, (_, sid) in enumerate(best)}
    rows = [r for r in iter_rows(files) if r["sample_id"] in want]
    return sorted(rows, key=lambda r: order[r["sample_id"]])


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # older Pillow
        return ImageFont.load_default()


def row_text(row: dict) -> str:
    """The text of a text-set row (VQA question and answer, MLM masked text and target, caption); ""."""
    if row.get("question"):
        return f"{row['question']}  A: {row.get('answer', '')}"
    if row.get("masked_text"):
        return f"{row['masked_text']}  -> {row.get('target_text', '')}"
    return row.get("target_text") or ""


def _wrap(d: ImageDraw.ImageDraw, text: str, font, width: int, lines: int) -> list[str]:
    out: list[str] = []
    cur = ""
    for word in text.split():
        trial = f"{cur} {word}".strip()
        if d.textlength(trial, font=font) <= width:
            cur = trial
            continue
        out.append(cur)
        cur = word
        if len(out) == lines:
            break
    if len(out) < lines and cur:
        out.append(cur)
    if len(out) == lines and " ".join(out) != " ".join(text.split()):
        out[-1] = out[-1][: max(0, len(out[-1]) - 1)] + "…"
    return out


def draw_sample(row: dict, cell: int = CELL, colours: Optional[dict[str, tuple[int, int, int]]] = None,
                caption_h: Optional[int] = None) -> tuple[Image.Image, CellInfo]:
    """One sample drawn into a ``cell x (cell + caption_h)`` tile (``colours``: label -> colour,
    default :func:`grid_colours` of this row; ``caption_h`` default ``TEXT_CAPTION`` for text-set
    rows, else ``CAPTION``)."""
    text = row_text(row)
    caption_h = caption_h or (TEXT_CAPTION if text else CAPTION)
    colours = colours or grid_colours([row])

    def class_colour(label: str) -> tuple[int, int, int]:
        return colours[label]

    try:
        im = decode(row["image"]["bytes"]).convert("RGB")
    except Exception as e:  # PIL raises many types on damaged bytes
        raise CorpusError(f"{row['sample_id']}: stored image cannot be decoded ({e}); run `unihema-data validate`") from None
    w, h = im.size
    scale = min(cell / w, cell / h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    base = np.asarray(im.resize((sw, sh), Image.BILINEAR), dtype=np.float32)
    objs = row["objects"]
    legend: dict[str, tuple[int, int, int]] = {}
    overlays: list[tuple[np.ndarray, tuple[int, int, int]]] = []
    if row.get("semantic_mask") and row["semantic_mask"].get("bytes"):
        sem = decode_semantic(row["semantic_mask"]["bytes"])
        classes = row.get("mask_classes") or []
        for i, name in enumerate(classes):
            if i == 0 or name in ("background", ""):
                continue
            colour = MASK_PALETTE[i % len(MASK_PALETTE)] if i % len(MASK_PALETTE) else TEXT
            overlays.append((sem == i, colour))
            legend[f"mask: {name}"] = colour
    for rle, cat in zip(objs["mask_rle"], objs["category"]):
        if rle:
            overlays.append((decode_rle(rle, h, w), class_colour(class_name(cat))))
    for mask, colour in overlays:
        m = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((sw, sh), Image.NEAREST)) > 0
        base[m] = base[m] * (1 - MASK_ALPHA) + np.array(colour, dtype=np.float32) * MASK_ALPHA
    tile = Image.new("RGB", (cell, cell + caption_h), BACKGROUND)
    ox, oy = (cell - sw) // 2, (cell - sh) // 2
    tile.paste(Image.fromarray(base.clip(0, 255).astype(np.uint8)), (ox, oy))
    d = ImageDraw.Draw(tile)
    info = CellInfo(row["sample_id"], (0, 0), scale, (ox, oy), legend=legend)
    for box, cat, pt in zip(objs["bbox"], objs["category"], objs["point"]):
        name = class_name(cat)
        colour = class_colour(name)
        if pt:
            px, py = ox + pt[0] * scale, oy + pt[1] * scale
            d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        if box and box[2] > 0 and box[3] > 0:
            x0, y0 = ox + box[0] * scale, oy + box[1] * scale
            x1, y1 = x0 + box[2] * scale, y0 + box[3] * scale
            d.rectangle([round(x0), round(y0), max(round(x0), round(x1) - 1), max(round(y0), round(y1) - 1)],
                        outline=colour, width=BOX_WIDTH)
            info.boxes.append((list(box), name, colour))
        legend.setdefault(name, colour)
    label = class_name(row.get("label"))
    if label:
        caption = label
    else:
        cats = sorted({class_name(c) for c in objs["category"]})
        n_obj = len(objs['category'])
        caption = f"{n_obj} object{'s' if n_obj != 1 else ''}: " + ", ".join(cats) if cats else ""
    d.rectangle([0, cell, cell, cell + caption_h], fill=BACKGROUND)
    d.text((4, cell + 6), caption[:48], fill=class_colour(label) if label else TEXT, font=_font(13))
    if text and caption_h > CAPTION:
        small = _font(11)
        for i, line in enumerate(_wrap(d, text, small, cell - 8, (caption_h - CAPTION) // 15)):
            d.text((4, cell + CAPTION - 2 + 15 * i), line, fill=TEXT, font=small)
    return tile, info


def render_source(out: Path, source: str, n: int = 8, columns: int = COLUMNS) -> tuple[Image.Image, list[CellInfo]]:
    """The grid of one source: a title strip and ``ceil(n / columns)`` rows of tiles."""
    rows = pick_rows(out, source, n)
    if not rows:
        raise ValueError(f"{out}: source {source} has no rows")
    total = count_rows(s.path for s in shards(out, [source]))
    ncols = min(columns, len(rows))
    nrows = -(-len(rows) // ncols)
    cap = TEXT_CAPTION if any(row_text(r) for r in rows) else CAPTION
    grid = Image.new("RGB", (ncols * CELL, TITLE + nrows * (CELL + cap)), BACKGROUND)
    d = ImageDraw.Draw(grid)
    title = f"{source}  ({len(rows)} of {total:,} rows)"
    font = _font(15)
    d.text((6, 7), title, fill=TEXT, font=font)
    infos = []
    legend: dict[str, tuple[int, int, int]] = {}
    colours = grid_colours(rows)
    for i, row in enumerate(rows):
        tile, info = draw_sample(row, colours=colours, caption_h=cap)
        x, y = (i % ncols) * CELL, TITLE + (i // ncols) * (CELL + cap)
        grid.paste(tile, (x, y))
        info.origin = (x, y)
        infos.append(info)
        legend.update(info.legend)
    # legend after the title: a swatch and the name of every class drawn (as long as it fits)
    small = _font(12)
    x = 6 + int(d.textlength(title, font=font)) + 18
    for name, colour in sorted(legend.items()):
        w = 14 + int(d.textlength(name, font=small)) + 12
        if x + w > grid.width:
            break
        d.rectangle([x, 10, x + 9, 19], fill=colour)
        d.text((x + 13, 8), name, fill=TEXT, font=small)
        x += w
    return grid, infos


def render_grid(out: Path, sources: Optional[Sequence[str]] = None, n: int = 8) -> tuple[Image.Image, list[CellInfo]]:
    """One image: the grid of every source (or of ``sources``), stacked top to bottom."""
    parts = [render_source(out, s, n) for s in sources_of(out, sources)]
    width = max(p.width for p, _ in parts)
    grid = Image.new("RGB", (width, sum(p.height for p, _ in parts)), BACKGROUND)
    infos: list[CellInfo] = []
    y = 0
    for img, cells in parts:
        grid.paste(img, (0, y))
        for c in cells:
            c.origin = (c.origin[0], c.origin[1] + y)
        infos += cells
        y += img.height
    return grid, infos


def save_png(img: Image.Image, path: Path) -> None:
    """Atomic PNG write (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        img.save(tmp, format="PNG", compress_level=6)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fingerprint(manifest: dict, source: str) -> str:
    m = manifest["sources"].get(source, {})
    return f"{PREVIEW_VERSION}:{m.get('fingerprint', '')}:{json.dumps(m.get('counts', {}), sort_keys=True)}"


def fresh_previews(out: Path) -> set[str]:
    """Sources whose ``OUT/previews/<source>.png`` matches the current data (fingerprint in the index)."""
    out = Path(out)
    index_path = out / "previews" / "index.json"
    if not index_path.exists():
        return set()
    try:
        index = json.loads(index_path.read_text())
    except ValueError:
        return set()
    manifest = read_manifest(out)
    return {s for s, fp in index.items()
            if s in manifest["sources"] and fp == _fingerprint(manifest, s) and (out / "previews" / f"{s}.png").exists()}


def refresh_previews(out: Path, folder: Optional[Path] = None, sources: Optional[Sequence[str]] = None) -> list[Path]:
    """(Re)write ``<folder>/<source>.png`` (default ``OUT/previews``) for every source whose
    fingerprint changed; previews of sources no longer in ``OUT`` are removed. Returns the paths."""
    out = Path(out)
    folder = Path(folder) if folder else out / "previews"
    manifest = read_manifest(out)
    srcs = sources_of(out, sources)
    index_path = folder / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    paths = []
    for s in srcs:
        p = folder / f"{s}.png"
        fp = _fingerprint(manifest, s)
        if index.get(s) != fp or not p.exists():
            img, _ = render_source(out, s)
            save_png(img, p)
            index[s] = fp
        paths.append(p)
    if sources is None:
        for s in list(index):
            if s not in srcs:
                (folder / f"{s}.png").unlink(missing_ok=True)
                del index[s]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_name(f".index.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, index_path)
    return paths
