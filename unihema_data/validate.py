"""``unihema-data validate OUT``: re-check every row of a converted folder.

Checks (each failure is reported with the shard, ``sample_id`` and what is wrong):
schema and schema version of every shard; image decodes and matches ``width``/``height``; split
valid and matching the shard name; ``sample_id`` unique; the same image bytes (``image_sha256``)
never in two splits; boxes finite and inside the image (0.5 px tolerance); parallel object lists
of equal length; RLE masks decode to the image size; semantic mask decodes to the image size with
values < ``len(mask_classes)``; labels, categories and mask classes in the taxonomy; attribute
names/values in the taxonomy; tasks known and consistent with the annotations.

Integrity of the stored bytes: every stored image is decoded strictly (the checks conversion
applies, :func:`~unihema_data.images.image_from_bytes`), and when the stored bytes are the native
file's bytes (no ``reencoded_from`` flag; an ``exif_orientation_reset:<n>`` JPEG gets its tag
back first) their sha256 must equal ``image_sha256``: an image swapped for another valid image,
or a byte flipped inside a stored image, is found. Semantic masks are checked the same way (PNG
chunk CRCs and pixel-data length).

Integrity of the folder: ``.unihema/manifest.json`` must be JSON of the expected shape; every
source it lists must have its ``data/<source>/`` folder, and every data folder a manifest entry;
shards are named ``<split>-IIIII-of-NNNNN.parquet`` with every index ``0..N-1`` present; the row
count of each split equals the manifest's ``counts``; an unreadable shard (truncated, empty,
damaged footer) is a finding, never a crash.

Rows are read shard by shard, row group by row group (memory flat in dataset size); decoding runs
on ``num_proc`` processes.
"""
from __future__ import annotations

import multiprocessing as mp
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pyarrow.parquet as pq

from .boxes import box_inside
from .images import ImageDecodeError, image_from_bytes, native_bytes, sha256_bytes
from .masks import decode_rle, decode_semantic
from .outdir import all_parquet_files, pending_commit, read_manifest
from .schema import ARROW_SCHEMA, BBOX_SOURCES, CLASS_NAMES, OBJECT_FIELDS, SCHEMA_VERSION, SPLITS, TASKS
from .taxonomy import NOT_ANNOTATED, load_taxonomy

MAX_PROBLEMS_PER_KIND = 20


