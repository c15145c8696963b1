"""``unihema-data convert``: native source folders -> the unified Hub-layout dataset.

For each source: locate and check the native layout (adapter), stream records (main process:
listing only), parse the annotations and build rows in parallel worker processes, which hand them
back as Arrow record batches (bounded in-flight work, so memory stays flat in dataset size), and
stream the batches into Parquet shards in a staging folder; then one resolution pass over the whole of
``OUT`` (:mod:`unihema_data.integrity`: duplicates, near-duplicates, label conflicts, one split per
group, independent of conversion order) rewrites the rows of any source that change, and
everything (data and manifest) is committed in one atomic exchange only when the whole source
succeeded. Writers into one ``OUT`` are serialised by a lock (:func:`unihema_data.outdir.out_lock`).

Reruns are no-ops: a source whose fingerprint (adapter version, schema version, options, taxonomy,
catalog entry and the (path, size, mtime) of every input file) is unchanged is skipped.
"""
from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import multiprocessing as mp
import os
import shutil
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional


from .adapters import get_adapter
from .adapters.base import Adapter, AdapterError
from .catalog import load_catalog
from .formats import disk
from .integrity import commit_with_policy, is_resolution_flag
from .outdir import out_lock, read_manifest, source_files, staged_source
from .report import RunReport
from .rows import RowError, SourceContext, build_row
from .schema import SCHEMA_VERSION
from .splits import DEFAULT_SEED
from .taxonomy import TaxonomyError, load_taxonomy

BATCH = 8


class ConversionError(Exception):
    """Conversion of a source failed; ``OUT`` is unchanged. The message names file and problem."""


