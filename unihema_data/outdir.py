"""The Hub-layout output folder (``OUT``) and its atomic updates.

Layout::

    OUT/README.md                                   dataset card, YAML ``configs`` (one per source + ``all``)
    OUT/data/<source>/<split>-NNNNN-of-NNNNN.parquet
    OUT/.unihema/manifest.json                      per source: fingerprint, counts, kind, schema version
    OUT/.unihema/staging/                           in-progress conversions (never visible as data)
    OUT/.unihema/lock                               :func:`out_lock`: one writer at a time
    OUT/.unihema/commit.json                        journal of a commit in progress (see below)

Sources are replaced as wholes, and several at once: their shards are written to staging folders;
:func:`commit` then builds a complete new ``data/`` folder in staging (hard links to the shards
of every untouched source, the staged folders of the replaced ones), writes a journal holding the
new manifest, the other files that change with the data (curation's excluded store: staged
beside their targets) and the identity (device, inode) of that folder, swaps it with ``OUT/data``
in one atomic ``renameat2(RENAME_EXCHANGE)``, then moves those files into place, writes the
manifest and card and removes the journal. Writing the journal is the commit point:

* killed before it: ``OUT`` is unchanged (the next run removes the dead run's staging folders);
* killed after it (even between the data swap and the manifest write): the next writer, under
  the lock, calls :func:`recover`, which sees that ``OUT/data`` is the journal's folder and
  finishes the commit (files, manifest, card), or, when the swap never happened, drops the
  journal and the staged files.
  ``validate`` reports a pending journal (:func:`pending_commit`), so new shards are never
  accepted under an old manifest.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import uuid
from contextlib import contextmanager
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import ARROW_SCHEMA, SCHEMA_VERSION, SPLITS

MANIFEST = Path(".unihema") / "manifest.json"
STAGING = Path(".unihema") / "staging"
LOCK = Path(".unihema") / "lock"
JOURNAL = Path(".unihema") / "commit.json"

ROW_GROUP_ROWS = 100                 # small row groups: the Hub viewer and random access like them
#: already-compressed payloads (JPEG/PNG/GIF/WebP bytes) are stored as is; zstd on them costs time
#: and saves < 1 %; every other column is zstd-compressed
UNCOMPRESSED_COLUMNS = ("image.bytes", "semantic_mask.bytes")
ROW_GROUP_BYTES = 32 * 2**20
SHARD_BYTES = 512 * 2**20


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(out: Path) -> dict:
    p = Path(out) / MANIFEST
    if not p.exists():
        return {"schema_version": SCHEMA_VERSION, "sources": {}}
    return json.loads(p.read_text(encoding="utf-8"))


def write_manifest(out: Path, manifest: dict) -> None:
    atomic_write_text(Path(out) / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def source_files(out: Path, source: str) -> dict[str, list[Path]]:
    """Parquet shards of one source, by split."""
    d = Path(out) / "data" / source
    res: dict[str, list[Path]] = {}
    for split in SPLITS:
        files = sorted(d.glob(f"{split}-*.parquet"))
        if files:
            res[split] = files
    return res


def all_parquet_files(out: Path, exclude: tuple[str, ...] = ()) -> list[Path]:
    d = Path(out) / "data"
    if not d.exists():
        return []
    return sorted(p for p in d.glob("*/*.parquet") if p.parent.name not in exclude)


@lru_cache(maxsize=1)
def _column_compression() -> dict[str, str]:
    """Codec per Parquet leaf column (computed once, on first write, not at import)."""
    import io

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_batches([], schema=ARROW_SCHEMA), buf)  # (Schema.empty_table imports pandas: 0.45 s)
    meta = pq.ParquetFile(io.BytesIO(buf.getvalue())).schema
    paths = [meta.column(i).path for i in range(len(meta))]
    return {p: ("NONE" if p in UNCOMPRESSED_COLUMNS else "ZSTD") for p in paths}



@lru_cache(maxsize=1)
def _plain_columns() -> list[str]:
    """Leaf columns written with dictionary encoding and min/max statistics: all but the encoded
    image/mask bytes (hashing and comparing 50-500 kB blobs for a dictionary that never pays
    off, and for statistics nobody reads, cost ~20 % of the write)."""
    return [p for p in _column_compression() if p not in UNCOMPRESSED_COLUMNS]


class _SplitWriter:
    """Streams rows of one split into size-capped shards with small row groups.

    Rows arrive as dicts (:meth:`add`) or as Arrow record batches built in the worker processes
    (:meth:`add_batch`); either way a row group closes after :data:`ROW_GROUP_ROWS` rows or once it
    holds :data:`ROW_GROUP_BYTES` of image/mask bytes, at the same row whichever way rows came."""

    def __init__(self, folder: Path, split: str):
        self.folder, self.split = folder, split
        self.shards: list[Path] = []
        self.rows = 0
        self._writer: Optional[pq.ParquetWriter] = None
        self._shard_bytes = 0
        self._pieces: list[pa.RecordBatch] = []  # the open row group, in order
        self._dicts: list[dict] = []             # rows given as dicts after the last piece
        self._buf_rows = 0
        self._buf_bytes = 0
        self._sink: Optional[_HashingSink] = None
        #: final shard name -> ``"size:mtime_ns"`` and sha256 of its bytes, hashed as they were
        #: written (the Croissant file's checksums: :func:`unihema_data.croissant.remember_sha256`)
        self.sha256: dict[str, tuple[str, str]] = {}
        self._hashes: list[str] = []

    def add(self, row: dict, nbytes: int) -> None:
        self._dicts.append(row)
        self._buf_rows += 1
        self._buf_bytes += nbytes
        self.rows += 1
        if self._buf_rows >= ROW_GROUP_ROWS or self._buf_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def add_batch(self, batch: pa.RecordBatch, nbytes: Sequence[int]) -> None:
        """Append the rows of ``batch`` (schema :data:`ARROW_SCHEMA`); ``nbytes[i]`` is row ``i``'s
        size as :meth:`StagedSource.add` counts it."""
        self._take_dicts()
        start = 0
        for i, nb in enumerate(nbytes):
            self._buf_rows += 1
            self._buf_bytes += nb
            if self._buf_rows >= ROW_GROUP_ROWS or self._buf_bytes >= ROW_GROUP_BYTES:
                self._pieces.append(batch.slice(start, i + 1 - start))
                start = i + 1
                self._flush()
        if start < batch.num_rows:
            self._pieces.append(batch.slice(start) if start else batch)
        self.rows += batch.num_rows

    def _take_dicts(self) -> None:
        if self._dicts:
            self._pieces.append(pa.RecordBatch.from_pylist(self._dicts, schema=ARROW_SCHEMA))
            self._dicts = []

    def _flush(self) -> None:
        self._take_dicts()
        if not self._pieces:
            return
        if self._writer is None or self._shard_bytes >= SHARD_BYTES:
            self._close_writer()
            path = self.folder / f"{self.split}-{len(self.shards):05d}.tmp.parquet"
            self._sink = _HashingSink(path)
            self._writer = pq.ParquetWriter(self._sink, ARROW_SCHEMA, compression=_column_compression(),
                                            use_dictionary=_plain_columns(), write_statistics=_plain_columns())
            self.shards.append(path)
            self._shard_bytes = 0
        table = pa.Table.from_batches(self._pieces, schema=ARROW_SCHEMA)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._shard_bytes += self._buf_bytes
        self._pieces, self._buf_rows, self._buf_bytes = [], 0, 0

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._hashes.append(self._sink.finish())
            self._sink = None

    def close(self) -> list[Path]:
        """Flush, close and give shards their final ``<split>-NNNNN-of-NNNNN.parquet`` names."""
        self._flush()
        self._close_writer()
        n = len(self.shards)
        final = []
        for i, p in enumerate(self.shards):
            q = p.with_name(f"{self.split}-{i:05d}-of-{n:05d}.parquet")
            os.replace(p, q)
            final.append(q)
            st = q.stat()
            self.sha256[q.name] = (f"{st.st_size}:{st.st_mtime_ns}", self._hashes[i])
        return final


class _HashingSink(io.RawIOBase):
    """A write-only file that sha256-hashes what passes through (Parquet shards are hashed as they
    are written, instead of read back for the Croissant checksums). Closing it does not close the
    file: :meth:`finish` does, and returns the hex digest."""

    def __init__(self, path: Path):
        self._f = open(path, "wb")
        self._h = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._h.update(b)
        return self._f.write(b)

    def tell(self) -> int:
        return self._f.tell()

    def flush(self) -> None:
        if not self._f.closed:
            self._f.flush()

    def close(self) -> None:  # pyarrow closes its sink (and so may the finalizer): idempotent
        self.flush()
        super().close()

    def finish(self) -> str:
        self.close()
        self._f.close()
        return self._h.hexdigest()


def row_nbytes(row: dict) -> int:
    """What a row weighs towards a row group's :data:`ROW_GROUP_BYTES` (its image and mask bytes
    plus a fixed 512 for the rest)."""
    return len(row["image"]["bytes"]) + (len(row["semantic_mask"]["bytes"]) if row["semantic_mask"] else 0) + 512


@dataclass
class StagedSource:
    """Shards of one source being written; :meth:`commit` swaps them into ``OUT`` atomically."""

    out: Path
    source: str
    folder: Path
    writers: dict[str, _SplitWriter] = field(default_factory=dict)

    def _writer(self, split: str, sample_id: str) -> _SplitWriter:
        w = self.writers.get(split)
        if w is None:
            if split not in SPLITS:
                raise ValueError(f"invalid split {split!r} for {sample_id}")
            w = self.writers[split] = _SplitWriter(self.folder, split)
        return w

    def add(self, row: dict) -> None:
        self._writer(row["split"], row["sample_id"]).add(row, row_nbytes(row))

    def add_batch(self, batch: pa.RecordBatch, splits: Sequence[str], nbytes: Sequence[int],
                  sample_ids: Sequence[str]) -> None:
        """Add the rows of an Arrow record batch (built by :func:`rows_to_batch` in a worker):
        ``splits``, ``nbytes`` and ``sample_ids`` are per row, in batch order (rows of one split
        keep their relative order)."""
        start = 0
        for i in range(1, len(splits) + 1):  # runs of one split: zero-copy slices, in order
            if i == len(splits) or splits[i] != splits[start]:
                piece = batch if (start == 0 and i == len(splits)) else batch.slice(start, i - start)
                self._writer(splits[start], sample_ids[start]).add_batch(piece, nbytes[start:i])
                start = i

    def counts(self) -> dict[str, int]:
        return {s: w.rows for s, w in self.writers.items()}

    def sha256(self) -> dict[str, tuple[str, str]]:
        """``{shard file name: ("size:mtime_ns", sha256)}`` of the finished shards."""
        return {k: v for w in self.writers.values() for k, v in w.sha256.items()}

    def finish(self) -> None:
        for w in self.writers.values():
            w.close()

    def commit(self, manifest: Optional[dict] = None, files: Optional[dict[Path, Optional[Path]]] = None) -> None:
        """Replace ``OUT/data/<source>`` with the staged shards and write ``manifest`` (default:
        the current one) and ``files`` (see :func:`commit`) in one :func:`commit`. Call under
        :func:`out_lock`."""
        commit(self.out, {self.source: self.folder}, manifest if manifest is not None else read_manifest(self.out),
               files)


def rows_to_batch(rows: list[dict]) -> pa.RecordBatch:
    """Rows (dicts of the unified schema) -> one Arrow record batch of :data:`ARROW_SCHEMA`."""
    return pa.RecordBatch.from_pylist(rows, schema=ARROW_SCHEMA)


def batch_to_bytes(batch: pa.RecordBatch) -> bytes:
    """Arrow IPC encoding of a record batch *without* its schema (the schema's metadata, with the
    class names, would otherwise travel with every batch); read back by :func:`batch_from_bytes`."""
    return batch.serialize().to_pybytes()


def batch_from_bytes(data: bytes) -> pa.RecordBatch:
    return pa.ipc.read_record_batch(pa.py_buffer(data), ARROW_SCHEMA)


def batch_to_spool(batch: pa.RecordBatch, path: str) -> bool:
    """Write the IPC encoding of ``batch`` (as :func:`batch_to_bytes`, straight from Arrow's buffer)
    to the new file ``path``; ``False``, and no file left, when it cannot be written (spool full
    or gone: the caller hands the bytes over another way)."""
    data = batch.serialize()
    try:
        f = open(path, "xb")
    except OSError:
        return False
    try:
        with f:
            f.write(data)
        return True
    except OSError:
        os.unlink(path)
        return False


def batch_from_spool(path: str) -> pa.RecordBatch:
    """The record batch :func:`batch_to_spool` wrote to ``path``, memory-mapped (no copy); the file
    is removed at once (the mapping keeps its pages until the batch is freed)."""
    try:
        with pa.memory_map(path) as m:
            buf = m.read_buffer()
    finally:
        os.unlink(path)
    return pa.ipc.read_record_batch(buf, ARROW_SCHEMA)


# ---------------------------------------------------------------- lock and multi-source commit
@contextmanager
def out_lock(out: Path, timeout: float = -1, on_wait=None) -> Iterator[None]:
    """Hold ``OUT/.unihema/lock`` (``filelock``): concurrent writers (convert, textsets) into one
    ``OUT`` run one after the other. ``on_wait()`` is called once when the lock is busy. Inside,
    an interrupted earlier commit is finished first (:func:`recover`)."""
    from filelock import FileLock, Timeout

    out = Path(out)
    (out / LOCK).parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait()
        lock.acquire(timeout=timeout)
    try:
        recover(out)
        yield
    finally:
        lock.release()


def commit(out: Path, replacements: dict[str, Path], manifest: dict,
           files: Optional[dict[Path, Optional[Path]]] = None) -> None:
    """Atomically replace ``OUT/data/<source>`` for every ``source -> staged folder`` of
    ``replacements`` (the folders are consumed) and write ``manifest`` and the card with them
    (see the module doc for the protocol). ``files``: other files of ``OUT`` that change with the
    data (``target -> staged file`` next to it, consumed; ``None``: the target is removed), in the
    journal too, so an interrupted commit finishes or drops them with the data. Call under
    :func:`out_lock`."""
    out = Path(out)
    files = {str(t): (None if f is None else str(f)) for t, f in (files or {}).items()}
    data = out / "data"
    base = out / STAGING
    base.mkdir(parents=True, exist_ok=True)
    new = base / f"data-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    new.mkdir()
    try:
        if data.is_dir():
            for d in sorted(data.iterdir()):
                if d.name not in replacements:
                    _link_tree(d, new / d.name)
        for src, folder in replacements.items():
            os.replace(folder, new / src)
        _fsync_dir(new)
        st = os.stat(new)
        journal = {"new": str(new), "dev": st.st_dev, "ino": st.st_ino, "manifest": manifest, "files": files}
        atomic_write_text(out / JOURNAL, json.dumps(journal, sort_keys=True))  # the commit point
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        _drop_staged_files(files)
        raise
    if data.exists():
        if not _exchange(new, data):
            trash = base / f"trash-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(data, trash)
            os.replace(new, data)
            new = trash
    else:
        os.replace(new, data)
    _finish(out, journal, old=new)


def _finish(out: Path, journal: dict, old: Optional[Path]) -> None:
    from .card import write_card

    for target, staged in (journal.get("files") or {}).items():  # idempotent: a rerun finds them done
        if staged is None:
            Path(target).unlink(missing_ok=True)
        elif os.path.exists(staged):
            os.replace(staged, target)
    write_manifest(out, journal["manifest"])
    write_card(out)
    (out / JOURNAL).unlink(missing_ok=True)
    if old is not None and old.exists():
        shutil.rmtree(old, ignore_errors=True)  # the previous data folder (after the swap)


def pending_commit(out: Path) -> Optional[str]:
    """A description of an interrupted commit in ``OUT`` (journal present), else ``None``."""
    j = _read_journal(Path(out))
    if j is None:
        return None
    state = "data swapped, manifest not yet written" if _is_journal_data(Path(out), j) else "data not swapped"
    return f"{Path(out) / JOURNAL}: interrupted commit ({state}); the next convert/generate finishes or drops it"


def recover(out: Path) -> Optional[str]:
    """Finish (data already swapped) or drop (not swapped) an interrupted commit; returns what
    was done, ``None`` when there was nothing to do. Call under :func:`out_lock`."""
    out = Path(out)
    j = _read_journal(out)
    if j is None:
        if (out / JOURNAL).exists():
            (out / JOURNAL).unlink()
            return "dropped an unreadable commit journal (the data swap had not happened)"
        return None
    data, new = out / "data", Path(j["new"])
    if _is_journal_data(out, j):
        _finish(out, j, old=new)
        return "finished an interrupted commit (manifest and card written)"
    if not data.exists() and new.is_dir():  # killed between the two renames of the fallback
        os.replace(new, data)
        _finish(out, j, old=None)
        return "finished an interrupted commit (data moved in, manifest and card written)"
    (out / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(new, ignore_errors=True)
    _drop_staged_files(j.get("files") or {})
    return "dropped an interrupted commit (the data swap had not happened)"


def _drop_staged_files(files: dict[str, Optional[str]]) -> None:
    for staged in files.values():
        if staged is not None:
            Path(staged).unlink(missing_ok=True)


def _read_journal(out: Path) -> Optional[dict]:
    p = out / JOURNAL
    if not p.is_file():
        return None
    try:
        j = json.loads(p.read_text(encoding="utf-8"))
        return j if isinstance(j, dict) and {"new", "dev", "ino", "manifest"} <= set(j) else None
    except (OSError, ValueError):
        return None


def _is_journal_data(out: Path, j: dict) -> bool:
    try:
        st = os.stat(out / "data")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (j["dev"], j["ino"])


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (copy where links are impossible) every file of ``src`` into ``dst``."""
    if src.is_file():
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return
    dst.mkdir()
    for p in sorted(src.iterdir()):
        _link_tree(p, dst / p.name)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 with RENAME_EXCHANGE); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    rc = renameat2(AT_FDCWD, os.fsencode(str(a)), AT_FDCWD, os.fsencode(str(b)), RENAME_EXCHANGE)
    return rc == 0


@contextmanager
def staged_source(out: Path, source: str) -> Iterator[StagedSource]:
    """Yield a staging area for ``source``; removed on any error (``OUT`` is left untouched)."""
    out = Path(out)
    base = out / STAGING
    base.mkdir(parents=True, exist_ok=True)
    _clean_stale(base)
    folder = base / f"{source}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    st = StagedSource(out, source, folder)
    try:
        yield st
    except BaseException:
        for w in st.writers.values():
            w._close_writer()
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _clean_stale(base: Path) -> None:
    """Remove staging folders of dead processes (interrupted runs) and leftover trash; a live
    conversion's folder is never touched, however long it runs."""
    for d in base.iterdir():
        pid = _pid_of(d.name)
        if pid is None or not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def _pid_of(name: str) -> Optional[int]:
    parts = name.rsplit("-", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
