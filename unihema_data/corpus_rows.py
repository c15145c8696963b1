"""Reading rows of a converted folder (``OUT``) for browsing and curation.

Rows are read shard by shard, row group by row group (memory flat in corpus size), in a fixed
order (data folders sorted, then splits in :data:`~unihema_data.schema.SPLITS` order, then shard
names), so "the first N samples" means the same rows on every run.

Class labels may be stored as canonical names (schema 1.x strings) or as stable taxonomy ids
(``datasets.ClassLabel`` ints over ``Taxonomy.class_names()``); :func:`label_name` accepts both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import pyarrow.parquet as pq

from .outdir import read_manifest, source_files
from .schema import SPLITS, label_name  # noqa: F401 - label_name is part of this module's API
from .taxonomy import load_taxonomy

#: rows removed from their split by curation, kept (same schema, original ``split`` column)
#: in ``OUT/.unihema/excluded/<data folder>.parquet``; see :mod:`unihema_data.curation`
EXCLUDED_DIR = Path(".unihema") / "excluded"
EXCLUDED_SPLIT = "excluded"


def label_value_like(previous: Union[str, int, None], name: str) -> Union[str, int]:
    """``name`` stored the way ``previous`` was stored (an id when the column holds ids)."""
    if isinstance(previous, int) and not isinstance(previous, bool):
        return load_taxonomy().class_id(name)
    return name


@dataclass(frozen=True)
class Shard:
    """One Parquet file of ``OUT``: ``folder`` is the ``data/<folder>`` name, ``split`` the shard's
    split (``excluded`` for the curation store)."""

    path: Path
    folder: str
    split: str


def data_folders(out: Path) -> list[str]:
    d = Path(out) / "data"
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d.is_dir() else []


def excluded_path(out: Path, folder: str) -> Path:
    return Path(out) / EXCLUDED_DIR / f"{folder}.parquet"


def corpus_shards(out: Path, sources: Optional[Iterable[str]] = None, splits: Optional[Iterable[str]] = None,
                  include_excluded: bool = True) -> list[Shard]:
    """Shards of ``out`` in reading order. ``sources`` filters data folders (source or text-set
    ids); ``splits`` filters splits (``excluded`` selects the curation store)."""
    out = Path(out)
    want_src = set(sources) if sources else None
    want_split = set(splits) if splits else None
    shards: list[Shard] = []
    for folder in data_folders(out):
        if want_src is not None and folder not in want_src:
            continue
        by_split = source_files(out, folder)
        for split in SPLITS:
            if want_split is not None and split not in want_split:
                continue
            shards.extend(Shard(p, folder, split) for p in by_split.get(split, []))
        ex = excluded_path(out, folder)
        if include_excluded and ex.exists() and (want_split is None or EXCLUDED_SPLIT in want_split):
            shards.append(Shard(ex, folder, EXCLUDED_SPLIT))
    return shards


def shard_state(out: Path, shards: list[Shard]) -> dict[str, list[int]]:
    """``relative path -> [size, mtime_ns]``: changes whenever a shard is rewritten."""
    res = {}
    for s in shards:
        st = s.path.stat()
        res[s.path.relative_to(out).as_posix()] = [st.st_size, st.st_mtime_ns]
    return res


def iter_rows(shards: list[Shard], columns: Optional[list[str]] = None) -> Iterator[tuple[Shard, list[dict]]]:
    """``(shard, rows of one row group)`` for every row group of every shard."""
    for sh in shards:
        try:
            pf = pq.ParquetFile(sh.path)
            for i in range(pf.num_row_groups):
                yield sh, pf.read_row_group(i, columns=columns).to_pylist()
        except (OSError, ValueError) as e:  # pyarrow raises ArrowInvalid (a ValueError) on damage
            raise CorpusReadError(f"{sh.path}: unreadable Parquet shard ({type(e).__name__}: {e}); "
                                  f"run `unihema-data validate` on the folder") from None


def count_rows(shards: list[Shard]) -> int:
    return sum(pq.ParquetFile(s.path).metadata.num_rows for s in shards)


def require_corpus(out: Path) -> Path:
    """``out`` resolved; :class:`CorpusReadError` when it is not a converted folder."""
    out = Path(out).resolve()
    if not (out / "data").is_dir() or not any((out / "data").glob("*/*.parquet")):
        raise CorpusReadError(f"{out}: not a converted UniHema folder (no data/<source>/*.parquet); "
                              f"run `unihema-data convert ... --out {out}` first")
    read_manifest(out)
    return out


class CorpusReadError(Exception):
    """``OUT`` cannot be read; the message names the file and the problem."""