@dataclass
class ValidationReport:
    rows: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)
    counts_by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, msg: str) -> None:
        self.counts_by_kind[kind] += 1
        if self.counts_by_kind[kind] <= MAX_PROBLEMS_PER_KIND:
            self.problems.append(f"[{kind}] {msg}")

    def summary(self) -> str:
        head = f"{self.rows} rows in {self.files} shards: " + ("OK" if self.ok else _plural(sum(self.counts_by_kind.values()), "problem"))
        lines = [head]
        for kind, n in sorted(self.counts_by_kind.items()):
            lines.append(f"  {kind}: {n}")
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def check_row(row: dict, shard_split: Optional[str] = None) -> list[tuple[str, str]]:
    """All problems of one row as ``(kind, message)`` pairs (empty when valid)."""
    tax = load_taxonomy()
    sid = row.get("sample_id", "?")
    out: list[tuple[str, str]] = []

    def bad(kind: str, msg: str) -> None:
        out.append((kind, f"{sid}: {msg}"))

    W, H = row["width"], row["height"]
    if row["split"] not in SPLITS:
        bad("split", f"invalid split {row['split']!r}")
    elif shard_split and row["split"] != shard_split:
        bad("split", f"row split {row['split']!r} stored in a {shard_split!r} shard")
    img = row.get("image") or {}
    data = img.get("bytes") or b""
    st = None
    try:
        st = image_from_bytes(data, "stored image")
        if (st.width, st.height) != (W, H):
            bad("image", f"image is {st.width}x{st.height}, row says {W}x{H}")
    except ImageDecodeError as e:
        bad("image", f"image does not decode cleanly ({e})")
    except Exception as e:  # noqa: BLE001 - any decode failure is a finding
        bad("image", f"image does not decode ({type(e).__name__}: {e})")
    if len(row.get("image_sha256") or "") != 64:
        bad("image", "image_sha256 missing or malformed")
    else:
        try:
            native = native_bytes(data, row.get("qc_flags"))
        except Exception as e:  # noqa: BLE001
            bad("image", f"stored JPEG's EXIF orientation cannot be restored ({type(e).__name__}: {e})")
            native = None
        digest = st.sha256 if (st is not None and native is data) else (sha256_bytes(native) if native is not None else None)
        if digest is not None and digest != row["image_sha256"]:
            bad("image", "stored image bytes do not match image_sha256 (the image was replaced or damaged "
                         "after conversion)")
    for t in row["tasks"]:
        if t not in TASKS:
            bad("tasks", f"unknown task {t!r}")
    lab = row["label"] if row["label"] is not None else -1
    if lab >= len(CLASS_NAMES) or lab < -1:
        bad("label", f"label id {lab!r} not in taxonomy (0..{len(CLASS_NAMES) - 1} or -1)")
    elif lab >= 0 and (row.get("label_group"), row.get("label_cl")) != (
            tax.labels[CLASS_NAMES[lab]].group, tax.labels[CLASS_NAMES[lab]].cl or ""):
        bad("label", f"label_group/label_cl {row.get('label_group')!r}/{row.get('label_cl')!r} disagree with "
                     f"the taxonomy for {CLASS_NAMES[lab]!r}")
    if "classification" in row["tasks"] and lab < 0:
        bad("tasks", "classification task without a label")
    _check_attrs(row["attributes"], tax, lambda m: bad("attributes", m))
    objs = row["objects"]
    n = len(objs["category"])
    for f in OBJECT_FIELDS:
        if len(objs[f]) != n:
            bad("objects", f"objects.{f} has {len(objs[f])} entries, objects.category has {n}")
            return out
    if "detection" in row["tasks"] and n == 0:
        pass  # an image with no annotated object is a valid negative
    for i in range(n):
        box = objs["bbox"][i]
        if not np.all(np.isfinite(box)) or not box_inside(box, W, H):
            bad("bbox", f"object {i} box {list(box)} outside the {W}x{H} image")
        if not 0 <= objs["category"][i] < len(CLASS_NAMES):
            bad("label", f"object {i} category {objs['category'][i]!r} not in taxonomy")
        if objs["bbox_source"][i] not in BBOX_SOURCES:
            bad("objects", f"object {i} bbox_source {objs['bbox_source'][i]!r}")
        if objs["mask_rle"][i]:
            try:
                decode_rle(objs["mask_rle"][i], H, W)
            except Exception as e:  # noqa: BLE001
                bad("mask", f"object {i} RLE does not decode at {W}x{H} ({e})")
        _check_attrs(objs["attributes"][i], tax, lambda m, i=i: bad("attributes", f"object {i}: {m}"))
    sm = row.get("semantic_mask")
    if sm and sm.get("bytes"):
        try:
            image_from_bytes(sm["bytes"], "semantic mask")  # CRCs and pixel-data length
            arr = decode_semantic(sm["bytes"])
            if arr.shape != (H, W):
                bad("mask", f"semantic mask is {arr.shape[1]}x{arr.shape[0]}, image is {W}x{H}")
            if arr.size and int(arr.max()) >= len(row["mask_classes"]):
                bad("mask", f"semantic mask value {int(arr.max())} but only {len(row['mask_classes'])} mask_classes")
        except Exception as e:  # noqa: BLE001
            bad("mask", f"semantic mask does not decode ({e})")
        for c in row["mask_classes"]:
            if c not in tax.mask_classes:
                bad("mask", f"mask class {c!r} not in taxonomy")
    elif "segmentation" in row["tasks"] and not any(objs["mask_rle"]):
        bad("tasks", "segmentation task without any mask")
    return out


def _check_attrs(attrs, tax, report) -> None:
    for a in attrs or []:
        info = tax.attributes.get(a["name"])
        if info is None:
            report(f"attribute {a['name']!r} not in taxonomy")
        elif a["value"] != NOT_ANNOTATED and a["value"] not in info.values:
            report(f"attribute {a['name']}={a['value']!r} not an allowed value")


def _check_batch(args: tuple[list[dict], str]) -> list[tuple[str, str]]:
    rows, split = args
    res = []
    for r in rows:
        res.extend(check_row(r, split))
    return res


