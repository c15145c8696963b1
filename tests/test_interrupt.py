"""A conversion killed mid-way (SIGKILL) leaves OUT exactly as it was; the next run cleans up and
completes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConvertOptions, convert
from unihema_data.outdir import STAGING, read_manifest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SLOW_CONVERT = textwrap.dedent(
    """
    import sys, time
    import unihema_data.convert as cv
    import unihema_data.rows as rows
    real = rows.build_row
    def slow(sample, ctx):
        time.sleep(0.3)
        return real(sample, ctx)
    cv.build_row = slow
    import unihema_data.outdir as od
    od.ROW_GROUP_ROWS = 1  # flush every row: the staging folder fills up before the kill
    cv.BATCH = 1  # ... row by row (a batch of 8 slow rows reached the writer only at the end: the
                  # staged shards then lived a few hundred ms before the commit and the test could miss them)
    cv.convert(["bccd"], sys.argv[1], sys.argv[2], cv.ConvertOptions(num_proc=1, progress=False, overwrite=True, seed=7))
    """
)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and STAGING.as_posix() not in p.as_posix()}


def test_sigkill_mid_conversion_leaves_out_unchanged(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("bccd").fake(raw / "bccd", seed=3)
    convert(["bccd"], raw, out, ConvertOptions(num_proc=1, progress=False))
    before = _snapshot(out)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CONVERT, str(raw), str(out)],
                            cwd=Path(__file__).resolve().parents[1])
    staging = out / STAGING
    deadline = time.time() + 60
    while time.time() < deadline and not list(staging.glob("bccd-*/*.parquet")):
        time.sleep(0.05)
    assert list(staging.glob("bccd-*/*.parquet")), "the slow conversion never started writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _snapshot(out) == before  # data, card and manifest untouched
    # the next run removes the dead run's staging folder and converts normally
    rep = convert(["bccd"], raw, out, ConvertOptions(num_proc=1, progress=False, overwrite=True))[0]
    assert rep.status == "converted" and rep.total == 8
    assert not any(p.name.startswith("bccd-") for p in staging.iterdir())
    assert read_manifest(out)["sources"]["bccd"]["counts"] == {k: v for k, v in rep.counts.items()}