def default_num_proc() -> int:
    """Worker processes besides the main process (which lists records, then routes and writes the
    Arrow batches the workers return): one per core, at least 1, at most 4. On 2 cores that is 2
    workers beside the main process, measured 1.16-1.38x faster than ``num_proc=1`` in the
    complete benchmark runs of 2026-12-03 at about twice the memory (500-600 MiB against ~300 MiB
    for 2,000 images; ``benchmarks/RESULTS.md``);
    ``cores - 1`` (the earlier default) meant no pool at all on such a machine."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class ConvertOptions:
    num_proc: int = field(default_factory=lambda: default_num_proc())
    max_samples: Optional[int] = None
    overwrite: bool = False
    seed: int = DEFAULT_SEED
    progress: bool = True
    taxonomy_path: Optional[str] = None
    #: convert what is present when image files referenced by the annotations are missing (e.g.
    #: WBCAtt with only part of PBC): they are skipped and listed in ``SourceReport.missing`` and
    #: the manifest. Off by default: a missing image fails the conversion.
    allow_partial: bool = False


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
    #: run report: inputs skipped / orphaned / repaired / flagged (see :mod:`unihema_data.report`)
    inputs: RunReport = field(default_factory=RunReport)
    #: layout facts the adapter detected (variant, class-name source, linked roots...)
    info: dict[str, str] = field(default_factory=dict)
    #: --allow-partial: ``path (reason)`` of every orphaned input (e.g. a CSV row whose image is absent)
    missing: list[str] = field(default_factory=list)

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
    disk.forget_listings()  # case-twin checks see the tree as it is now
    try:
        adapter = get_adapter(sid)
        adapter.allow_partial = options.allow_partial
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

    out.mkdir(parents=True, exist_ok=True)
    with out_lock(out, on_wait=lambda: print(f"{sid}: waiting for another conversion into {out} to finish",
                                             flush=True)):
        return _convert_locked(sid, adapter, entry, root, mask_order, out, options, on_progress, t0)


def _convert_locked(sid, adapter, entry, root, mask_order, out, options, on_progress, t0) -> SourceReport:
    try:
        fp = fingerprint(adapter, root, entry.model_dump_json(), options)
    except AdapterError as e:  # a FIFO or dangling link met while listing the inputs
        raise ConversionError(disk.show(str(e).strip('"'))) from None
    manifest = read_manifest(out)
    prev = manifest["sources"].get(sid)
    if prev and prev.get("fingerprint") == fp and not options.overwrite and source_files(out, sid):
        # what the stored rows carry, so an up-to-date rerun reports the same as the conversion did
        rep = SourceReport(sid, "up_to_date", prev.get("counts", {}), time.perf_counter() - t0,
                           duplicates=prev.get("duplicates", 0), moved=_moved_total(prev.get("moved")),
                           flags=dict(prev.get("flags", {})), root=disk.show(root),
                           missing=list(prev.get("partial", {}).get("missing", [])))
        prev_inputs = prev.get("inputs", {})
        for kind in ("skipped", "orphaned", "repaired", "flagged"):
            for item in prev_inputs.get(kind, []):
                rep.inputs.entries.append((kind, item["path"], item["reason"]))
        rep.info = dict(prev.get("info", {}))
        return rep

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
        mask_palette=tuple(sorted(adapter.mask_palette.items())),
        seed=options.seed,
        taxonomy_path=options.taxonomy_path,
    )
    report = SourceReport(sid, "converted", root=disk.show(root))
    flags: Counter = Counter()
    ids_seen: set[str] = set()
    try:
        with staged_source(out, sid) as staged:
            adapter.prepare(root)  # main process: source-wide files, before the workers start
            records = _samples(adapter, root, options.max_samples)
            n = 0
            for batch in _map_batches(records, ctx, options.num_proc, adapter):
                adapter.report.extend(batch.notes)
                for sample_id in batch.sample_ids:
                    if sample_id in ids_seen:
                        raise ConversionError(f"{sid}: two records share sample_id {sample_id!r}")
                    ids_seen.add(sample_id)
                for f in batch.flags:
                    flags[f] += 1
                staged.add_batch(batch.arrow(), batch.splits, batch.nbytes, batch.sample_ids)
                n += len(batch.sample_ids)
                if on_progress:
                    on_progress(sid, n)
            if not ids_seen:
                raise ConversionError(f"{sid}: no samples found under {root}")
            staged.finish()
            from .croissant import remember_sha256

            remember_sha256(out, {f"data/{sid}/{name}": v for name, v in staged.sha256().items()})
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

            def before_commit(plan) -> None:
                """The run report goes into the manifest inside the same atomic exchange."""
                for _split, new_flags in plan.updates.get(sid, {}).values():  # the policy's flags here
                    for f in new_flags:
                        if is_resolution_flag(f):
                            flags[f.split(":", 1)[0]] += 1
                entry_m = manifest["sources"][sid]
                entry_m.update(duplicates=plan.groups, flags=dict(flags), inputs=adapter.report.to_manifest(),
                               info=_report_info(adapter))
                if options.allow_partial:
                    missing = [f"{p} ({r})" for p, r in adapter.report.of("orphaned")]
                    entry_m["partial"] = {"missing_count": len(missing), "missing": missing}

            plan = commit_with_policy(out, sid, staged.folder, manifest, before_commit=before_commit)
            report.counts = manifest["sources"][sid]["counts"]
    except (AdapterError, TaxonomyError) as e:
        raise ConversionError(disk.show(str(e).strip('"'))) from None
    except OSError as e:  # disk full, permissions... while writing OUT
        raise ConversionError(f"{sid}: cannot write {out}: {e}") from None
    report.duplicates = plan.groups
    report.moved = sum(plan.moved.values())
    report.moved_by_source = {s: d for s, d in manifest_moved(manifest).items() if d}
    report.rewritten = [s for s in plan.sources() if s != sid]
    report.flags = dict(flags)
    report.inputs = adapter.report
    if options.allow_partial:
        report.missing = [f"{p} ({r})" for p, r in report.inputs.of("orphaned")]
    report.info = _report_info(adapter)
    report.seconds = time.perf_counter() - t0
    report.stale_textsets = sorted(k for k, m in manifest["sources"].items()
                                   if m.get("kind") == "textset" and m.get("parent") == sid)
    return report


def _report_info(adapter: Adapter) -> dict[str, str]:
    return {**adapter.report.info, **{f"images_from:{k}": disk.show(v) for k, v in adapter.linked.items()}}


def _moved_total(moved) -> int:
    """Rows moved by the split policy, from a manifest entry (``{"a->b (why)": n}``)."""
    return sum(moved.values()) if isinstance(moved, dict) else int(moved or 0)


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
                         entry_json, tax_sha] + (["allow_partial"] if options.allow_partial else [])).encode())
    prefix = os.path.join(os.fspath(root), "")
    for p in adapter.input_files(root):
        ps = os.fspath(p)
        try:
            st = os.stat(ps)
        except OSError as e:  # vanished or dangling: part of the fingerprint, not a traceback
            h.update(os.fsencode(p) + f"\x00missing:{e.errno}\n".encode())
            continue
        if ps.startswith(prefix):  # the common case, as a string (pathlib costs ~0.1 ms a file)
            rel = ps[len(prefix):].replace(os.sep, "/")
        else:
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
_WORKER_ADAPTER: Optional[Adapter] = None
_WORKER_SPOOL: Optional[str] = None
_WORKER_SEQ = itertools.count()


def _init_worker(ctx: SourceContext, adapter: Optional[Adapter] = None, spool: Optional[str] = None) -> None:
    global _WORKER_CTX, _WORKER_ADAPTER, _WORKER_SPOOL
    _WORKER_CTX = ctx
    _WORKER_ADAPTER = adapter
    _WORKER_SPOOL = spool
    _pyarrow_without_pandas()


class _RefusePandas:
    """Meta-path finder refusing ``pandas`` (see :func:`_pyarrow_without_pandas`)."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (not imported by conversion workers)", name=name)
        return None


