"""Seeded mutator over the native fakes of every registered adapter, and the oracle that judges
each conversion of a mutated tree (used by ``tests/test_fuzz.py``).

A *case* is ``(adapter, mutation kind, target file, parameters)``, drawn from ``random.Random(seed)``
so that case ``i`` is the same on every machine and every run. The fake of each adapter is made
once (``fake(seed=1)``) and converted once into a healthy ``OUT``; each case copies both, mutates
one native file, reconverts with ``overwrite=True`` and judges the outcome.

Mutation kinds
--------------
on any file            ``truncate`` (images: at a random byte; text: at a random line boundary),
                       ``empty``, ``fifo`` (the file replaced by a named pipe), ``dangling_link``
                       (replaced by a symlink to nothing), ``case_collide`` (a sibling whose name
                       differs only in case, holding *different* content of the same kind),
                       ``non_utf8_name`` (renamed to a name holding the byte 0xE9)
on images              ``bitflip`` (one random bit anywhere in the file); other binary files (npz
                       arrays, spreadsheets) are mutated bytewise like images and judged like them
on text files          ``bitflip`` (the high bit set on one ASCII byte: the file is no longer
                       UTF-8), ``utf16`` (re-encoded as UTF-16 with its BOM), ``bom`` (a UTF-8 BOM
                       prepended), ``crlf`` (LF <-> CRLF line endings), ``delete_line``,
                       ``extra_column`` (one line gets an extra delimiter-separated value),
                       ``number`` (one numeric token replaced by ``nan``, ``inf``, ``-1``, ``-1e9``,
                       ``1e30`` or a 20-digit integer), ``nul`` (a NUL byte inserted)

The oracle
----------
Every case must end in one of these outcomes, anything else is a failure:

``error``        :class:`~unihema_data.convert.ConversionError` whose message names the mutated
                 file (its name; for ``non_utf8_name`` its stem; for ``case_collide`` either
                 name), with ``OUT`` byte-identical to before. Any other exception is a
                 ``traceback``; a case running longer than the per-case limit is a ``hang``.
``same``         success and every row equals the fake's ground truth (the harness's round-trip
                 comparison: labels, splits, boxes within 0.5 px, categories, masks pixel-identical,
                 attributes, no missing or extra sample). This is the independent reading for the
                 *semantics-preserving* kinds (``bom``, ``crlf``, ``utf16``) and for files the
                 adapter does not read (e.g. BCCD's ``trainval.txt``, Zheng's README previews).
``other_image``  (image mutations only) success where the only difference from the ground truth
                 is the mutated image itself, and the stored image *is* the mutated file: its
                 ``image_sha256`` is the sha256 of the mutated bytes, the stored bytes equal them
                 (or, when re-encoded, decode to the same pixels as an independent decoder,
                 OpenCV, reads from the mutated file). A bit flip in a JPEG coefficient or a BMP
                 pixel yields another valid image; storing it faithfully is correct.
``less``         (``delete_line``, text ``truncate``, text ``empty``) success where the only
                 differences concern the samples the removed text was about: a sample whose
                 stem is the mutated file's stem (a per-image annotation file) or whose stem
                 occurs in the removed text; for those, the only allowed differences are fewer
                 objects (every remaining object matches a ground-truth object of the same
                 category within 0.5 px), a lost published split (``source_split`` becomes "" and
                 the split is the grouped fallback) or the sample missing altogether. Removing
                 text can only remove information about what it names; it can never change a
                 label, a box or a mask, or touch another sample.
                 A mutated *mask* file (an image that is no sample's image) may change exactly
                 one sample's semantic mask, and only at pixels where an independent OpenCV
                 decode of the mutated file differs from one of the original
                 (:func:`mask_change_is_local`): a JPEG coefficient bit decodes to other, valid
                 mask pixels, which are converted faithfully.
``flagged``      (``number`` only) success where the only differences are objects of the owning
                 sample whose row carries a ``clipped_box`` flag recording the native box, the
                 replaced value included: an out-of-range coordinate is clipped *and said*; or
                 whose ``inverted_box_dropped`` flag records it, with exactly that one box gone
                 (:func:`dropped_one`: a documented skip policy, e.g. M5's inverted boxes); or
                 (objects and object masks) whose ``clipped_polygon`` flag records it as a vertex
                 extreme: a polygon reaching outside the image is rasterized clipped, and said.

Owners (``less`` and ``flagged``): the samples a piece of text is about are those whose stem is
the mutated file's stem, whose stem occurs in the removed text (or is named there through
:data:`NAMED_BY`, an independent reading of a column such as BCCD-Kaggle's integer ``Image``
ids), and the one sample image of the text file's own folder (erythrocytesIDB's
``<n>/ground.csv`` next to ``<n>/source.jpg``); for ``number``, also the sample named last before
the replaced value (a CVAT ``<image name=...>`` above its polygons).

``bitflip``, ``extra_column`` and ``nul`` on text, ``fifo``, ``dangling_link`` and
``non_utf8_name`` accept only ``error`` or ``same`` (``same`` happens when the adapter reads
neither the original nor the mutated name, e.g. BCCD's ``trainval.txt``).
``case_collide`` (a sibling ``x.JPG`` written next to ``X.jpg``) is judged by what the conversion
opened (the test records every ``open`` with an audit hook): if it opened either file, only
``error`` is correct, since which of the two is meant cannot be told (they cannot coexist on a
case-insensitive file system) and the disk layer refuses any read of a file with a case twin;
if it opened neither (junk such as PBC's ``.DS_*``, README previews, unannotated copies that are
only counted), the collision is harmless and only ``same`` is correct.
A bit flip in text is restricted to making the file invalid UTF-8 because a flip that turns a
digit into another digit is a different, valid annotation that no reader can tell from the
original; truncation of text is at line boundaries for the same reason (``0.2345`` cut to
``0.23`` is a valid number).

Pending work of other branches is listed in ``PENDING`` (kind, file role[, source]) -> reason;
the test marks a failing case of such a key ``xfail`` and nothing else. It is empty.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Optional

import numpy as np

from unihema_data.schema import label_name

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"}

ANY_KINDS = ("truncate", "empty", "fifo", "dangling_link", "case_collide", "non_utf8_name")
IMAGE_KINDS = ("bitflip",)
TEXT_KINDS = ("bitflip", "utf16", "bom", "crlf", "delete_line", "extra_column", "number", "nul")
KINDS = tuple(dict.fromkeys(ANY_KINDS + IMAGE_KINDS + TEXT_KINDS))

#: (mutation kind, file role[, source]) -> reason: cases that fail *only* because of work pending
#: on other branches. Empty: every former entry was fixed in the adapters / disk layer or made
#: precise in the oracle (issue 18); add one only with a reason that is not a silent wrong output.
PENDING: dict[tuple, str] = {}


def pending_reason(kind: str, role: str, sid: str = "") -> Optional[str]:
    return PENDING.get((kind, role, sid)) or PENDING.get((kind, role)) or PENDING.get((kind, "*"))


@dataclass
class Case:
    index: int
    sid: str
    kind: str
    target: str           # path of the mutated file relative to raw/<sid>/ (POSIX)
    role: str             # "image" | "split_list" | "text"
    names: list[str]      # any of these in the error message names the file
    removed_text: str = ""  # delete_line / truncate / empty on text: what was removed
    number: Optional[str] = None  # number: the replacement literal
    text_before: str = ""  # number: the file's text before the replaced value
    mutated_bytes: Optional[bytes] = None  # image mutations: the bytes now on disk
    sample_rel: Optional[str] = None  # the truth sample whose image is the target, if any
    root_rel: Optional[str] = None  # the target relative to the truth's root (None: outside it)
    original_bytes: bytes = b""  # the target's bytes before the mutation
    twin: Optional[Path] = None   # case_collide: the sibling written next to the target
    path: Optional[Path] = None   # the target's absolute path
    note: str = ""

    def describe(self) -> str:
        return f"case {self.index}: {self.sid} {self.kind} {self.target} {self.note}".strip()


def file_role(rel: str, data: bytes) -> str:
    p = PurePosixPath(rel)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    if "ImageSets" in p.parts or p.name.lower() in ("train.txt", "val.txt", "test.txt", "trainval.txt"):
        return "split_list"
    return "text" if _text_encoding(data) else "binary"  # binary: npz arrays, spreadsheets (mutated bytewise)


def _text_encoding(data: bytes) -> Optional[str]:
    """``"utf-8"``, ``"latin-1"`` for a legacy 8-bit text file (Chula's label files hold a Latin-1
    no-break space: printable bytes and whitespace only, no C1 controls), or None (binary). Only
    ``truncate`` and ``empty`` are applied to a Latin-1 file (at line boundaries, as to any text);
    the text kinds need UTF-8 (:func:`_is_text`)."""
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if all(b >= 0x20 or b in (9, 10, 13) for b in data) and not any(0x7F <= b < 0xA0 for b in data):
        return "latin-1"
    return None


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


def applicable(kind: str, role: str, data: bytes) -> bool:
    if kind in ANY_KINDS:
        return kind != "truncate" or len(data) > 1
    if role in ("image", "binary"):
        return kind in IMAGE_KINDS and len(data) > 0
    if not _is_text(data):
        return False
    text = data.decode("utf-8")
    if kind == "number":
        return bool(_NUMBER.search(text))
    if kind in ("delete_line", "extra_column", "crlf"):
        return bool(text.strip()) if kind == "extra_column" else "\n" in text
    if kind == "bitflip":
        return any(b < 0x80 for b in data)
    return True


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_NUMBERS = ("nan", "inf", "-1", "-1e9", "1e30", "12345678901234567890")


def draw_case(index: int, seed: int, files_by_sid: dict[str, dict[str, bytes]]) -> Case:
    """The ``index``-th case: adapter round-robin, then a kind, then a file it applies to."""
    rng = random.Random(f"{seed}:{index}")
    sids = sorted(files_by_sid)
    sid = sids[index % len(sids)]
    files = files_by_sid[sid]
    kinds = list(KINDS)
    rng.shuffle(kinds)
    for kind in kinds:
        cands = sorted(r for r, d in files.items() if applicable(kind, file_role(r, d), d))
        if cands:
            rel = rng.choice(cands)
            return Case(index, sid, kind, rel, file_role(rel, files[rel]), [PurePosixPath(rel).name],
                        note=f"rng={rng.random():.6f}")
    raise AssertionError(f"no applicable mutation for {sid}")


def apply(case: Case, raw_sid: Path, files: dict[str, bytes], seed: int) -> None:
    """Mutate ``raw_sid/case.target`` in place (``raw_sid`` is a fresh copy of the fake)."""
    rng = random.Random(f"{seed}:{case.index}:apply")
    path = raw_sid / case.target
    data = files[case.target]
    case.original_bytes, case.path = data, path
    k = case.kind
    if k == "truncate":
        if case.role in ("image", "binary"):
            cut = rng.randrange(0, len(data))
            new = data[:cut]
            case.mutated_bytes = new
        else:
            enc = _text_encoding(data) or "utf-8"
            text = data.decode(enc)
            bounds = [0] + [m.end() for m in re.finditer("\n", text) if m.end() < len(text)]
            cut = rng.choice(bounds)
            new = text[:cut].encode(enc)
            case.removed_text = text[cut:]
        case.note = f"cut at {cut} of {len(data)}"
        path.write_bytes(new)
    elif k == "empty":
        path.write_bytes(b"")
        if case.role in ("image", "binary"):
            case.mutated_bytes = b""
        else:
            case.removed_text = data.decode(_text_encoding(data) or "utf-8", "replace")
    elif k == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif k == "dangling_link":
        path.unlink()
        os.symlink(path.with_name(path.name + ".does-not-exist"), path)
    elif k == "case_collide":
        other_name = _case_variant(path.name, rng)
        twin = path.with_name(other_name)
        same_kind = sorted(r for r in files if PurePosixPath(r).suffix.lower() == path.suffix.lower() and r != case.target)
        if case.role == "image":
            twin.write_bytes(_other_image(data, path.suffix.lower(), rng))
        elif same_kind:
            twin.write_bytes(files[rng.choice(same_kind)])
        else:
            twin.write_bytes(data + b"\n")
        case.names.append(other_name)
        case.twin = twin
        case.note = f"sibling {other_name}"
    elif k == "non_utf8_name":
        stem, suffix = path.stem, path.suffix
        new = os.fsencode(path.parent) + b"/" + os.fsencode(stem) + b"\xe9" + os.fsencode(suffix)
        os.rename(path, new)
        case.names = [stem]
    elif k == "bitflip":
        m = bytearray(data)
        if case.role in ("image", "binary"):
            pos = rng.randrange(len(m))
            m[pos] ^= 1 << rng.randrange(8)
            case.mutated_bytes = bytes(m)
        else:
            ascii_pos = [i for i, b in enumerate(m) if b < 0x80]
            pos = rng.choice(ascii_pos)
            m[pos] |= 0x80
        case.note = f"byte {pos}"
        path.write_bytes(bytes(m))
    elif k == "utf16":
        path.write_bytes(data.decode("utf-8").encode("utf-16"))
    elif k == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + data)
    elif k == "crlf":
        text = data.decode("utf-8")
        new = text.replace("\r\n", "\n") if "\r\n" in text else text.replace("\n", "\r\n")
        path.write_bytes(new.encode("utf-8"))
    elif k == "delete_line":
        lines = data.decode("utf-8").splitlines(keepends=True)
        i = rng.randrange(len(lines))
        case.removed_text = lines[i]
        case.note = f"line {i + 1}: {lines[i].strip()[:40]!r}"
        path.write_bytes("".join(lines[:i] + lines[i + 1:]).encode("utf-8"))
    elif k == "extra_column":
        lines = data.decode("utf-8").splitlines(keepends=True)
        idx = [i for i, ln in enumerate(lines) if ln.strip()]
        i = rng.choice(idx)
        body = lines[i].rstrip("\r\n")
        end = lines[i][len(body):]
        sep = "," if path.suffix.lower() == ".csv" else " "
        lines[i] = body + sep + rng.choice(("0.5", "extra", "1", "")) + end
        case.note = f"line {i + 1}"
        path.write_bytes("".join(lines).encode("utf-8"))
    elif k == "number":
        text = data.decode("utf-8")
        spans = list(_NUMBER.finditer(text))
        mt = rng.choice(spans)
        lit = rng.choice(_NUMBERS)
        case.number = lit
        line_start = text.rfind("\n", 0, mt.start()) + 1
        line_end = text.find("\n", mt.end())
        case.removed_text = text[line_start: line_end if line_end >= 0 else len(text)]
        case.text_before = text[:mt.start()]
        case.note = f"{mt.group()!r} -> {lit!r} at {mt.start()}"
        path.write_bytes((text[:mt.start()] + lit + text[mt.end():]).encode("utf-8"))
    elif k == "nul":
        pos = rng.randrange(len(data) + 1)
        path.write_bytes(data[:pos] + b"\x00" + data[pos:])
        case.note = f"at {pos}"
    else:  # pragma: no cover
        raise AssertionError(k)


def _case_variant(name: str, rng: random.Random) -> str:
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        return name.swapcase() if name.swapcase() != name else name + "X"
    if suffix.swapcase() != suffix and rng.random() < 0.5:
        return f"{stem}.{suffix.swapcase()}"
    if stem.swapcase() != stem:
        return f"{stem.swapcase()}.{suffix}"
    return f"{stem}.{suffix.swapcase()}"


def _other_image(data: bytes, suffix: str, rng: random.Random) -> bytes:
    """A different valid image of the same format and size as ``data``."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            arr = np.asarray(im).copy()
            fmt = im.format or "PNG"
    except Exception:  # noqa: BLE001 - not an image (e.g. a stray file named .jpg): other bytes
        return data[::-1] + b"\x00"
    arr = (255 - arr) if arr.dtype == np.uint8 else arr[::-1].copy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Bytes of every regular file under ``folder`` except transient staging folders."""
    out = {}
    if not folder.exists():
        return out
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if rel.startswith(".unihema/staging"):
            continue
        st = p.lstat()
        if stat.S_ISREG(st.st_mode):
            out[rel] = p.read_bytes()
    return out


# ---------------------------------------------------------------------------- comparison
@dataclass
class Diff:
    """Differences between converted rows and the ground truth, per sample rel_path."""

    missing: set[str] = field(default_factory=set)
    extra: set[str] = field(default_factory=set)
    fields: dict[str, set[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.missing or self.extra or self.fields)

    def touched(self) -> set[str]:
        return self.missing | self.extra | set(self.fields)

    def __str__(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing {sorted(self.missing)}")
        if self.extra:
            parts.append(f"extra {sorted(self.extra)}")
        for rel, fs in sorted(self.fields.items()):
            parts.append(f"{rel}: {sorted(fs)}")
        return "; ".join(parts) or "no difference"


def compare(sid: str, adapter, truth, rows: list[dict], tax) -> tuple[Diff, dict[str, dict]]:
    from unihema_data.boxes import from_coco
    from unihema_data.masks import decode_rle, decode_semantic
    from unihema_data.integrity import base_split
    from unihema_data.splits import normalize_split

    diff = Diff()
    by_rel = {}
    prefix = f"{sid}/"
    for r in rows:
        rel = r["sample_id"][len(prefix):] if r["sample_id"].startswith(prefix) else r["sample_id"]
        by_rel[rel] = r
    diff.extra = set(by_rel) - set(truth.samples)
    for rel, t in truth.samples.items():
        r = by_rel.get(rel)
        if r is None:
            diff.missing.add(rel)
            continue
        bad: set[str] = set()
        W, H = r["width"], r["height"]
        if r["source_split"] != t.source_split:
            bad.add("source_split")
        # the split policy may move a duplicate to its group's split, saying so (split_moved)
        if t.source_split and normalize_split(t.source_split) and \
                base_split(r["split"], r["qc_flags"]) != normalize_split(t.source_split):
            bad.add("split")
        if t.group_id and r["group_id"] != t.group_id:
            bad.add("group_id")
        if t.label is not None:  # as the harness: the mapped label, or a flagged refinement of it
            want, got = tax.map_label(sid, str(t.label), table=t.label_table), label_name(r["label"])
            if r["source_label"] != str(t.label) or not (
                    got == want or (f"label_refined:{want}" in r["qc_flags"] and tax.is_refinement(want, got))):
                bad.add("label")
        if not _objects_equal(r, t, adapter, W, H, from_coco):
            bad.add("objects")
        for k, m in enumerate(t.object_masks):
            rles = r["objects"]["mask_rle"]
            if k >= len(rles) or not rles[k] or not np.array_equal(decode_rle(rles[k], H, W), np.asarray(m) > 0):
                bad.add("object_masks")
        if t.semantic_mask is not None:
            sm = r["semantic_mask"]
            try:
                idx = decode_semantic(sm["bytes"])
                back = {r["mask_classes"].index(tax.map_mask_class(sid, name)): v
                        for v, name in adapter.mask_values.items()
                        if tax.map_mask_class(sid, name) in r["mask_classes"]}
                native = np.vectorize(lambda i: back.get(i, -1))(idx)
                if not np.array_equal(native, t.semantic_mask):
                    bad.add("mask")
            except Exception:  # noqa: BLE001 - any mismatch is a difference
                bad.add("mask")
        if t.attributes:
            got = {a["name"]: a["value"] for a in r["attributes"]}
            if got != dict(tax.map_attribute(sid, k, v) for k, v in t.attributes.items()):
                bad.add("attributes")
        for k, oa in enumerate(t.object_attributes):
            oattrs = r["objects"]["attributes"]
            got = {a["name"]: a["value"] for a in oattrs[k]} if k < len(oattrs) else None
            if got != dict(tax.map_attribute(sid, a, v) for a, v in oa.items()):
                bad.add("object_attributes")
        if bad:
            diff.fields[rel] = bad
    return diff, by_rel


def _objects_equal(r: dict, t, adapter, W: int, H: int, from_coco) -> bool:
    got_cats = r["objects"]["source_category"]
    if got_cats != [str(c) for c in t.categories]:
        return False
    for got, want in zip(r["objects"]["bbox"], t.boxes):
        if not np.allclose(got, want, atol=0.5):
            return False
    return True


def objects_subset(r: dict, t, sid: str, tax) -> bool:
    """Every converted object matches a distinct ground-truth object (same category, box within
    0.5 px, same attributes and mask), and at least one ground-truth object is gone."""
    from unihema_data.masks import decode_rle

    used: set[int] = set()
    objs = r["objects"]
    W, H = r["width"], r["height"]
    for k, (box, cat) in enumerate(zip(objs["bbox"], objs["source_category"])):
        got_attrs = {a["name"]: a["value"] for a in objs["attributes"][k]}
        hit = None
        for j, (b, c) in enumerate(zip(t.boxes, t.categories)):
            if j in used or str(c) != cat or not np.allclose(box, b, atol=0.5):
                continue
            if j < len(t.object_attributes) and got_attrs != dict(
                    tax.map_attribute(sid, a, v) for a, v in t.object_attributes[j].items()):
                continue
            if j < len(t.object_masks) and not np.array_equal(
                    decode_rle(objs["mask_rle"][k], H, W), np.asarray(t.object_masks[j]) > 0):
                continue
            hit = j
            break
        if hit is None:
            return False
        used.add(hit)
    return len(used) < len(t.boxes)


def _bccd_kaggle_names(removed: str, original: str) -> set[str]:
    """``labels.csv`` rows name ``BloodImage_%05d.jpg`` by the integer in their ``Image`` column."""
    lines = original.replace("\r\n", "\n").split("\n")
    header = [c.strip() for c in lines[0].split(",")] if lines else []
    if "Image" not in header:
        return set()
    k = header.index("Image")
    out = set()
    for ln in removed.replace("\r\n", "\n").split("\n"):
        cells = ln.split(",")
        if len(cells) > k and cells[k].strip().isascii() and cells[k].strip().isdigit():
            out.add(f"BloodImage_{int(cells[k]):05d}")
    return out


#: sid -> (removed text, original text) -> stems the removed text names, for sources whose
#: annotation lines name a sample by something other than its file stem (an independent reading
#: of that column; the adapter's parser is not used)
NAMED_BY = {"bccd_kaggle": _bccd_kaggle_names}


def owners(case: Case, truth, sid: str = "") -> set[str]:
    """Samples the mutated text is about: same stem as the file (or the same once ``_`` is removed:
    NLM PV annotation names drop the image name's ``_``), stem named in the removed text
    (directly, or through :data:`NAMED_BY`), or the one sample image of the text file's own folder
    (a per-image annotation such as erythrocytesIDB's ``<n>/ground.csv`` next to ``<n>/source.jpg``); for ``number``, also the sample named last before
    the replaced value (a CVAT ``<image name=...>`` above its polygons); and the single-cell rows
    cropped from any of those (``group_id`` = that sample's path)."""
    stem = PurePosixPath(case.target).stem
    text = case.removed_text
    named = NAMED_BY[sid](text, case.original_bytes.decode("utf-8", "replace")) if sid in NAMED_BY and text else set()
    out = set()
    for rel in truth.samples:
        s = PurePosixPath(rel).stem
        if s == stem or s.replace("_", "") == stem.replace("_", "") or s in named or (
                text and re.search(rf"(?<![\w.-]){re.escape(s)}(?![\w-])", text)):
            out.add(rel)
    if case.text_before:  # a replaced number belongs to the sample named last before it (a CVAT
        # <image name=...> above its polygons, a VOC <filename> above its boxes)
        last, at = None, -1
        for rel in truth.samples:
            s = PurePosixPath(rel).stem
            for m in re.finditer(rf"(?<![\w.-]){re.escape(s)}(?![\w-])", case.text_before):
                if m.start() > at:
                    last, at = rel, m.start()
        if last is not None:
            out.add(last)
    if case.root_rel is not None and case.role == "text":
        folder = PurePosixPath(case.root_rel).parent
        same = [rel for rel in truth.samples if PurePosixPath(rel).parent == folder]
        if len(same) == 1:
            out.add(same[0])
    for rel, t in truth.samples.items():  # crops follow the field they were cut from
        if t.group_id in out and t.group_id != rel:
            out.add(rel)
    return out


def flagged_value(row: dict, literal: str) -> bool:
    """The row's ``clipped_box`` flags record a native value equal to ``literal``."""
    try:
        want = float(literal)
    except ValueError:
        return False
    for f in row["qc_flags"]:
        if f.startswith(("clipped_box:", "clipped_polygon:")):
            for v in f.split(":", 2)[2].split(","):
                try:
                    if float(v) == want:
                        return True
                except ValueError:
                    continue
    return False


def dropped_one(row: dict, t, literal: str) -> bool:
    """A documented drop policy applied to exactly the mutated box: the row's
    ``inverted_box_dropped:<i>:<xmin,ymin,xmax,ymax>`` flag records the replaced value, the other
    three coordinates are the ground-truth box's (VOC corners of its COCO box), and the converted
    objects are the ground truth's minus that one box (same order, categories, boxes within 0.5 px)."""
    try:
        want = float(literal)
    except ValueError:
        return False
    objs = row["objects"]
    got = list(zip(objs["source_category"], objs["bbox"]))
    if len(got) != len(t.boxes) - 1:
        return False
    for f in row["qc_flags"]:
        if not f.startswith("inverted_box_dropped:"):
            continue
        try:
            native = [float(v) for v in f.split(":", 2)[2].split(",")]
        except ValueError:
            continue
        if len(native) != 4 or want not in native:
            continue
        for j, (b, c) in enumerate(zip(t.boxes, t.categories)):
            x, y, w, h = (float(v) for v in b)
            corners = [(x, x + 1), (y, y + 1), (x + w, x + w - 1), (y + h, y + h - 1)]  # either VOC convention
            same = sum(any(abs(n - c0) <= 0.5 for c0 in cands) for n, cands in zip(native, corners))
            rest = [(str(cc), bb) for k, (bb, cc) in enumerate(zip(t.boxes, t.categories)) if k != j]
            if same >= 3 and all(gc == rc and np.allclose(gb, rb, atol=0.5) for (gc, gb), (rc, rb) in zip(got, rest)):
                return True
    return False


def _changed_pixels(before: bytes, after: bytes) -> Optional[np.ndarray]:
    """(H, W) bool: where an independent decoder (OpenCV, colour and grayscale reads) sees the
    mutated file differ from the original; None when either does not decode or the size changed."""
    import cv2

    out = None
    for flag in (cv2.IMREAD_UNCHANGED, cv2.IMREAD_GRAYSCALE):
        a = cv2.imdecode(np.frombuffer(before, np.uint8), flag)
        b = cv2.imdecode(np.frombuffer(after, np.uint8), flag)
        if a is None or b is None or a.shape != b.shape:
            return None
        d = a != b
        d = d.any(axis=2) if d.ndim == 3 else d
        out = d if out is None else (out | d)
    return out


def mask_change_is_local(case: Case, diff: Diff, rows_by_rel: dict[str, dict], truth, adapter, sid: str,
                         tax) -> Optional[str]:
    """``None`` when a mutated *mask* file (not a sample image) was converted faithfully: exactly
    one sample's semantic mask differs from the ground truth, and only at pixels where the mutated
    file itself decodes differently from the original (an independent OpenCV decode of both).
    A mask rule that works pixel by pixel (values, a threshold) can change nothing else. Otherwise
    the reason it is not."""
    from unihema_data.masks import decode_semantic

    if case.sample_rel is not None or case.role != "image":
        return "the mutated file is a sample image"
    if diff.missing or diff.extra or len(diff.fields) != 1:
        return "more than one sample changed"
    rel, fs = next(iter(diff.fields.items()))
    if fs != {"mask"}:
        return f"{sorted(fs)} changed, not only the mask"
    changed = _changed_pixels(case.original_bytes, case.mutated_bytes or b"")
    if changed is None:
        return "an independent decoder cannot read the mutated mask"
    r, t = rows_by_rel[rel], truth.samples[rel]
    idx = decode_semantic(r["semantic_mask"]["bytes"])
    back = {r["mask_classes"].index(tax.map_mask_class(sid, name)): v for v, name in adapter.mask_values.items()
            if tax.map_mask_class(sid, name) in r["mask_classes"]}
    native = np.vectorize(lambda i: back.get(i, -1))(idx)
    if native.shape != changed.shape or native.shape != np.asarray(t.semantic_mask).shape:
        return "the mask size changed"
    outside = (native != np.asarray(t.semantic_mask)) & ~changed
    if outside.any():
        return f"{int(outside.sum())} mask pixels changed where the mask file did not"
    return None


def independent_pixels(data: bytes) -> Optional[np.ndarray]:
    """Decode with OpenCV (not Pillow): RGB(A) or grayscale array, or None when it cannot."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        return None
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return arr


def judge_success(case: Case, diff: Diff, rows_by_rel: dict[str, dict], truth, adapter, sid: str, tax,
                  opened: Optional[set[str]] = None) -> tuple[str, str]:
    """Outcome name and, for a failure, why (see the module docstring). ``opened``: absolute
    paths of every file opened during the conversion (an audit hook of the test)."""
    import hashlib

    if case.kind == "case_collide":
        read = sorted(os.path.basename(p) for p in (case.path, case.twin)
                      if p is not None and opened is not None and os.path.abspath(p) in opened)
        if read:
            return "wrong", (f"read {', '.join(read)} although its name differs only in case from a sibling's "
                             f"({', '.join(case.names)}), without a word")
        if opened is None and case.role == "image":
            return "wrong", f"two images whose names differ only in case ({', '.join(case.names)}) converted without a word"
    if case.kind in ("case_collide", "non_utf8_name") and not diff.empty:
        return "wrong", f"converted without a word, differs from the truth: {diff}"
    if case.role in ("image", "binary") and case.mutated_bytes is not None:
        if not diff.empty:
            why = mask_change_is_local(case, diff, rows_by_rel, truth, adapter, sid, tax)
            if why is None:
                return "other_image", ""
            return "wrong", f"image mutation changed annotations or samples: {diff} ({why})"
        r = rows_by_rel.get(case.sample_rel or "")
        if r is None:  # a mask or an image the adapter does not read: the truth must hold exactly
            return "same", ""
        if r["image_sha256"] != hashlib.sha256(case.mutated_bytes).hexdigest():
            return "wrong", f"{case.sample_rel}: image_sha256 is not the sha256 of the file on disk"
        stored = r["image"]["bytes"]
        if stored != case.mutated_bytes:
            ref = independent_pixels(case.mutated_bytes)
            from unihema_data.images import decode

            got = np.asarray(decode(stored))
            if ref is None or got.shape != ref.shape or not np.array_equal(got, ref):
                return "wrong", f"{case.sample_rel}: stored pixels differ from an independent decode of the mutated file"
        return "other_image", ""
    if diff.empty:
        return "same", ""
    touched = diff.touched()
    if case.kind in ("delete_line", "truncate", "empty") and case.role not in ("image", "binary"):
        own = owners(case, truth, sid)
        if diff.extra or not touched <= own:
            return "wrong", f"removed text changed samples it does not name ({sorted(touched - own)}): {diff}"
        for rel, fs in diff.fields.items():
            if fs - {"objects", "object_attributes", "object_masks", "source_split", "split"}:
                return "wrong", f"removed text changed {sorted(fs)} of {rel}: {diff}"
            r, t = rows_by_rel[rel], truth.samples[rel]
            if fs & {"objects", "object_attributes", "object_masks"} and not objects_subset(r, t, sid, tax):
                return "wrong", f"{rel}: objects are not a subset of the truth's"
            if ("source_split" in fs or "split" in fs) and r["source_split"] != "":
                return "wrong", f"{rel}: published split changed to {r['source_split']!r}"
        return "less", ""
    if case.kind == "number":
        own = owners(case, truth, sid)
        if diff.missing or diff.extra or not touched <= own:
            return "wrong", f"number mutation changed other samples: {diff}"
        for rel, fs in diff.fields.items():
            r, t = rows_by_rel[rel], truth.samples[rel]
            if fs == {"objects"} and (flagged_value(r, case.number or "") or dropped_one(r, t, case.number or "")):
                continue
            if fs <= {"objects", "object_masks"} and any(f.startswith("clipped_polygon:") for f in r["qc_flags"]) \
                    and flagged_value(r, case.number or ""):
                continue  # a polygon vertex moved outside the image: rasterized clipped, and said
            return "wrong", (f"{rel}: {sorted(fs)} changed without a clipped_box flag recording {case.number} "
                             "or an inverted_box_dropped flag for exactly the one changed box")
        return "flagged", ""
    return "wrong", f"differs from the truth: {diff}"
