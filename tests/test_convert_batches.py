"""Rows travel from the workers as Arrow record batches; the output does not depend on how.

* ``StagedSource.add_batch`` (batches with mixed splits, row groups closed by the row count or the
  byte cap in the middle of a batch) writes the same shards, row groups and rows as ``add`` of the
  same rows one by one (the path the resolution pass still uses);
* ``convert`` with ``num_proc=1`` (batches built in-process) and ``num_proc=2`` (batches in spool
  files, as IPC bytes through the pool's pipe, or both when the spool fills) write identical
  tables, and the spool folder goes with the map however it ends;
* the vectorised box keys of the resolution pass equal the per-row ones.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from unihema_data import outdir
from unihema_data.adapters import get_adapter
from unihema_data import convert as convert_mod
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.integrity import _box_key, _box_keys
from unihema_data.outdir import StagedSource, batch_from_bytes, batch_to_bytes, row_nbytes, rows_to_batch
from unihema_data.rows import SourceContext
from unihema_data.schema import ARROW_SCHEMA, empty_row


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        r = empty_row()
        size = int(rng.integers(10, 3000))
        r.update(sample_id=f"s/{i:04d}.jpg", source="s", split=str(rng.choice(["train", "validation", "test"])),
                 image={"bytes": rng.bytes(size), "path": f"{i}.jpg"}, width=1, height=1,
                 qc_flags=[f"flag_{i % 3}:x"] if i % 4 == 0 else [])
        rows.append(r)
    return rows


def _read(folder) -> dict:
    out = {}
    for f in sorted(folder.glob("*.parquet")):
        pf = pq.ParquetFile(f)
        out[f.name] = ([pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)], pf.read(), pf.schema_arrow)
    return out


@pytest.mark.parametrize("group_bytes", [10**9, 9_000])
def test_add_batch_writes_what_add_writes(tmp_path, monkeypatch, group_bytes):
    monkeypatch.setattr(outdir, "ROW_GROUP_ROWS", 7)
    monkeypatch.setattr(outdir, "ROW_GROUP_BYTES", group_bytes)  # 9000: groups close mid-batch by size
    rows = _rows(60)
    a = StagedSource(tmp_path, "s", tmp_path / "a")
    b = StagedSource(tmp_path, "s", tmp_path / "b")
    a.folder.mkdir()
    b.folder.mkdir()
    for r in rows:
        a.add(r)
    for k in range(0, len(rows), 8):
        chunk = rows[k:k + 8]
        batch = batch_from_bytes(batch_to_bytes(rows_to_batch(chunk)))  # as it crosses the pipe
        b.add_batch(batch, [r["split"] for r in chunk], [row_nbytes(r) for r in chunk], [r["sample_id"] for r in chunk])
    a.finish()
    b.finish()
    assert a.counts() == b.counts()
    ra, rb = _read(a.folder), _read(b.folder)
    assert ra.keys() == rb.keys() and len(ra) == 3
    for name in ra:
        assert ra[name][0] == rb[name][0], name  # same row groups
        assert ra[name][1].equals(rb[name][1]), name
        assert ra[name][2].equals(rb[name][2], check_metadata=True), name
    if group_bytes == 9_000:
        assert any(g < 7 for groups, *_ in ra.values() for g in groups[:-1])  # the byte cap did close groups


def test_mixed_dict_and_batch_rows_keep_order(tmp_path):
    rows = [dict(r, split="train") for r in _rows(20, seed=1)]
    st = StagedSource(tmp_path, "s", tmp_path / "m")
    st.folder.mkdir()
    for r in rows[:5]:
        st.add(r)
    st.add_batch(rows_to_batch(rows[5:13]), ["train"] * 8, [row_nbytes(r) for r in rows[5:13]],
                 [r["sample_id"] for r in rows[5:13]])
    for r in rows[13:]:
        st.add(r)
    st.finish()
    t = pq.read_table(next(st.folder.glob("train-*.parquet")))
    assert t.column("sample_id").to_pylist() == [r["sample_id"] for r in rows]


def _spool_every_other(real):
    """``batch_to_spool`` of a spool that is full for every second batch (the worker then sends
    that batch through the pipe)."""
    calls = iter(range(10**6))

    def spool(batch, path):
        return real(batch, path) if next(calls) % 2 == 0 else False

    return spool


@pytest.mark.parametrize("crossing", ["spool", "pipe", "spool_half_full"])
def test_one_and_two_processes_write_identical_tables(tmp_path, monkeypatch, crossing):
    """Whichever way the workers' batches cross (spool files, the pool's pipe, or both when the
    spool fills), two processes write what one writes, and no spool file or folder is left."""
    parent = tmp_path / "shm"
    parent.mkdir()
    monkeypatch.setattr(convert_mod, "SPOOL_PARENTS", () if crossing == "pipe" else (str(parent),))
    if crossing == "spool_half_full":
        monkeypatch.setattr(outdir, "batch_to_spool", _spool_every_other(outdir.batch_to_spool))
    monkeypatch.setattr(convert_mod, "BATCH", 2)  # 4 batches of the 8 fake images
    seen: list = []
    real_arrow = convert_mod.RowBatch.arrow
    monkeypatch.setattr(convert_mod.RowBatch, "arrow", lambda self: seen.append(type(self.payload).__name__) or real_arrow(self))
    get_adapter("bccd").fake(tmp_path / "raw" / "bccd", seed=4)
    outs = {}
    for k in (1, 2):
        out = tmp_path / f"out{k}"
        convert(["bccd"], tmp_path / "raw", out, ConvertOptions(num_proc=k, progress=False))
        outs[k] = _read(out / "data" / "bccd")
    assert outs[1].keys() == outs[2].keys() and outs[1]
    for name in outs[1]:
        assert outs[1][name][0] == outs[2][name][0]
        assert outs[1][name][1].equals(outs[2][name][1])
        assert outs[1][name][2].equals(outs[2][name][2], check_metadata=True)
        assert outs[1][name][2].metadata[b"huggingface"] == ARROW_SCHEMA.metadata[b"huggingface"]
    crossed = set(seen) - {"RecordBatch"}  # num_proc=1: batches built in this process
    assert crossed == {"spool": {"Spooled"}, "pipe": {"bytes"}, "spool_half_full": {"Spooled", "bytes"}}[crossing]
    assert list(parent.iterdir()) == []  # the spool folder went with the map


def test_spool_is_removed_when_a_worker_fails(tmp_path, monkeypatch):
    parent = tmp_path / "shm"
    parent.mkdir()
    monkeypatch.setattr(convert_mod, "SPOOL_PARENTS", (str(parent),))
    monkeypatch.setattr(convert_mod, "BATCH", 2)
    raw = tmp_path / "raw" / "bccd"
    get_adapter("bccd").fake(raw, seed=4)
    images = sorted(raw.rglob("*.jpg"))
    images[-1].write_bytes(images[-1].read_bytes()[:200])  # truncated JPEG
    with pytest.raises(ConversionError, match=images[-1].name):
        convert(["bccd"], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=2, progress=False))
    assert list(parent.iterdir()) == []
    assert not (tmp_path / "out" / "data" / "bccd").exists()


def test_spool_is_removed_with_the_batches_nobody_read(tmp_path, monkeypatch):
    """The consumer stops (an error in the main process) while finished batches wait in the
    spool: closing the map removes them with the folder."""
    parent = tmp_path / "shm"
    parent.mkdir()
    monkeypatch.setattr(convert_mod, "SPOOL_PARENTS", (str(parent),))
    monkeypatch.setattr(convert_mod, "BATCH", 2)
    adapter = get_adapter("bccd")
    adapter.fake(tmp_path / "raw" / "bccd", seed=4)
    root = adapter.locate(tmp_path / "raw")
    ctx = SourceContext(source="bccd", license="MIT", granularity="field_of_view", disease="normal",
                        box_format=adapter.box_format.value)
    batches = convert_mod._map_batches(adapter.records(root), ctx, 2, adapter)
    assert next(batches).arrow().num_rows == 2
    (spool,) = parent.iterdir()
    deadline = time.monotonic() + 30
    while not any(spool.glob("*.arrow")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(spool.glob("*.arrow"))  # three more batches were submitted; some are done, unread
    batches.close()
    assert list(parent.iterdir()) == []


def test_batch_to_spool_leaves_nothing_when_it_cannot_write(tmp_path):
    batch = rows_to_batch(_rows(5))
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"")
    assert outdir.batch_to_spool(batch, str(blocker / "0.arrow")) is False
    path = tmp_path / "1.arrow"
    assert outdir.batch_to_spool(batch, str(path)) is True
    assert outdir.batch_to_spool(batch, str(path)) is False  # never overwrites
    back = outdir.batch_from_spool(str(path))
    assert not path.exists()  # removed once read; the mapping keeps the batch readable
    assert back.equals(batch)


def test_spool_folders_of_killed_conversions_are_swept(tmp_path, monkeypatch):
    """A conversion killed outright leaves its spool folder in shared memory; the next one removes
    it, and leaves alone the folders of live processes, recently touched ones and anything that
    is not a spool."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a pid that has exited
    dead = tmp_path / f"unihema-spool-{gone}-abc123"
    (dead / "x").mkdir(parents=True)
    (dead / "x" / "1-0.arrow").write_bytes(b"stale")
    recent = tmp_path / f"unihema-spool-{gone}-ghi789"  # its process gone, but touched a minute ago
    recent.mkdir()
    old = time.time() - convert_mod.SPOOL_STALE_S - 60
    os.utime(dead, (old, old))
    os.utime(recent, (time.time() - 60,) * 2)
    live = tmp_path / f"unihema-spool-{os.getppid()}-def456"
    live.mkdir()
    os.utime(live, (old, old))
    other = tmp_path / "unihema-spool-notapid"
    other.mkdir()
    os.utime(other, (old, old))
    monkeypatch.setattr(convert_mod, "SPOOL_PARENTS", (str(tmp_path),))
    mine = convert_mod._spool_dir()
    assert not dead.exists()
    assert live.exists() and other.exists() and recent.exists()
    assert os.path.basename(mine).startswith(f"unihema-spool-{os.getpid()}-")


