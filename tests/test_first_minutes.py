"""Issue 19, "first ten minutes": package data, start-up imports, the Python API and the CLI's rough
edges (--version, narrow tables, missing folders, task names, case-insensitive ids, --json, rerun
report, --allow-partial)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unihema_data.cli import app

REPO = Path(__file__).resolve().parents[1]
wide = CliRunner(env={"COLUMNS": "200"})
narrow = CliRunner(env={"COLUMNS": "80"})


def _run_py(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          cwd=REPO).stdout


# ---------------------------------------------------------------- package data and start-up
def test_catalog_and_taxonomy_are_package_data():
    import unihema_data
    from unihema_data.catalog import CATALOG_PATH
    from unihema_data.taxonomy import DEFAULT_PATH

    pkg = Path(unihema_data.__file__).resolve().parent
    assert CATALOG_PATH.parent == pkg and CATALOG_PATH.is_file()
    assert DEFAULT_PATH.parent == pkg and DEFAULT_PATH.is_file()
    assert not (REPO / "catalog.yaml").exists(), "catalog.yaml moved into unihema_data/"
    text = (REPO / "pyproject.toml").read_text()
    assert 'unihema_data = ["*.yaml"]' in text and 'unihema_model = ["recipes/*.yaml"]' in text


def test_recipes_by_name_and_by_path(tmp_path):
    from unihema_model.recipe_files import recipe_names, resolve_recipe

    assert "tiny" in recipe_names()
    by_name = resolve_recipe("tiny")
    assert by_name == resolve_recipe("tiny.yaml") and by_name.parent.name == "recipes"
    assert by_name.parent.parent.name == "unihema_model"
    own = tmp_path / "mine.yaml"
    own.write_text("train: {steps: 1}\n")
    assert resolve_recipe(str(own)) == own
    with pytest.raises(FileNotFoundError, match=r"recipe 'nope'.*packaged: .*tiny"):
        resolve_recipe("nope")
    with pytest.raises(FileNotFoundError, match="recipes/tiny.yaml"):
        resolve_recipe("recipes/tiny.yaml")  # the old repository path is not silently reinterpreted


def test_import_is_light_and_api_is_lazy():
    out = _run_py(
        "import sys, unihema_data, unihema_data.cli\n"
        "heavy = [m for m in ('datasets', 'pyarrow', 'pandas', 'torch', 'transformers', 'fiftyone', 'pydantic',"
        " 'numpy', 'PIL') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    assert out.strip() == "[]", f"imported at start-up: {out}"


def test_schema_import_does_not_import_datasets_until_used():
    out = _run_py(
        "import sys\n"
        "from unihema_data import schema\n"
        "print('datasets' in sys.modules)\n"
        "from unihema_data.schema import ARROW_SCHEMA, FEATURES, COLUMNS, OBJECT_FIELDS, empty_row\n"
        "print('datasets' in sys.modules, len(COLUMNS) == len(ARROW_SCHEMA.names), OBJECT_FIELDS[0],"
        " sorted(empty_row()) == sorted(COLUMNS), ARROW_SCHEMA.metadata[b'unihema_schema_version'].decode())\n"
    )
    from unihema_data.schema import SCHEMA_VERSION

    assert out.split("\n")[:2] == ["False", f"True True bbox True {SCHEMA_VERSION}"]


def test_convert_and_validate_do_not_import_datasets(tmp_path):
    """``datasets`` takes ~1 s to import: a conversion (card and Croissant file included) and
    ``validate`` work from the schema's own pyarrow form and never import it."""
    from unihema_data.adapters import get_adapter

    get_adapter("bccd").fake(tmp_path / "raw" / "bccd", seed=1)
    out = _run_py(
        "import sys\n"
        "from unihema_data.convert import ConvertOptions, convert\n"
        "from unihema_data.validate import validate\n"
        f"convert(['bccd'], {str(tmp_path / 'raw')!r}, {str(tmp_path / 'out')!r}, ConvertOptions(num_proc=2, progress=False))\n"
        f"rep = validate({str(tmp_path / 'out')!r})\n"
        "print(rep.problems == [], 'datasets' in sys.modules)\n"
    )
    assert out.strip().split("\n")[-1] == "True False", out
    assert (tmp_path / "out" / "README.md").exists() and (tmp_path / "out" / "croissant.json").exists()


