"""The Python API: what each ``unihema-data`` command does, as functions.

Importable from the package root (lazily, so ``import unihema_data`` stays fast)::

    from unihema_data import convert, validate, stats, fake, generate, list_sources, info

    fake("bccd", "work/raw/bccd")                                       # synthetic native copy
    reports = convert(["bccd"], raw_dir="work/raw", out="corpus", num_proc=2)
    for r in reports:
        print(r.source, r.status, r.counts, r.duplicates, r.flags)
    rep = validate("corpus")            # ValidationReport: .ok, .rows, .files, .problems, .as_dict()
    assert rep.ok, rep.summary()
    counts = stats("corpus")            # nested dict, the same as `unihema-data stats --json`

``unihema_data.convert``, ``unihema_data.validate`` and ``unihema_data.stats`` are also the names
of submodules; those modules are callable and forward to the functions below, so both
``from unihema_data import convert; convert([...], ...)`` and ``import unihema_data.convert as cv;
cv.ConvertOptions`` work.

Conventions: paths are ``str`` or :class:`pathlib.Path`; errors are exceptions whose message names
the file and the problem (:class:`~unihema_data.convert.ConversionError`,
:class:`~unihema_data.catalog.CatalogError`, ``KeyError`` for an unknown id,
:class:`~unihema_data.textsets.writer.TextsetError`, :class:`~unihema_data.fetch.FetchError`);
nothing is printed unless a ``log`` / ``on_progress`` callable is passed.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .catalog import DatasetEntry
    from .convert import SourceReport
    from .validate import ValidationReport


def convert(
    ids: Iterable[str] | str,
    raw_dir: Path | str,
    out: Path | str,
    *,
    num_proc: Optional[int] = None,
    max_samples: Optional[int] = None,
    overwrite: bool = False,
    seed: int = 0,
    allow_partial: bool = False,
    on_progress: Optional[Callable[[str, int], None]] = None,
) -> "list[SourceReport]":
    """Convert sources (catalog ids) found under ``raw_dir`` into the Hub-layout folder ``out``.

    Atomic per source; a rerun on unchanged inputs is a no-op (status ``up_to_date``).
    ``num_proc`` defaults to :func:`~unihema_data.convert.default_num_proc`. ``allow_partial``
    converts what is present when images referenced by the annotations are missing (reported in
    ``SourceReport.missing``); by default a missing image fails the conversion.
    Raises :class:`~unihema_data.convert.ConversionError`."""
    from .convert import ConvertOptions, convert as _convert, default_num_proc

    if isinstance(ids, str):
        ids = [ids]
    opts = ConvertOptions(num_proc=num_proc or default_num_proc(), max_samples=max_samples, overwrite=overwrite,
                          seed=seed, allow_partial=allow_partial)
    return _convert(list(ids), raw_dir, out, opts, on_progress)


def validate(out: Path | str, *, num_proc: int = 1,
             on_progress: Optional[Callable[[int, int], None]] = None) -> "ValidationReport":
    """Re-check every row of ``out`` (see :mod:`unihema_data.validate`). A folder that does not
    exist or holds no Parquet shard raises ``FileNotFoundError`` naming it."""
    from .outdir import all_parquet_files
    from .validate import validate as _validate

    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: no such folder (expected a converted UniHema output folder)")
    if not all_parquet_files(out):
        raise FileNotFoundError(f"{out}: no Parquet shards under {out / 'data'} (is it a converted UniHema folder?)")
    return _validate(out, num_proc=num_proc, on_progress=on_progress)


def stats(out: Path | str) -> dict[str, dict[str, dict[str, int]]]:
    """Counts of a converted folder: ``{"images"|"tasks"|"labels"|"objects"|"flags": {source: {key: n}}}``
    (``images`` is keyed by split, ``flags`` by flag kind). Raises ``FileNotFoundError`` when ``out``
    is not a converted folder."""
    from .outdir import all_parquet_files
    from .stats import compute_stats

    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: no such folder (expected a converted UniHema output folder)")
    if not all_parquet_files(out):
        raise FileNotFoundError(f"{out}: no Parquet shards under {out / 'data'} (is it a converted UniHema folder?)")
    return compute_stats(out).as_dict()


def fake(dataset_id: str, out: Path | str, *, seed: int = 0):
    """Write a small synthetic copy of a source's native layout under ``out``; returns the
    adapter's :class:`~unihema_data.adapters.base.FakeTruth` (root + per-sample ground truth)."""
    from .adapters import get_adapter

    return get_adapter(resolve_id(dataset_id)).fake(Path(out), seed=seed)


def generate(textset: str, out: Path | str, **options: Any):
    """Build a text set (``vqa``, ``caption``, ``mlm`` or a config name such as ``wbcatt_vqa``)
    into ``out`` from its converted parent; ``options`` are
    :class:`~unihema_data.textsets.writer.GenerateOptions` fields (``seed``, ``pairs_per_image``...).
    Returns the :class:`~unihema_data.textsets.writer.GenerationReport`."""
    from .textsets.writer import TEXTSETS, GenerateOptions, generate as _generate

    if textset not in TEXTSETS:
        matches = [k for k in TEXTSETS if k.rsplit("_", 1)[-1] == textset]
        if len(matches) == 1:
            textset = matches[0]
    return _generate(textset, Path(out), GenerateOptions(**options))


def list_sources(task: Optional[str] = None, extra_catalogs: Iterable[Path | str] = ()) -> "list[DatasetEntry]":
    """Catalog entries (optionally only those with ``task``; an unknown task raises ``ValueError``
    naming the valid ones)."""
    from .catalog import TASKS, load_catalog

    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    return load_catalog(list(extra_catalogs)).filter(task)


def info(dataset_id: str) -> "DatasetEntry":
    """One catalog entry; ids are matched case-insensitively (``BCCD`` = ``bccd``)."""
    from .catalog import load_catalog

    return load_catalog().get(resolve_id(dataset_id))


def resolve_id(dataset_id: str, known: Optional[Iterable[str]] = None) -> str:
    """The catalog id matching ``dataset_id`` case-insensitively (``-`` read as ``_``); the input
    unchanged when nothing matches (the caller's lookup then fails with the list of known ids)."""
    if known is None:
        from .catalog import load_catalog

        known = load_catalog().ids()
    known = list(known)
    if dataset_id in known:
        return dataset_id
    want = dataset_id.strip().lower().replace("-", "_")
    for k in known:
        if k.lower() == want:
            return k
    return dataset_id


def fetch_sources(ids: Iterable[str], root: Path | str, *, dry_run: bool = False,
                  log: Callable[[str], None] = lambda _m: None, **kw: Any):
    """Download, verify and extract sources into ``root/raw/<id>/`` (see :mod:`unihema_data.fetch`);
    returns the list of per-source results. ``kw`` goes to :class:`~unihema_data.fetch.Fetcher`."""
    from .catalog import load_catalog
    from .fetch import Fetcher

    cat = load_catalog()
    return Fetcher(cat, Path(root), log=log, **kw).fetch([resolve_id(i, cat.ids()) for i in ids], dry_run=dry_run)


class _CallableModule(types.ModuleType):
    """A module that can be called like its main function (see :func:`make_callable`)."""

    __api_function__: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__api_function__(*args, **kwargs)


def make_callable(module_name: str, function: Callable[..., Any]) -> None:
    """Make the module ``module_name`` callable as ``function``: ``unihema_data.convert`` is both a
    submodule and the API verb, and Python binds the submodule to the package attribute on import."""
    mod = sys.modules[module_name]
    mod.__class__ = _CallableModule
    mod.__api_function__ = function  # type: ignore[attr-defined]
