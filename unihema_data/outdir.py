"""The Hub-layout output folder (``OUT``) and its atomic updates.

Layout::

    OUT/README.md                                   dataset card, YAML ``configs`` (one per source + ``all``)
    OUT/data/<source>/<split>-NNNNN-of-NNNNN.parquet
    OUT/.unihema/manifest.json                      per source: fingerprint, counts, kind, schema version
    OUT/.unihema/staging/                           in-progress conversions (never visible as data)

A source is replaced as a whole: its shards are written to a staging folder and swapped in with
renames once complete, so an interrupted or failed run leaves ``OUT`` as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from contextlib import contextmanager
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import ARROW_SCHEMA, SCHEMA_VERSION, SPLITS

MANIFEST = Path(".unihema") / "manifest.json"
STAGING = Path(".unihema") / "staging"

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
    pq.write_table(ARROW_SCHEMA.empty_table(), buf)
    meta = pq.ParquetFile(io.BytesIO(buf.getvalue())).schema
    paths = [meta.column(i).path for i in range(len(meta))]
    return {p: ("NONE" if p in UNCOMPRESSED_COLUMNS else "ZSTD") for p in paths}



class _SplitWriter:
    """Streams rows of one split into size-capped shards with small row groups."""

    def __init__(self, folder: Path, split: str):
        self.folder, self.split = folder, split
        self.shards: list[Path] = []
        self.rows = 0
        self._writer: Optional[pq.ParquetWriter] = None
        self._shard_bytes = 0
        self._buf: list[dict] = []
        self._buf_bytes = 0

    def add(self, row: dict, nbytes: int) -> None:
        self._buf.append(row)
        self._buf_bytes += nbytes
        self.rows += 1
        if len(self._buf) >= ROW_GROUP_ROWS or self._buf_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        if self._writer is None or self._shard_bytes >= SHARD_BYTES:
            self._close_writer()
            path = self.folder / f"{self.split}-{len(self.shards):05d}.tmp.parquet"
            self._writer = pq.ParquetWriter(path, ARROW_SCHEMA, compression=_column_compression())
            self.shards.append(path)
            self._shard_bytes = 0
        table = pa.Table.from_pylist(self._buf, schema=ARROW_SCHEMA)
        self._writer.write_table(table, row_group_size=len(self._buf))
        self._shard_bytes += self._buf_bytes
        self._buf, self._buf_bytes = [], 0

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

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
        return final


@dataclass
class StagedSource:
    """Shards of one source being written; :meth:`commit` swaps them into ``OUT`` atomically."""

    out: Path
    source: str
    folder: Path
    writers: dict[str, _SplitWriter] = field(default_factory=dict)

    def add(self, row: dict) -> None:
        split = row["split"]
        if split not in SPLITS:
            raise ValueError(f"invalid split {split!r} for {row['sample_id']}")
        w = self.writers.get(split)
        if w is None:
            w = self.writers[split] = _SplitWriter(self.folder, split)
        nbytes = len(row["image"]["bytes"]) + (len(row["semantic_mask"]["bytes"]) if row["semantic_mask"] else 0)
        w.add(row, nbytes + 512)

    def counts(self) -> dict[str, int]:
        return {s: w.rows for s, w in self.writers.items()}

    def finish(self) -> None:
        for w in self.writers.values():
            w.close()

    def commit(self) -> None:
        """Replace ``OUT/data/<source>`` with the staged shards: one atomic exchange of the two
        folders where the OS offers it (Linux ``renameat2(RENAME_EXCHANGE)``), else two renames."""
        target = self.out / "data" / self.source
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.replace(self.folder, target)
            return
        if _exchange(self.folder, target):
            shutil.rmtree(self.folder, ignore_errors=True)  # now holds the previous shards
            return
        trash = self.out / STAGING / f"trash-{self.source}-{uuid.uuid4().hex[:8]}"
        os.replace(target, trash)
        os.replace(self.folder, target)
        shutil.rmtree(trash, ignore_errors=True)


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