def test_yaml_uses_the_c_loader_when_available():
    import yaml

    from unihema_data import _yaml

    assert _yaml.HAVE_LIBYAML == hasattr(yaml, "CSafeLoader")
    assert _yaml.safe_load("a: [1, 2]\nb: x\n") == {"a": [1, 2], "b": "x"}
    with pytest.raises(_yaml.YAMLError):
        _yaml.safe_load("a: [1, 2\n")
    with pytest.raises(_yaml.YAMLError):  # a safe loader: no Python object tags
        _yaml.safe_load("!!python/object/apply:os.system ['true']")


def test_python_api_round_trip(tmp_path):
    from unihema_data import convert, fake, info, list_sources, stats, validate

    truth = fake("BCCD", tmp_path / "raw" / "bccd")
    assert truth.num_images == 8
    reports = convert(["bccd"], raw_dir=tmp_path / "raw", out=tmp_path / "out", num_proc=1)
    assert reports[0].status == "converted" and reports[0].total == 8
    rep = validate(tmp_path / "out")
    assert rep.ok and rep.rows == 8
    st = stats(tmp_path / "out")
    assert sum(st["images"]["bccd"].values()) == 8 and st["objects"]["bccd"]["wbc"] == 8
    assert info("BCCD").id == "bccd"
    assert {e.id for e in list_sources("detection")} >= {"bccd", "txl_pbc"}
    with pytest.raises(ValueError, match="valid tasks: detection"):
        list_sources("detect")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        validate(tmp_path / "nope")
    # the API verbs are also the submodules (callable), so both import styles work
    import unihema_data.convert as cv

    assert cv is convert and cv.ConvertOptions(num_proc=1).num_proc == 1


# ---------------------------------------------------------------- CLI rough edges
def test_version():
    from unihema_data import __version__

    r = wide.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"unihema-data {__version__}"