def _pyarrow_without_pandas() -> None:
    """Worker start-up: pyarrow imports pandas on its first conversion of Python objects (to
    check whether they are pandas objects; ~0.45 s of CPU per process, rows never hold any).
    When this worker has not imported pandas, pyarrow's check is made here with pandas refused,
    and pyarrow remembers that pandas is absent (in this worker process only). Rows convert
    identically (``tests/test_convert_batches.py`` compares the tables of 1 and 2 processes)."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    finder = _RefusePandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([0])
    except Exception:  # noqa: BLE001 - a pyarrow that handles the refusal otherwise just imports later
        pass
    finally:
        sys.meta_path.remove(finder)


#: where the workers leave their batches for the main process, first that is a writable folder
#: (shared memory; :func:`_spool_dir`)
SPOOL_PARENTS = ("/dev/shm",)


def _spool_dir() -> Optional[str]:
    """A new private folder (mode 0700) for the record batches in flight from the workers to the
    main process, in shared memory where there is one (``/dev/shm``), else ``None``: the batches
    then travel through the pool's pipe. Through the pipe the main process spent ~3 ms of CPU per
    MB receiving (chunked reads and copies; 1.4 s for 450 MB of images, on the cores the workers
    need); a batch in a spool file is memory-mapped without a copy (:func:`outdir.batch_from_spool`).
    A worker that cannot write its file (the spool full) sends that batch through the pipe."""
    import tempfile

    for parent in SPOOL_PARENTS:
        if os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK):
            _sweep_spools(parent)
            try:
                return tempfile.mkdtemp(prefix=f"unihema-spool-{os.getpid()}-", dir=parent)
            except OSError:
                continue
    return None


#: seconds without a change after which the spool folder of a process that is gone is removed
SPOOL_STALE_S = 15 * 60


def _sweep_spools(parent: str) -> None:
    """Remove the spool folders in ``parent`` that conversions killed outright (SIGKILL, an
    out-of-memory kill) left behind; shared memory is not freed until they are. A folder is named
    after its process; only folders of this user whose process is gone and that nothing has
    touched for :data:`SPOOL_STALE_S` are removed (a live conversion adds and removes files in
    its folder all the time; the age also covers a process in another PID namespace sharing
    ``/dev/shm``)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        head, _, rest = name.partition("unihema-spool-")
        pid = rest.split("-", 1)[0]
        if head or not pid.isdigit():
            continue
        path = os.path.join(parent, name)
        try:
            st = os.lstat(path)
            if st.st_uid != os.getuid() or time.time() - st.st_mtime < SPOOL_STALE_S:
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (OSError, OverflowError):  # another user's process, or not ours to judge
            continue


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


@dataclass(frozen=True)
class Spooled:
    """A record batch a worker wrote to a spool file (:func:`outdir.batch_to_spool`)."""

    path: str


@dataclass
class RowBatch:
    """Converted rows of a few records, as a worker hands them back: an Arrow record batch (in a
    spool file, or IPC bytes, when it crossed a process boundary) and the little the main process
    needs per row to route and account (sample id, split, size towards a row group, qc-flag
    kinds), plus the run-report notes of the records, in record order."""

    payload: Any  # pa.RecordBatch, Spooled, or its IPC bytes (outdir.batch_to_bytes)
    sample_ids: list[str]
    splits: list[str]
    nbytes: list[int]
    flags: list[str]  # kinds (text before the first ':') of every row's qc flags
    notes: list

    def arrow(self):
        """The record batch (a spool file is removed once read: call once)."""
        from .outdir import batch_from_bytes, batch_from_spool

        if isinstance(self.payload, Spooled):
            return batch_from_spool(self.payload.path)
        return batch_from_bytes(self.payload) if isinstance(self.payload, bytes) else self.payload