def test_spool_dir_is_private_and_optional(tmp_path, monkeypatch):
    monkeypatch.setattr(convert_mod, "SPOOL_PARENTS", (str(tmp_path / "missing"), str(tmp_path)))
    spool = convert_mod._spool_dir()
    assert os.path.dirname(spool) == str(tmp_path) and os.stat(spool).st_mode & 0o777 == 0o700
    monkeypatch.setattr(convert_mod, "SPOOL_PARENTS", (str(tmp_path / "missing"),))
    assert convert_mod._spool_dir() is None  # no shared memory: batches go through the pipe


def test_vectorised_box_keys_equal_per_row_keys():
    rng = np.random.default_rng(0)
    typ = ARROW_SCHEMA.field("objects").type
    rows = []
    for _ in range(300):
        k = int(rng.integers(0, 5))
        rows.append({"bbox": [[float(np.float32(rng.choice([0.25, 0.75, 1.25, 2.5, 1e6 + 0.25]) + rng.integers(0, 4) * 0.5))
                               for _ in range(4)] for _ in range(k)],
                     "category": [int(rng.integers(0, 50)) for _ in range(k)], "source_category": [""] * k,
                     "bbox_source": [""] * k, "mask_rle": [""] * k, "attributes": [[] for _ in range(k)],
                     "point": [[] for _ in range(k)]})
    arr = pa.array(rows, type=typ)
    expect = [_box_key(r["category"], r["bbox"]) for r in rows]
    assert _box_keys(arr) == expect
    assert _box_keys(arr.slice(11, 100)) == expect[11:111]  # offsets of a slice