def test_list_at_80_columns_never_breaks_ids():
    from unihema_data.catalog import load_catalog

    r = narrow.invoke(app, ["list"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    firsts = [line.split()[0] for line in lines if line.strip() and line.startswith(" ") and len(line.split()) > 1]
    ids = load_catalog().ids()
    for i in ids:  # every id on a line of its own, whole
        assert i in firsts, f"{i} missing or broken at 80 columns"
    # tasks and adapter columns are kept (rich hides columns it cannot fit)
    header = next(line for line in lines if line.split()[:1] == ["id"])
    assert header.split() == ["id", "tasks", "adapter", "name"]


def test_list_unknown_task_names_the_valid_ones():
    r = wide.invoke(app, ["list", "--task", "detect"])
    assert r.exit_code == 2
    assert "unknown task 'detect'" in r.output and "detection" in r.output and "segmentation" in r.output


def test_info_and_fake_ids_are_case_insensitive(tmp_path):
    r = wide.invoke(app, ["info", "BCCD", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["id"] == "bccd"
    r = wide.invoke(app, ["info", "Txl-PBC", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["id"] == "txl_pbc"
    r = wide.invoke(app, ["fake", "BCCD", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0 and "of bccd under" in r.output


@pytest.mark.parametrize("cmd", ["stats", "validate"])
def test_missing_output_folder_is_an_error(cmd, tmp_path):
    r = wide.invoke(app, [cmd, "/no/such/dir"])
    assert r.exit_code == 2
    assert "/no/such/dir: no such folder" in r.output and "problems" not in r.output
    (tmp_path / "empty").mkdir()
    r = wide.invoke(app, [cmd, str(tmp_path / "empty")])
    assert r.exit_code == 2 and "not a converted UniHema folder" in r.output


def _converted(tmp_path, *ids):
    raw, out = tmp_path / "raw", tmp_path / "out"
    for sid in ids:
        assert wide.invoke(app, ["fake", sid, "--out", str(raw / sid)]).exit_code == 0
    r = wide.invoke(app, ["convert", *ids, "--raw-dir", str(raw), "--out", str(out), "--num-proc", "1"])
    assert r.exit_code == 0, r.output
    return raw, out, r


def test_validate_and_stats_json(tmp_path):
    import pyarrow.parquet as pq

    from unihema_data.outdir import all_parquet_files

    _raw, out, _r = _converted(tmp_path, "bccd")
    r = wide.invoke(app, ["validate", str(out), "--json"])
    assert r.exit_code == 0
    rep = json.loads(r.output)
    assert rep == {"ok": True, "rows": 8, "shards": rep["shards"], "problem_count": 0, "problems_by_kind": {},
                   "problems": []} and rep["shards"] >= 1
    st = json.loads(wide.invoke(app, ["stats", str(out), "--json"]).output)
    assert st["images"]["bccd"] == {"test": 2, "train": 4, "validation": 2}
    # damage one row: --json still parses, exit 1, one problem, singular wording in the text report
    f = all_parquet_files(out)[0]
    t = pq.read_table(f)
    rows = t.to_pylist()
    rows[0]["width"] += 1
    pq.write_table(t.from_pylist(rows, schema=t.schema), f)
    r = wide.invoke(app, ["validate", str(out), "--json"])
    assert r.exit_code == 1
    rep = json.loads(r.stdout)
    assert not rep["ok"] and rep["problem_count"] == 1 and rep["problems_by_kind"] == {"image": 1}
    r = wide.invoke(app, ["validate", str(out)])
    assert r.exit_code == 1 and "1 problem\n" in r.output


def test_up_to_date_rerun_reports_stored_duplicates_and_flags(tmp_path):
    raw, out, first = _converted(tmp_path, "bccd", "txl_pbc")
    # copy one BCCD image over a TXL-PBC one: an exact duplicate across sources
    bccd_img = sorted((raw / "bccd").rglob("*.jpg"))[0]
    txl_img = sorted((raw / "txl_pbc").rglob("*.jpg"))[0]
    txl_img.write_bytes(bccd_img.read_bytes())
    args = ["convert", "bccd", "txl_pbc", "--raw-dir", str(raw), "--out", str(out), "--num-proc", "1"]
    r1 = narrow.invoke(app, args)
    assert r1.exit_code == 0, r1.output
    r2 = narrow.invoke(app, args)
    assert r2.exit_code == 0

    def row(output, sid):
        return next(line.split() for line in output.splitlines() if line.split()[:1] == [sid])

    conv, again = row(r1.output, "txl_pbc"), row(r2.output, "txl_pbc")
    assert conv[1] == "converted" and again[1] == "up-to-date"
    assert conv[5] == again[5] == "1"  # duplicates
    # flags: the copied image's boxes differ from the BCCD original's, so the pair is a label conflict
    assert "label_conflict=1" in again[6] and again[6] == conv[6]
    # the summary table fits 80 columns with whole headers
    header = next(line for line in r2.output.splitlines() if line.split()[:1] == ["source"])
    assert header.split() == ["source", "status", "train", "val", "test", "dups", "qc", "flags", "s"]


def test_convert_progress_has_total_and_eta(tmp_path):
    from rich.console import Console

    from unihema_data.progress import estimate_images, progress_bar

    raw = tmp_path / "raw"
    wide.invoke(app, ["fake", "bccd", "--out", str(raw / "bccd")])
    assert estimate_images("bccd", raw) == 8
    assert estimate_images("bccd", tmp_path / "nothing") is None
    con = Console(record=True, width=120, force_terminal=True)
    with progress_bar(con) as prog:
        task = prog.add_task("convert bccd", total=8)
        prog.update(task, completed=3)
        prog.refresh()
        cols = [type(c).__name__ for c in prog.columns]
    assert {"MofNCompleteColumn", "TimeRemainingColumn", "BarColumn"} <= set(cols)
    assert "3/8" in con.export_text()


def test_demo_summary_counts_object_classes(tmp_path):
    from unihema_data.demo import run_demo
    from rich.console import Console

    con = Console(record=True, width=200)
    assert run_demo(tmp_path / "demo", num_proc=1, console=con)
    text = con.export_text()
    bccd = next(line for line in text.splitlines() if re.match(r"\W*bccd\b", line))
    classes = int(re.findall(r"\d+", bccd)[-1])
    assert classes >= 3, bccd  # wbc, rbc, platelet


def test_allow_partial_converts_what_is_present_and_lists_what_is_missing(tmp_path):
    from unihema_data.adapters import get_adapter

    raw, out = tmp_path / "raw", tmp_path / "out"
    truth = get_adapter("wbcatt").fake(raw / "wbcatt")
    pbc_images = sorted((raw / "wbcatt").rglob("PBC_dataset_normal_DIB/*/*.jpg"))
    gone = pbc_images[:2]
    for p in gone:
        p.unlink()
    args = ["convert", "wbcatt", "--raw-dir", str(raw), "--out", str(out), "--num-proc", "1"]
    r = wide.invoke(app, args)  # never partial by default
    assert r.exit_code == 1 and "2 of" in r.output and "--allow-partial" in r.output
    assert not out.exists() or not list(out.rglob("*.parquet"))
    r = wide.invoke(app, args + ["--allow-partial"])
    assert r.exit_code == 0, r.output
    assert "2 referenced images are missing" in r.output
    for p in gone:
        assert p.name in r.output
    manifest = json.loads((out / ".unihema" / "manifest.json").read_text())
    partial = manifest["sources"]["wbcatt"]["partial"]
    assert partial["missing_count"] == 2 and all(any(p.name in m for m in partial["missing"]) for p in gone)
    st = json.loads(wide.invoke(app, ["stats", str(out), "--json"]).output)
    assert sum(st["images"]["wbcatt"].values()) == truth.num_images - 2
    # a rerun is up to date and still reports the missing images; without the flag it reconverts and fails
    r = wide.invoke(app, args + ["--allow-partial"])
    assert r.exit_code == 0 and "up_to_date" in r.output and "2 referenced images are missing" in r.output
    r = wide.invoke(app, args)
    assert r.exit_code == 1
    assert json.loads((out / ".unihema" / "manifest.json").read_text())["sources"]["wbcatt"]["partial"]["missing_count"] == 2


def test_fetch_network_failure_names_its_cause(tmp_path, monkeypatch):
    """A refused connection (closed port on 127.0.0.1) through the real `unihema-data fetch`
    (loaded lazily by the top-level group): the message says why, and no query-string token leaks."""
    import socket

    import unihema_data.catalog as catalog_mod
    from fetch_server import entry_dict, write_catalog

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/d/cells.zip?token=SECRET123"
    lab = write_catalog(tmp_path / "lab.yaml", entry_dict("lab_cells", files=[{"name": "cells.zip", "url": url}]))
    monkeypatch.setattr(catalog_mod, "CATALOG_PATH", write_catalog(tmp_path / "builtin.yaml"))
    monkeypatch.setenv("UNIHEMA_FETCH_BACKOFF", "0.01")
    monkeypatch.setenv("UNIHEMA_FETCH_RETRIES", "1")
    catalog_mod._load_cached.cache_clear()
    r = wide.invoke(app, ["fetch", "lab_cells", "--root", str(tmp_path / "work"), "--catalog", str(lab)])
    catalog_mod._load_cached.cache_clear()
    assert r.exit_code == 1, r.output
    assert "ConnectionError: Connection refused" in r.output
    assert "SECRET123" not in r.output


def test_network_cause_unwraps_dns_and_timeouts():
    import socket

    import requests

    from unihema_data.fetch.neterr import network_cause

    try:
        raise OSError("x") from socket.gaierror(-2, "Name or service not known")
    except OSError as inner:
        e = requests.ConnectionError(inner)
    assert network_cause(e) == "ConnectionError: cannot resolve the host name (Name or service not known)"
    assert network_cause(requests.ReadTimeout("read timed out")) == "ReadTimeout: timed out"
    assert network_cause(ValueError("?")) == "ValueError"


def test_generate_reports_progress_with_total(tmp_path):
    from unihema_data.textsets.writer import generate

    _raw, out, _r = _converted(tmp_path, "wbcatt")
    seen: list[tuple[int, int]] = []
    rep = generate("wbcatt_vqa", out, on_progress=lambda n, total: seen.append((n, total)))
    assert rep.images == len(seen) and seen[-1][0] == seen[-1][1] == rep.images
    r = wide.invoke(app, ["generate", "vqa", "--from", str(out), "--overwrite"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("cores, expected", [(None, 1), (1, 1), (2, 2), (3, 3), (16, 4)])
def test_default_worker_count_is_one_per_core_capped_at_4(monkeypatch, cores, expected):
    """A 2-core machine gets 2 workers (measured 1.16-1.38x faster than no pool in
    benchmarks/RESULTS.md), not ``cores - 1`` = 1 worker, which meant no pool at all."""
    import unihema_data.convert as convert_mod
    from unihema_data.convert import ConvertOptions, default_num_proc

    monkeypatch.setattr(convert_mod.os, "cpu_count", lambda: cores)
    assert default_num_proc() == expected
    assert ConvertOptions().num_proc == expected


def test_worker_imports_are_loaded_once_before_the_workers_fork(tmp_path):
    """The DCT of the perceptual hash is imported by the main process before the pool forks, so
    the workers inherit it instead of each paying ~0.3 s of imports; pandas (which pyarrow would
    import on a worker's first list conversion, ~0.45 s) is imported neither before the fork nor
    in the workers (the main process imports it while the workers run), and the output is the
    same as without a pool."""
    flags = tmp_path / "worker-pandas.txt"
    code = textwrap.dedent(f"""
        import multiprocessing.pool, sys
        import pyarrow.parquet as pq
        import unihema_data.convert as C
        from unihema_data.adapters import get_adapter
        from unihema_data.convert import WORKER_PRELOAD, ConvertOptions, convert
        seen = []
        real = multiprocessing.pool.Pool.__init__
        def init(self, *a, **k):
            seen.append(sorted(m for m in (*WORKER_PRELOAD, "pandas") if m in sys.modules))
            real(self, *a, **k)
        multiprocessing.pool.Pool.__init__ = init
        batch = C._convert_batch
        def spy(*a, **k):
            out = batch(*a, **k)
            with open(r"{flags}", "a") as f:
                f.write(f"{{'pandas' in sys.modules}}\\n")
            return out
        C._convert_batch = spy
        assert not any(m in sys.modules for m in (*WORKER_PRELOAD, "pandas")), "imported before convert"
        get_adapter("bccd").fake(r"{tmp_path / 'raw' / 'bccd'}", seed=1)
        convert(["bccd"], r"{tmp_path / 'raw'}", r"{tmp_path / 'out'}", ConvertOptions(num_proc=2, progress=False))
        assert seen == [sorted(WORKER_PRELOAD)], seen
        assert "pandas" not in WORKER_PRELOAD and "scipy.fftpack" in WORKER_PRELOAD
        C._convert_batch = batch
        convert(["bccd"], r"{tmp_path / 'raw'}", r"{tmp_path / 'out1'}", ConvertOptions(num_proc=1, progress=False))
        from pathlib import Path
        for split in ("train", "validation", "test"):
            a = sorted(Path(r"{tmp_path / 'out' / 'data' / 'bccd'}").glob(split + "-*.parquet"))
            b = sorted(Path(r"{tmp_path / 'out1' / 'data' / 'bccd'}").glob(split + "-*.parquet"))
            assert [p.name for p in a] == [p.name for p in b]
            assert a or split != "train"
            for x, y in zip(a, b):
                assert pq.ParquetFile(x).read().equals(pq.ParquetFile(y).read()), x
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    worker_flags = flags.read_text().split()
    assert worker_flags and set(worker_flags) == {"False"}, worker_flags
