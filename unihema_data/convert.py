"""``unihema-data convert``: native source folders -> the unified Hub-layout dataset.

For each source: locate and check the native layout (adapter), stream records, build rows in
parallel worker processes (bounded in-flight work, so memory stays flat in dataset size), resolve
exact duplicates against every source already in ``OUT``, and stream rows into Parquet shards in a
staging folder that is swapped into ``OUT`` only when the whole source succeeded.

Reruns are no-ops: a source whose fingerprint (adapter version, schema version, options, taxonomy,
catalog entry and the (path, size, mtime) of every input file) is unchanged is skipped.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import pyarrow.parquet as pq

from .adapters import get_adapter
from .adapters.base import Adapter, AdapterError
from .formats import disk
from .report import RunReport
from .card import write_card
from .catalog import load_catalog
from .outdir import all_parquet_files, read_manifest, source_files, staged_source, write_manifest
from .rows import RowError, SourceContext, build_row
from .schema import SCHEMA_VERSION
from .splits import DEFAULT_SEED
from .taxonomy import TaxonomyError, load_taxonomy

BATCH = 8


class ConversionError(Exception):
    """Conversion of a source failed; ``OUT`` is unchanged. The message names file and problem."""


def default_num_proc() -> int:
    """Workers besides the main process, which parses annotations and writes Parquet itself:
    on 2 cores one worker is fastest (measured in ``benchmarks/``), up to 4 on bigger machines."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


@dataclass
class ConvertOptions:
    num_proc: int = field(default_factory=lambda: default_num_proc())
    max_samples: Optional[int] = None
    overwrite: bool = False
    seed: int = DEFAULT_SEED
    progress: bool = True
    taxonomy_path: Optional[str] = None


@dataclass
class SourceReport:
    source: str
    status: str  # converted | up_to_date
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    duplicates: int = 0
    moved: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    root: str = ""
    stale_textsets: list[str] = field(default_factory=list)  # derived sets to regenerate
    #: run report: inputs skipped / orphaned / repaired / flagged (see :mod:`unihema_data.report`)
    inputs: RunReport = field(default_factory=RunReport)
    #: layout facts the adapter detected (variant, class-name source, linked roots...)
    info: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def convert(
    ids: Iterable[str],
    raw_dir: Path | str,
    out: Path | str,
    options: Optional[ConvertOptions] = None,
    on_progress: Optional[Callable[[str, int], None]] = None,
) -> list[SourceReport]:
    """Convert each source id found under ``raw_dir`` into ``out``. Raises :class:`ConversionError`."""
    options = options or ConvertOptions()
    out = Path(out)
    reports = []
    for sid in ids:
        reports.append(convert_source(sid, Path(raw_dir), out, options, on_progress))
    return reports