def _row_batches(files: list[Path], report: ValidationReport) -> Iterator[tuple[list[dict], str, Path]]:
    for f in files:
        report.files += 1
        try:
            pf = pq.ParquetFile(f)
        except Exception as e:  # noqa: BLE001
            report.add("file", f"{f}: not a readable Parquet file ({e})")
            continue
        if not pf.schema_arrow.remove_metadata().equals(ARROW_SCHEMA.remove_metadata()):
            report.add("schema", f"{f}: schema differs from the unified schema {SCHEMA_VERSION}")
            continue
        version = (pf.schema_arrow.metadata or {}).get(b"unihema_schema_version", b"").decode()
        if version != SCHEMA_VERSION:
            report.add("schema", f"{f}: schema version {version or '(none)'} != {SCHEMA_VERSION}")
        split = f.name.split("-", 1)[0]
        for i in range(pf.num_row_groups):
            try:
                rows = pf.read_row_group(i).to_pylist()
            except Exception as e:  # noqa: BLE001 - a damaged shard is a finding, not a crash
                report.add("file", f"{f}: row group {i} is unreadable ({type(e).__name__}: {e})")
                continue
            yield rows, split, f


_SHARD_RE = re.compile(r"^(?P<split>[a-z]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")


def _num_rows(f: Path) -> Optional[int]:
    """Rows of a shard from its footer; ``None`` when the file is not readable Parquet."""
    try:
        return pq.ParquetFile(f).metadata.num_rows
    except Exception:  # noqa: BLE001 - reported by the row pass, with the reason
        return None


def _read_manifest(out: Path, report: ValidationReport) -> dict:
    empty = {"schema_version": SCHEMA_VERSION, "sources": {}}
    try:
        manifest = read_manifest(out)
    except (ValueError, UnicodeDecodeError) as e:
        report.add("manifest", f"{out / '.unihema' / 'manifest.json'}: not valid JSON ({e})")
        return empty
    except OSError as e:
        report.add("manifest", f"{out / '.unihema' / 'manifest.json'}: unreadable ({e})")
        return empty
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sources"), dict) or not all(
            isinstance(m, dict) for m in manifest["sources"].values()):
        report.add("manifest", f"{out / '.unihema' / 'manifest.json'}: not a manifest "
                               "(expected an object with a 'sources' object of objects)")
        return empty
    return manifest


def _check_layout(out: Path, manifest: dict, files: list[Path], shard_rows: dict[Path, Optional[int]],
                  report: ValidationReport) -> None:
    """Manifest <-> data folders, shard naming and completeness, manifest counts <-> shard rows."""
    by_dir: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        by_dir[f.parent.name].append(f)
    data = out / "data"
    dirs = {d.name for d in data.iterdir() if d.is_dir()} if data.is_dir() else set()
    for sid, m in sorted(manifest["sources"].items()):
        if sid not in dirs:
            report.add("missing", f"data/{sid}/: listed in the manifest but missing (deleted?)")
        elif not by_dir.get(sid):
            report.add("missing", f"data/{sid}/: listed in the manifest but holds no shard")
    for d in sorted(dirs - set(manifest["sources"])):
        report.add("manifest", f"data/{d}/: has no manifest entry (an interrupted conversion, or a stale folder)")
    for sid, shards in sorted(by_dir.items()):
        groups: dict[str, list[tuple[int, int, Path]]] = defaultdict(list)
        for f in shards:
            m = _SHARD_RE.match(f.name)
            if not m or m["split"] not in SPLITS:
                report.add("file", f"{f}: not a shard name (<split>-IIIII-of-NNNNN.parquet)")
                continue
            groups[m["split"]].append((int(m["i"]), int(m["n"]), f))
        rows_by_split: dict[str, Optional[int]] = {}
        for split, items in sorted(groups.items()):
            ns = {n for _i, n, _f in items}
            if len(ns) != 1:
                report.add("missing", f"data/{sid}/{split}-*: shards disagree on the shard total ({sorted(ns)})")
                continue
            (n,) = ns
            have = {i for i, _n, _f in items}
            lost = sorted(set(range(n)) - have)
            if lost:
                names = ", ".join(f"{split}-{i:05d}-of-{n:05d}.parquet" for i in lost[:5])
                report.add("missing", f"data/{sid}/: {len(lost)} of {n} {split} shard(s) missing: {names}")
            extra = sorted(have - set(range(n)))
            if extra:
                report.add("file", f"data/{sid}/: {split} shard index {extra[0]} is beyond -of-{n:05d}")
            counts = [shard_rows.get(f) for _i, _n, f in items]
            rows_by_split[split] = None if any(c is None for c in counts) else sum(counts)  # type: ignore[arg-type]
        entry = manifest["sources"].get(sid)
        want = entry.get("counts") if isinstance(entry, dict) else None
        if isinstance(want, dict):
            for split in sorted(set(want) | set(rows_by_split)):
                got = rows_by_split.get(split, 0)
                if got is None:
                    continue  # an unreadable shard is reported by the row pass
                if want.get(split, 0) != got:
                    report.add("counts", f"data/{sid}/: {got} {split} rows in the shards, the manifest says "
                                         f"{want.get(split, 0)}")


