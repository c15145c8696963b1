"""Reading a converted corpus (``OUT``): the one reader behind export, preview, publish, cards,
FiftyOne and curation.

Rows are streamed from the Parquet shards one row group at a time (memory flat in corpus size),
in a deterministic order: data folders (source or text-set ids) sorted, splits in
:data:`~unihema_data.schema.SPLITS` order, shards by name, rows in stored order; so "the first N
samples" means the same rows on every run. Rows removed from their split by curation are kept
(same schema, original ``split`` column) in ``OUT/.unihema/excluded/<folder>.parquet`` (see
:mod:`unihema_data.curation`); they are read only when asked for (``include_excluded``), under
the pseudo-split ``excluded``.

Labels: ``label`` and ``objects.category`` are canonical taxonomy labels. Older corpora store them
as strings, newer ones as ``datasets.ClassLabel`` ints over ``load_taxonomy().class_names()``
(index = stable class id). :func:`class_name` and :func:`class_id` accept either form, so every
reader here works with both.

Errors: :class:`CorpusError`, whose message names the folder or shard and the problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union

import pyarrow.parquet as pq

from .outdir import read_manifest, source_files
from .schema import SPLITS, label_id, label_name

#: curation's store of excluded rows, and the pseudo-split its shards are read under
EXCLUDED_DIR = Path(".unihema") / "excluded"
EXCLUDED_SPLIT = "excluded"


class CorpusError(ValueError):
    """``OUT`` is not a converted corpus, a requested source/split is absent, or a shard is
    unreadable (the message says which)."""


#: stored ``label``/``category`` value (name or ClassLabel id) -> name / id (one implementation, in schema.py)
class_name = label_name
class_id = label_id


def label_value_like(previous: Union[str, int, None], name: str) -> Union[str, int]:
    """``name`` stored the way ``previous`` was stored (an id when the column holds ids)."""
    if isinstance(previous, int) and not isinstance(previous, bool):
        return label_id(name)
    return name


@dataclass(frozen=True)
class Shard:
    """One Parquet file of ``OUT``: ``source`` is the ``data/<source>`` folder name (a source or
    text-set id), ``split`` the shard's split (``excluded`` for the curation store)."""

    source: str
    split: str
    path: Path

    @property
    def folder(self) -> str:
        return self.source


# ---------------------------------------------------------------------------- the corpus itself
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


def require_corpus(out: Path) -> Path:
    """``out`` resolved; :class:`CorpusError` when it holds no converted shards."""
    out = Path(out).resolve()
    if not (out / "data").is_dir() or not any((out / "data").glob("*/*.parquet")):
        raise CorpusError(f"{out}: not a converted UniHema folder (no data/<source>/*.parquet); "
                          f"run `unihema-data convert ... --out {out}` first")
    read_manifest(out)
    return out


def data_folders(out: Path) -> list[str]:
    """Folders under ``OUT/data`` (sorted), whether or not the manifest lists them."""
    d = Path(out) / "data"
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d.is_dir() else []


def sources_of(out: Path, only: Optional[Sequence[str]] = None) -> list[str]:
    """Source ids the manifest lists and that have shards (sorted), restricted to ``only`` (each
    must be present)."""
    manifest = check_corpus(out)
    present = sorted(s for s in manifest["sources"] if source_files(out, s))
    if only:
        missing = [s for s in only if s not in present]
        if missing:
            raise CorpusError(f"{out}: source(s) {', '.join(missing)} not in this corpus "
                              f"(present: {', '.join(present) or 'none'})")
        return [s for s in present if s in set(only)]
    return present


def excluded_path(out: Path, folder: str) -> Path:
    return Path(out) / EXCLUDED_DIR / f"{folder}.parquet"


# ---------------------------------------------------------------------------- shards
def corpus_shards(out: Path, sources: Optional[Iterable[str]] = None, splits: Optional[Iterable[str]] = None,
                  include_excluded: bool = True) -> list[Shard]:
    """Shards of ``out`` in reading order, from the data folders on disk. ``sources`` filters
    folders (absent ones are simply not there: callers that need them present use
    :func:`shards`); ``splits`` filters splits (``excluded`` selects the curation store)."""
    out = Path(out)
    want_src = set(sources) if sources else None
    want_split = set(splits) if splits else None
    res: list[Shard] = []
    for folder in data_folders(out):
        if want_src is not None and folder not in want_src:
            continue
        by_split = source_files(out, folder)
        for split in SPLITS:
            if want_split is None or split in want_split:
                res.extend(Shard(folder, split, p) for p in by_split.get(split, []))
        ex = excluded_path(out, folder)
        if include_excluded and ex.exists() and (want_split is None or EXCLUDED_SPLIT in want_split):
            res.append(Shard(folder, EXCLUDED_SPLIT, ex))
    return res


def shards(out: Path, sources: Optional[Sequence[str]] = None, split: Optional[str] = None) -> list[Shard]:
    """Published shards of the manifest's sources (each of ``sources`` must be present; ``split``
    must be a split name), curation's excluded rows left out."""
    if split is not None and split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    return corpus_shards(out, sources_of(out, sources), [split] if split else None, include_excluded=False)


def shard_state(out: Path, shards: list[Shard]) -> dict[str, list[int]]:
    """``relative path -> [size, mtime_ns]``: changes whenever a shard is rewritten."""
    res = {}
    for s in shards:
        st = s.path.stat()
        res[s.path.relative_to(out).as_posix()] = [st.st_size, st.st_mtime_ns]
    return res


# ---------------------------------------------------------------------------- rows
def _parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as e:  # pyarrow raises ArrowInvalid (a ValueError) on damage
        raise CorpusError(f"{path}: unreadable Parquet shard ({type(e).__name__}: {e}); "
                          f"run `unihema-data validate` on the folder") from None


def iter_row_groups(shards: Iterable[Shard], columns: Optional[Sequence[str]] = None
                    ) -> Iterator[tuple[Shard, list[dict]]]:
    """``(shard, rows of one row group)`` for every row group of every shard."""
    for sh in shards:
        pf = _parquet(sh.path)
        try:
            for i in range(pf.num_row_groups):
                yield sh, pf.read_row_group(i, columns=list(columns) if columns else None).to_pylist()
        except (OSError, ValueError) as e:
            raise CorpusError(f"{sh.path}: unreadable Parquet shard ({type(e).__name__}: {e}); "
                              f"run `unihema-data validate` on the folder") from None


def iter_rows(shards: Iterable[Union[Shard, Path]], columns: Optional[Sequence[str]] = None) -> Iterator[dict]:
    """Rows (python dicts) of shards (or plain Parquet paths), one row group in memory at a time."""
    items = (s if isinstance(s, Shard) else Shard("", "", Path(s)) for s in shards)
    for _, rows in iter_row_groups(items, columns):
        yield from rows


def count_rows(shards: Iterable[Union[Shard, Path]]) -> int:
    return sum(_parquet(s.path if isinstance(s, Shard) else Path(s)).metadata.num_rows for s in shards)