def convert_source(
    sid: str,
    raw_dir: Path,
    out: Path,
    options: ConvertOptions,
    on_progress: Optional[Callable[[str, int], None]] = None,
) -> SourceReport:
    t0 = time.perf_counter()
    try:
        adapter = get_adapter(sid)
        entry = load_catalog().get(sid)
        root = adapter.locate(raw_dir)
        link_sources(adapter, entry.images_from, raw_dir)
        adapter.check(root)
        tax = load_taxonomy(options.taxonomy_path)
        if not tax.has_source(sid):
            raise ConversionError(f"{sid}: taxonomy.yaml has no alias table for this source")
        mask_order = _mask_class_order(adapter, tax)
    except (KeyError, AdapterError, TaxonomyError) as e:
        raise ConversionError(str(e).strip('"')) from None

    try:
        fp = fingerprint(adapter, root, entry.model_dump_json(), options)
    except AdapterError as e:  # a FIFO or dangling link met while listing the inputs
        raise ConversionError(disk.show(str(e).strip('"'))) from None
    manifest = read_manifest(out)
    prev = manifest["sources"].get(sid)
    if prev and prev.get("fingerprint") == fp and not options.overwrite and source_files(out, sid):
        rep = SourceReport(sid, "up_to_date", prev.get("counts", {}), time.perf_counter() - t0, root=disk.show(root))
        prev_inputs = prev.get("inputs", {})
        for kind in ("skipped", "orphaned", "repaired", "flagged"):
            for item in prev_inputs.get(kind, []):
                rep.inputs.entries.append((kind, item["path"], item["reason"]))
        rep.info = dict(prev.get("info", {}))
        return rep

    ctx = SourceContext(
        source=sid,
        license=entry.license,
        granularity="single_cell" if entry.granularity == "single_cell" else "field_of_view",
        disease=",".join(entry.disease),
        magnification=entry.magnification or "",
        microscope=entry.microscope or "",
        stain=entry.stain or "",
        box_format=adapter.box_format.value if adapter.box_format else None,
        adapter_tasks=tuple(adapter.tasks),
        mask_class_order=mask_order,
        mask_snap_stray_values=adapter.mask_snap_stray_values,
        mask_palette=tuple(sorted(adapter.mask_palette.items())),
        seed=options.seed,
        taxonomy_path=options.taxonomy_path,
    )
    seen = _existing_hashes(out, exclude=sid)
    report = SourceReport(sid, "converted", root=disk.show(root))
    flags: Counter = Counter()
    ids_seen: set[str] = set()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with staged_source(out, sid) as staged:
            adapter.prepare(root)  # main process: source-wide files, before the workers start
            records = _samples(adapter, root, options.max_samples)
            for n, (row, notes) in enumerate(_map_rows(records, ctx, options.num_proc, adapter), 1):
                adapter.report.extend(notes)
                if row["sample_id"] in ids_seen:
                    raise ConversionError(f"{sid}: two records share sample_id {row['sample_id']!r}")
                ids_seen.add(row["sample_id"])
                _resolve_duplicate(row, seen, report)
                for f in row["qc_flags"]:
                    flags[f.split(":", 1)[0]] += 1
                staged.add(row)
                if on_progress:
                    on_progress(sid, n)
            if not ids_seen:
                raise ConversionError(f"{sid}: no samples found under {root}")
            staged.finish()
            report.counts = staged.counts()
            staged.commit()
    except (AdapterError, TaxonomyError) as e:
        raise ConversionError(disk.show(str(e).strip('"'))) from None
    except OSError as e:  # disk full, permissions... while writing OUT
        raise ConversionError(f"{sid}: cannot write {out}: {e}") from None
    report.flags = dict(flags)
    report.inputs = adapter.report
    report.info = {**adapter.report.info, **{f"images_from:{k}": disk.show(v) for k, v in adapter.linked.items()}}
    report.seconds = time.perf_counter() - t0
    manifest = read_manifest(out)
    manifest["schema_version"] = SCHEMA_VERSION
    manifest["sources"][sid] = {
        "fingerprint": fp,
        "kind": "source",
        "license": entry.license,
        "counts": report.counts,
        "duplicates": report.duplicates,
        "adapter_version": adapter.version,
        "inputs": report.inputs.to_manifest(),
        "info": report.info,
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_manifest(out, manifest)
    write_card(out)
    report.stale_textsets = sorted(k for k, m in manifest["sources"].items()
                                   if m.get("kind") == "textset" and m.get("parent") == sid)
    return report


def sources_present(raw_dir: Path | str) -> list[str]:
    """Implemented sources whose native layout is found under ``raw_dir`` (in ``raw_dir/<id>/``)."""
    from .adapters import adapter_ids

    found = []
    for sid in adapter_ids():
        folder = Path(raw_dir) / sid
        if not folder.is_dir():
            continue
        try:
            get_adapter(sid).locate(folder)
        except AdapterError:
            continue
        found.append(sid)
    return found


def link_sources(adapter: Adapter, images_from: Iterable[str], raw_dir: Path | str) -> None:
    """Locate every source ``adapter`` takes images from (catalog ``images_from``) and hand its
    root to the adapter (:meth:`Adapter.link`)."""
    for other in images_from:
        adapter.link(other, _locate_linked(adapter.id, other, Path(raw_dir)))


def _locate_linked(sid: str, other: str, raw_dir: Path) -> Path:
    """Root of ``other`` (a source ``sid`` takes images from, catalog ``images_from``): a copy
    inside ``sid``'s own download (``raw_dir/<sid>``, put there on purpose) first, else
    ``raw_dir/<other>``, else ``raw_dir`` itself (when it is ``sid``'s folder)."""
    linked = get_adapter(other)
    candidates = [raw_dir / sid, raw_dir / "raw" / sid, raw_dir / other, raw_dir / "raw" / other, raw_dir]
    tried = []
    for c in candidates:
        if not c.is_dir() or c in tried:
            continue
        tried.append(c)
        found = linked.find_roots(c, depth=3, linked=True)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise AdapterError(f"{sid}: images_from {other}: two candidate {other} roots under {disk.show(c)}: "
                               f"{disk.show(found[0])} and {disk.show(found[1])}")
    what = f" ({linked.layout_hint})" if linked.layout_hint else ""
    raise AdapterError(
        f"{sid}: {other.upper()} images not found: its images come from source {other!r} (catalog images_from), "
        f"but no {other} layout{what} was found under "
        f"{' or '.join(disk.show(c) for c in candidates[:4])}. Put the {other} download under "
        f"{disk.show(raw_dir / other)} (`unihema-data fetch {other}`)."
    )


def fingerprint(adapter: Adapter, root: Path, entry_json: str, options: ConvertOptions) -> str:
    h = hashlib.sha256()
    tax_file = Path(options.taxonomy_path) if options.taxonomy_path else Path(__file__).with_name("taxonomy.yaml")
    tax_sha = hashlib.sha256(tax_file.read_bytes()).hexdigest()
    h.update(json.dumps([SCHEMA_VERSION, adapter.id, adapter.version, options.seed, options.max_samples,
                         entry_json, tax_sha]).encode())
    for p in adapter.input_files(root):
        try:
            st = p.stat()
        except OSError as e:  # vanished or dangling: part of the fingerprint, not a traceback
            h.update(os.fsencode(p) + f"\x00missing:{e.errno}\n".encode())
            continue
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.resolve().as_posix()
        h.update(os.fsencode(rel) + f"\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _mask_class_order(adapter: Adapter, tax) -> tuple[str, ...]:
    order: list[str] = []
    for _v, native in sorted(adapter.mask_values.items()):
        c = tax.map_mask_class(adapter.id, native)
        if c not in order:
            order.append(c)
    return tuple(order)


def _samples(adapter: Adapter, root: Path, max_samples: Optional[int]) -> Iterator:
    """The adapter's records (main process, cheap; parsed later in the workers)."""
    it = adapter.records(root)
    if max_samples is not None:
        it = islice(it, max_samples)
    return it


def _existing_hashes(out: Path, exclude: str) -> dict[str, tuple[str, str, bool]]:
    """sha256 -> (sample_id, split, twin) of every image already in ``out`` (other sources);
    ``twin`` is True when that row is itself flagged as a duplicate of a row of ``exclude`` (the
    source being reconverted), i.e. ``exclude``'s copy was the first occurrence."""
    seen: dict[str, tuple[str, str, bool]] = {}
    manifest = read_manifest(out)
    # every data folder counts (even one whose manifest entry a killed run never wrote), except
    # derived text sets, whose rows repeat their parent's images
    derived = {s for s, m in manifest["sources"].items() if m.get("kind", "source") != "source"}
    for f in all_parquet_files(out):
        if f.parent.name in derived or f.parent.name == exclude:
            continue
        t = pq.read_table(f, columns=["image_sha256", "sample_id", "split", "qc_flags"])
        cols = (t.column(c).to_pylist() for c in ("image_sha256", "sample_id", "split", "qc_flags"))
        for sha, sid, split, flags in zip(*cols):
            twin = any(fl.startswith(f"duplicate_of:{exclude}/") for fl in flags)
            seen.setdefault(sha, (sid, split, twin))
    return seen


def _resolve_duplicate(row: dict, seen: dict[str, tuple[str, str, bool]], report: SourceReport) -> None:
    """Exact duplicates follow the split of their first occurrence and are flagged
    ``duplicate_of:<first sample_id>``. When the other copy is already flagged as this row's
    duplicate (this source was converted first and is being reconverted), this row stays the
    unflagged original; it still follows the other copy's split, so nothing leaks."""
    sha = row["image_sha256"]
    first = seen.get(sha)
    if first is None:
        seen[sha] = (row["sample_id"], row["split"], False)
        return
    report.duplicates += 1
    if not first[2]:
        row["qc_flags"].append(f"duplicate_of:{first[0]}")
    if row["split"] != first[1]:
        row["qc_flags"].append(f"split_moved:{row['split']}->{first[1]}")
        row["split"] = first[1]
        report.moved += 1


# ---------------------------------------------------------------- parallel row building
_WORKER_CTX: Optional[SourceContext] = None
_WORKER_ADAPTER: Optional[Adapter] = None


def _init_worker(ctx: SourceContext, adapter: Optional[Adapter] = None) -> None:
    global _WORKER_CTX, _WORKER_ADAPTER
    _WORKER_CTX = ctx
    _WORKER_ADAPTER = adapter


def _record_name(record) -> str:
    for attr in ("annotation_file", "image_path", "path", "image"):
        v = getattr(record, attr, None)
        if v:
            return disk.show(str(v))
    return disk.show(repr(record))[:200]


def process_record(record, ctx: SourceContext, adapter: Optional[Adapter]) -> tuple[dict, list]:
    """Worker side of one record: the adapter's :meth:`~Adapter.parse` (annotation files), then
    :func:`build_row` (image and mask references decoded). Returns ``(row, run-report notes)``."""
    if adapter is not None:
        try:
            sample = adapter.parse(record)
        except (AdapterError, TaxonomyError):
            raise
        except Exception as e:  # noqa: BLE001 - name the record whatever went wrong
            raise RowError(f"{ctx.source}: {_record_name(record)}: {type(e).__name__}: {e}") from e
        if not sample.mask_values and adapter.mask_values:
            sample.mask_values = dict(adapter.mask_values)
    else:
        sample = record
    return build_row(sample, ctx), list(sample.notes)


def _work(batch: list) -> list[tuple[dict, list]]:
    assert _WORKER_CTX is not None
    return [process_record(r, _WORKER_CTX, _WORKER_ADAPTER) for r in batch]


def _batches(samples: Iterator, size: int) -> Iterator[list]:
    while True:
        b = list(islice(samples, size))
        if not b:
            return
        yield b


def _map_rows(records: Iterator, ctx: SourceContext, num_proc: int,
              adapter: Optional[Adapter] = None) -> Iterator[tuple[dict, list]]:
    """Ordered, bounded parallel map of :func:`process_record` (at most ``4 * num_proc`` batches
    in flight, so memory stays flat). The adapter (with its :meth:`~Adapter.prepare` state)
    reaches each worker once, at start-up."""
    if num_proc <= 1:
        for r in records:
            yield process_record(r, ctx, adapter)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(num_proc, initializer=_init_worker, initargs=(ctx, adapter)) as pool:
        pending: deque = deque()
        for batch in _batches(iter(records), BATCH):
            pending.append(pool.apply_async(_work, (batch,)))
            while len(pending) >= 4 * num_proc:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()
