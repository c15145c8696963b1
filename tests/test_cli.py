"""The ``unihema-data`` command line: list/info, fake, convert, validate, stats, demo."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from unihema_data.adapters import adapter_ids
from unihema_data.cli import app
from unihema_data.outdir import all_parquet_files

runner = CliRunner(env={"COLUMNS": "200"})


def test_list_and_info():
    r = runner.invoke(app, ["list", "--json"])
    assert r.exit_code == 0, r.output
    entries = json.loads(r.output)
    assert len(entries) >= 46
    det = json.loads(runner.invoke(app, ["list", "--task", "detection", "--json"]).output)
    assert det and all("detection" in e["tasks"] for e in det)
    r = runner.invoke(app, ["info", "bccd", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["id"] == "bccd"
    r = runner.invoke(app, ["info", "no_such_dataset"])
    assert r.exit_code == 2 and "unknown dataset id" in r.output


def test_fake_convert_validate_stats(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    r = runner.invoke(app, ["fake", "bccd", "--out", str(raw / "bccd")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["convert", "bccd", "--raw-dir", str(raw), "--out", str(out), "--num-proc", "1"])
    assert r.exit_code == 0, r.output
    assert (out / "README.md").exists() and all_parquet_files(out)
    r = runner.invoke(app, ["validate", str(out)])
    assert r.exit_code == 0 and "OK" in r.output
    r = runner.invoke(app, ["stats", str(out), "--json"])
    st = json.loads(r.output)
    assert sum(st["images"]["bccd"].values()) == 8
    assert st["objects"]["bccd"]["wbc"] == 8
    # rerun: up to date
    r = runner.invoke(app, ["convert", "bccd", "--raw-dir", str(raw), "--out", str(out), "--num-proc", "1"])
    assert r.exit_code == 0 and "up_to_date" in r.output


def test_convert_errors_are_clear(tmp_path):
    r = runner.invoke(app, ["convert", "bccd", "--raw-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "native layout not found" in r.output and "bccd" in r.output
    r = runner.invoke(app, ["convert", "not_a_source", "--raw-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "no adapter" in r.output


def test_validate_detects_damage(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    runner.invoke(app, ["fake", "bccd", "--out", str(raw / "bccd")])
    runner.invoke(app, ["convert", "bccd", "--raw-dir", str(raw), "--out", str(out), "--num-proc", "1"])
    f = all_parquet_files(out)[0]
    t = pq.read_table(f)
    rows = t.to_pylist()
    rows[0]["objects"]["bbox"][0] = [5000.0, 1.0, 3.0, 3.0]
    rows[0]["label"] = 10_000  # no such class id
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), f)
    r = runner.invoke(app, ["validate", str(out)])
    assert r.exit_code == 1
    assert "outside" in r.output and "label id 10000" in r.output and rows[0]["sample_id"] in r.output


def test_demo(tmp_path):
    r = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--num-proc", "1"])
    assert r.exit_code == 0, r.output
    for sid in adapter_ids():
        assert sid in r.output
    assert "OK" in r.output


def test_convert_all_found_sources(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    for sid in ("bccd", "zheng2018_wbc"):
        runner.invoke(app, ["fake", sid, "--out", str(raw / sid)])
    (raw / "txl_pbc").mkdir()  # an empty folder is not a source
    r = runner.invoke(app, ["convert", "--all", "--raw-dir", str(raw), "--out", str(out), "--num-proc", "1"])
    assert r.exit_code == 0, r.output
    assert "found: bccd, zheng2018_wbc" in r.output
    r = runner.invoke(app, ["convert", "--raw-dir", str(raw), "--out", str(out)])
    assert r.exit_code == 2
