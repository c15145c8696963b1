"""Opt-in: convert FULL real downloads and check them against the catalog's expected counts.

Set ``UNIHEMA_REAL_DATA`` to a folder holding ``raw/<id>/`` (e.g. made by ``unihema-data fetch``)
or ``<id>/`` layouts; every implemented source found there is converted into its own output
folder (so cross-source deduplication does not move official splits), validated, and compared
with ``expected_counts`` in ``catalog.yaml`` (images, objects, official split sizes).
Skipped when the variable is unset (CI has no datasets).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from unihema_data.adapters import adapter_ids, get_adapter
from unihema_data.adapters.base import MissingInputError
from unihema_data.catalog import load_catalog
from unihema_data.convert import ConvertOptions, convert
from unihema_data.stats import compute_stats
from unihema_data.validate import validate

REAL = os.environ.get("UNIHEMA_REAL_DATA")
pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not REAL, reason="set UNIHEMA_REAL_DATA to a folder with raw/<id>/ downloads")]


def _raw_dir() -> Path:
    base = Path(REAL or ".")
    return base / "raw" if (base / "raw").is_dir() else base


@pytest.mark.parametrize("sid", adapter_ids())
def test_full_source_matches_catalog(sid, tmp_path):
    adapter = get_adapter(sid)
    try:
        adapter.check(adapter.locate(_raw_dir() / sid if (_raw_dir() / sid).is_dir() else _raw_dir()))
    except MissingInputError as e:
        pytest.skip(f"{sid} not (completely) downloaded under {_raw_dir()}: {e}")
    out = tmp_path / "out"
    report = convert([sid], _raw_dir(), out, ConvertOptions(num_proc=2, progress=False))[0]
    rep = validate(out, num_proc=2)
    assert rep.ok, rep.summary()
    exp = load_catalog().get(sid).expected_counts
    st = compute_stats(out).as_dict()
    if exp.images is not None:
        assert report.total == exp.images
    if exp.objects is not None:
        assert sum(st["objects"].get(sid, {}).values()) == exp.objects
    if exp.splits and report.duplicates == 0:
        assert {k: v for k, v in report.counts.items() if v} == {k: v for k, v in exp.splits.items() if v}
