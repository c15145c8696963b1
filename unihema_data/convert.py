"""``unihema-data convert``: native source folders -> the unified Hub-layout dataset.

For each source: locate and check the native layout (adapter), stream records, build rows in
parallel worker processes (bounded in-flight work, so memory stays flat in dataset size) and
stream rows into Parquet shards in a staging folder; then one resolution pass over the whole of
``OUT`` (:mod:`unihema_data.integrity`: duplicates, near-duplicates, label conflicts, one split per
group, independent of conversion order) rewrites the rows of any source that change, and
everything (data and manifest) is committed in one atomic exchange only when the whole source
succeeded. Writers into one ``OUT`` are serialised by a lock (:func:`unihema_data.outdir.out_lock`).

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
from .adapters.base import Adapter, AdapterError, RawSample
from .catalog import load_catalog
from .integrity import commit_with_policy, is_resolution_flag
from .outdir import out_lock, read_manifest, source_files, staged_source
from .rows import SourceContext, build_row
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
    duplicates: int = 0  # duplicate groups (exact or near) over the whole OUT after this source
    moved: int = 0       # rows (of any source) in another split than their base split
    moved_by_source: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> "a->b (why)" -> n
    rewritten: list[str] = field(default_factory=list)  # other sources whose rows were rewritten
    flags: dict[str, int] = field(default_factory=dict)
    root: str = ""
    stale_textsets: list[str] = field(default_factory=list)  # derived sets to regenerate

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
        adapter.check(root)
        tax = load_taxonomy(options.taxonomy_path)
        if not tax.has_source(sid):
            raise ConversionError(f"{sid}: taxonomy.yaml has no alias table for this source")
        mask_order = _mask_class_order(adapter, tax)
    except (KeyError, AdapterError, TaxonomyError) as e:
        raise ConversionError(str(e).strip('"')) from None

    out.mkdir(parents=True, exist_ok=True)
    with out_lock(out, on_wait=lambda: print(f"{sid}: waiting for another conversion into {out} to finish",
                                             flush=True)):
        return _convert_locked(sid, adapter, entry, root, mask_order, out, options, on_progress, t0)


def _convert_locked(sid, adapter, entry, root, mask_order, out, options, on_progress, t0) -> SourceReport:
    fp = fingerprint(adapter, root, entry.model_dump_json(), options)
    manifest = read_manifest(out)
    prev = manifest["sources"].get(sid)
    if prev and prev.get("fingerprint") == fp and not options.overwrite and source_files(out, sid):
        return SourceReport(sid, "up_to_date", prev.get("counts", {}), time.perf_counter() - t0, root=str(root))

    _check_schema(out, manifest, sid)
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
        seed=options.seed,
        taxonomy_path=options.taxonomy_path,
    )
    report = SourceReport(sid, "converted", root=str(root))
    flags: Counter = Counter()
    ids_seen: set[str] = set()
    try:
        with staged_source(out, sid) as staged:
            samples = _samples(adapter, root, options.max_samples)
            for n, row in enumerate(_map_rows(samples, ctx, options.num_proc), 1):
                if row["sample_id"] in ids_seen:
                    raise ConversionError(f"{sid}: two records share sample_id {row['sample_id']!r}")
                ids_seen.add(row["sample_id"])
                for f in row["qc_flags"]:
                    flags[f.split(":", 1)[0]] += 1
                staged.add(row)
                if on_progress:
                    on_progress(sid, n)
            if not ids_seen:
                raise ConversionError(f"{sid}: no samples found under {root}")
            staged.finish()
            manifest = read_manifest(out)
            manifest["schema_version"] = SCHEMA_VERSION
            manifest["sources"][sid] = {
                "fingerprint": fp,
                "kind": "source",
                "license": entry.license,
                "counts": staged.counts(),
                "adapter_version": adapter.version,
                "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            plan = commit_with_policy(out, sid, staged.folder, manifest)
            report.counts = manifest["sources"][sid]["counts"]
    except (AdapterError, TaxonomyError) as e:
        raise ConversionError(str(e).strip('"')) from None
    except OSError as e:  # disk full, permissions... while writing OUT
        raise ConversionError(f"{sid}: cannot write {out}: {e}") from None
    for _split, new_flags in plan.updates.get(sid, {}).values():  # the policy's flags on this source
        for f in new_flags:
            if is_resolution_flag(f):
                flags[f.split(":", 1)[0]] += 1
    report.duplicates = plan.groups
    report.moved = sum(plan.moved.values())
    report.moved_by_source = {s: d for s, d in manifest_moved(manifest).items() if d}
    report.rewritten = [s for s in plan.sources() if s != sid]
    report.flags = dict(flags)
    report.seconds = time.perf_counter() - t0
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


def fingerprint(adapter: Adapter, root: Path, entry_json: str, options: ConvertOptions) -> str:
    h = hashlib.sha256()
    tax_file = Path(options.taxonomy_path) if options.taxonomy_path else Path(__file__).with_name("taxonomy.yaml")
    tax_sha = hashlib.sha256(tax_file.read_bytes()).hexdigest()
    h.update(json.dumps([SCHEMA_VERSION, adapter.id, adapter.version, options.seed, options.max_samples,
                         entry_json, tax_sha]).encode())
    for p in adapter.input_files(root):
        st = p.stat()
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.resolve().as_posix()
        h.update(f"{rel}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _mask_class_order(adapter: Adapter, tax) -> tuple[str, ...]:
    order: list[str] = []
    for _v, native in sorted(adapter.mask_values.items()):
        c = tax.map_mask_class(adapter.id, native)
        if c not in order:
            order.append(c)
    return tuple(order)


def _samples(adapter: Adapter, root: Path, max_samples: Optional[int]) -> Iterator[RawSample]:
    it = adapter.iter_samples(root)
    if max_samples is not None:
        it = islice(it, max_samples)
    for s in it:
        if not s.mask_values and adapter.mask_values:
            s.mask_values = dict(adapter.mask_values)
        yield s


def manifest_moved(manifest: dict) -> dict[str, dict[str, int]]:
    """``{source: {"train->test (duplicate)": n}}`` as recorded by the last resolution pass."""
    return {s: dict(m.get("moved") or {}) for s, m in manifest["sources"].items() if m.get("kind", "source") == "source"}


def _check_schema(out: Path, manifest: dict, sid: str) -> None:
    """Refuse to mix rows of another schema version into one OUT (see the README migration note)."""
    old = manifest.get("schema_version")
    others = sorted(s for s in manifest["sources"] if s != sid)
    if others and old != SCHEMA_VERSION:
        raise ConversionError(
            f"{out} holds {', '.join(others)} written with schema {old}; this version writes {SCHEMA_VERSION} "
            f"(ClassLabel ids, near-duplicate hashes). Convert into a new folder, or reconvert every source "
            f"of {out} into it (see 'Migrating from schema 1' in the README)."
        )


# ---------------------------------------------------------------- parallel row building
_WORKER_CTX: Optional[SourceContext] = None


def _init_worker(ctx: SourceContext) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx


def _work(batch: list[RawSample]) -> list[dict]:
    assert _WORKER_CTX is not None
    return [build_row(s, _WORKER_CTX) for s in batch]


def _batches(samples: Iterator[RawSample], size: int) -> Iterator[list[RawSample]]:
    while True:
        b = list(islice(samples, size))
        if not b:
            return
        yield b


def _map_rows(samples: Iterator[RawSample], ctx: SourceContext, num_proc: int) -> Iterator[dict]:
    """Ordered, bounded parallel map of :func:`build_row` (at most ``4 * num_proc`` batches in flight)."""
    if num_proc <= 1:
        for s in samples:
            yield build_row(s, ctx)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(num_proc, initializer=_init_worker, initargs=(ctx,)) as pool:
        pending: deque = deque()
        for batch in _batches(samples, BATCH):
            pending.append(pool.apply_async(_work, (batch,)))
            while len(pending) >= 4 * num_proc:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()
