"""Reading a converted corpus (``OUT``) row by row, for exporters, previews and cards.

Rows are streamed from the Parquet shards one row group at a time (memory flat in corpus size),
in a deterministic order: sources sorted by id, splits in :data:`~unihema_data.schema.SPLITS`
order, shards by name, rows in stored order.

Labels: ``label`` and ``objects.category`` are canonical taxonomy labels. Older corpora store them
as strings, newer ones as ``datasets.ClassLabel`` ints over
``load_taxonomy().class_names()`` (index = stable class id). :func:`class_name` and
:func:`class_id` accept either form, so every reader here works with both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .outdir import read_manifest, source_files
from .schema import SPLITS, label_id, label_name


class CorpusError(ValueError):
    """``OUT`` is not a converted corpus, or a requested source/split is absent (message says which)."""


#: stored ``label``/``category`` value (name or ClassLabel id) -> name / id (one implementation, in schema.py)
class_name = label_name
class_id = label_id


@dataclass(frozen=True)
class Shard:
    source: str
    split: str
    path: Path


def check_corpus(out: Path) -> dict:
    """The manifest of ``OUT``; :class:`CorpusError` when ``OUT`` is no converted corpus."""
    out = Path(out)
    if not out.is_dir():
        raise CorpusError(f"{out}: no such folder")
    manifest = read_manifest(out)
    if not manifest["sources"]:
        raise CorpusError(f"{out}: not a converted corpus (no .unihema/manifest.json with sources); "
                          "run `unihema-data convert` first")
    return manifest


def sources_of(out: Path, only: Optional[Sequence[str]] = None) -> list[str]:
    """Source ids present in ``OUT`` (sorted), restricted to ``only`` (each must be present)."""
    manifest = check_corpus(out)
    present = sorted(s for s in manifest["sources"] if source_files(out, s))
    if only:
        missing = [s for s in only if s not in present]
        if missing:
            raise CorpusError(f"{out}: source(s) {', '.join(missing)} not in this corpus "
                              f"(present: {', '.join(present) or 'none'})")
        return [s for s in present if s in set(only)]
    return present


def shards(out: Path, sources: Optional[Sequence[str]] = None, split: Optional[str] = None) -> list[Shard]:
    if split is not None and split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    res = []
    for s in sources_of(out, sources):
        for sp, files in source_files(out, s).items():
            if split is None or sp == split:
                res.extend(Shard(s, sp, f) for f in files)
    return res


def iter_rows(paths: Iterable[Path], columns: Optional[Sequence[str]] = None) -> Iterator[dict]:
    """Rows (python dicts) of Parquet shards, one row group in memory at a time."""
    for p in paths:
        try:
            f = pq.ParquetFile(p)
            for i in range(f.num_row_groups):
                yield from f.read_row_group(i, columns=list(columns) if columns else None).to_pylist()
        except (OSError, pa.ArrowException) as e:  # damaged or truncated shard
            raise CorpusError(f"{p}: unreadable Parquet shard ({e}); run `unihema-data validate`") from None


def count_rows(paths: Iterable[Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