def _pack(batch, spool: Optional[str]):
    """What crosses to the main process for ``batch``: a spool file, else its IPC bytes."""
    from .outdir import batch_to_bytes, batch_to_spool

    if spool is not None:
        path = os.path.join(spool, f"{os.getpid()}-{next(_WORKER_SEQ)}.arrow")
        if batch_to_spool(batch, path):
            return Spooled(path)
    return batch_to_bytes(batch)


def _convert_batch(records: list, ctx: SourceContext, adapter: Optional[Adapter]) -> RowBatch:
    """Parse and build the rows of ``records`` (worker side) and pack them into one Arrow batch
    (:func:`_work` then packs it for the main process)."""
    from .outdir import row_nbytes, rows_to_batch

    rows, notes = [], []
    for r in records:
        row, n = process_record(r, ctx, adapter)
        rows.append(row)
        notes.extend(n)
    batch = rows_to_batch(rows)
    return RowBatch(batch, [r["sample_id"] for r in rows],
                    [r["split"] for r in rows], [row_nbytes(r) for r in rows],
                    [f.split(":", 1)[0] for r in rows for f in r["qc_flags"]], notes)


def _work(batch: list) -> RowBatch:
    assert _WORKER_CTX is not None
    rb = _convert_batch(batch, _WORKER_CTX, _WORKER_ADAPTER)
    rb.payload = _pack(rb.payload, _WORKER_SPOOL)
    return rb


def _prewarm_card_imports() -> None:
    """Imports the steps after the last row need (card: huggingface_hub's card data; the integrity pass:
    pandas, which pyarrow imports on the first ``Array.to_numpy``), done while the workers run."""
    _import_quietly(("huggingface_hub.repocard_data", "pandas"))


#: modules every worker imports on its first batch (the perceptual hash's DCT, ~0.3 s): imported
#: once in the main process before the workers are forked, instead of once in each worker. (pandas,
#: which pyarrow would import in each worker, is kept out of the workers: :func:`_pyarrow_without_pandas`.)
WORKER_PRELOAD = ("scipy.fftpack",)


def _import_quietly(names) -> None:
    """Import ``names`` ahead of need (a step that needs one imports it again and reports any problem)."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - see the docstring
            pass


def _batches(samples: Iterator, size: int) -> Iterator[list]:
    while True:
        b = list(islice(samples, size))
        if not b:
            return
        yield b


def _map_batches(records: Iterator, ctx: SourceContext, num_proc: int,
                 adapter: Optional[Adapter] = None) -> Iterator[RowBatch]:
    """Ordered, bounded parallel map of :func:`_convert_batch` over batches of :data:`BATCH`
    records (at most ``4 * num_proc`` batches in flight, so memory stays flat). Workers parse the
    annotations, build the rows and return Arrow record batches; the main process only routes
    and writes them. The adapter (with its :meth:`~Adapter.prepare` state) reaches each worker
    once, at start-up; batches come back through a spool folder (:func:`_spool_dir`), removed
    with whatever is left in it when the map ends, however it ends. ``num_proc <= 1``: everything
    in this process, no pool."""
    if num_proc <= 1:
        for batch in _batches(iter(records), BATCH):
            yield _convert_batch(batch, ctx, adapter)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    if method == "fork":
        _import_quietly(WORKER_PRELOAD)
    spool = _spool_dir()
    try:
        with mp.get_context(method).Pool(num_proc, initializer=_init_worker, initargs=(ctx, adapter, spool)) as pool:
            # the main process mostly waits on the workers now: import what the card step needs
            # meanwhile (pandas, huggingface_hub's card data) instead of after the last row
            threading.Thread(target=_prewarm_card_imports, daemon=True, name="unihema-prewarm").start()
            pending: deque = deque()
            for batch in _batches(iter(records), BATCH):
                pending.append(pool.apply_async(_work, (batch,)))
                while len(pending) >= 4 * num_proc:
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()
    finally:
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)


# ``unihema_data.convert(...)`` (the package-level API verb) calls unihema_data.api.convert
from .api import convert as _api_convert, make_callable as _make_callable  # noqa: E402

_make_callable(__name__, _api_convert)