def validate(out: Path | str, num_proc: int = 1, on_progress=None) -> ValidationReport:
    """Check every row of ``out``; ``on_progress(rows_done, rows_total)`` is called per row group."""
    out = Path(out)
    report = ValidationReport()
    files = all_parquet_files(out)
    if not files:
        report.add("file", f"{out}: no Parquet shards under data/")
        return report
    pending = pending_commit(out)
    if pending:  # new shards may sit under an old manifest until the commit is finished
        report.add("manifest", pending)
    manifest = _read_manifest(out, report)
    kinds = {s: m.get("kind", "source") for s, m in manifest["sources"].items()}
    split_of_sha: dict[str, tuple[str, str]] = {}
    ids: set[str] = set()

    shard_rows = {f: _num_rows(f) for f in files}
    _check_layout(out, manifest, files, shard_rows, report)
    total = sum(n for n in shard_rows.values() if n is not None)

    def bookkeeping(rows: list[dict], f: Path) -> None:
        source_kind = kinds.get(f.parent.name, "source")
        for r in rows:
            report.rows += 1
            if r["sample_id"] in ids:
                report.add("duplicate", f"{r['sample_id']}: sample_id appears twice")
            ids.add(r["sample_id"])
            prev = split_of_sha.get(r["image_sha256"])
            if prev is None:
                split_of_sha[r["image_sha256"]] = (r["sample_id"], r["split"])
            elif prev[1] != r["split"]:
                report.add("leak", f"{r['sample_id']} ({r['split']}) has the same image bytes as {prev[0]} ({prev[1]})")
            for fl in r["qc_flags"]:  # near-duplicate groups share one split too (integrity.py)
                if fl.startswith("near_duplicate_of:"):
                    near.append((r["sample_id"], r["split"], fl.split(":", 1)[1]))
            split_of_id[r["sample_id"]] = r["split"]
            if r["source"] != f.parent.name and source_kind == "source":
                report.add("source", f"{r['sample_id']}: source {r['source']!r} stored under data/{f.parent.name}")
        if on_progress:
            on_progress(report.rows, total)

    near: list[tuple[str, str, str]] = []
    split_of_id: dict[str, str] = {}

    def near_leaks() -> None:
        for sid, split, other in near:
            if other in split_of_id and split_of_id[other] != split:
                report.add("leak", f"{sid} ({split}) is a near-duplicate of {other} ({split_of_id[other]})")

    batches = _row_batches(files, report)
    if num_proc <= 1:
        for rows, split, f in batches:
            bookkeeping(rows, f)
            for kind, msg in _check_batch((rows, split)):
                report.add(kind, msg)
        near_leaks()
        return report
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(num_proc) as pool:
        pending = []
        for rows, split, f in batches:
            bookkeeping(rows, f)
            pending.append(pool.apply_async(_check_batch, ((rows, split),)))
            while len(pending) >= 2 * num_proc:
                for kind, msg in pending.pop(0).get():
                    report.add(kind, msg)
        for p in pending:
            for kind, msg in p.get():
                report.add(kind, msg)
    near_leaks()
    return report


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# ``unihema_data.validate(...)`` (the package-level API verb) calls unihema_data.api.validate
from .api import validate as _api_validate, make_callable as _make_callable  # noqa: E402

_make_callable(__name__, _api_validate)
