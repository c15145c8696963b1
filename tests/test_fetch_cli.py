"""``unihema-data fetch`` end to end through typer's CliRunner, against the local server."""
from __future__ import annotations

import json
import os

import pytest
import typer
from typer.testing import CliRunner

import unihema_data.catalog as catalog_mod
from fetch_server import entry_dict, sha256, write_catalog, zip_bytes
from fetch_server import server  # noqa: F401  (pytest fixture)
from unihema_data.catalog import load_catalog_file
from unihema_data.fetch.cli import fetch_command

ZIP = zip_bytes({"cells/a.png": b"\x89PNG fake a", "cells/b.png": b"\x89PNG fake b", "labels.csv": b"img,label\n"})


@pytest.fixture
def cli(tmp_path, monkeypatch, server):
    """Runs the command on a typer app of its own, with an empty built-in catalog and fast retries."""
    base = write_catalog(tmp_path / "builtin.yaml")
    monkeypatch.setattr(catalog_mod, "CATALOG_PATH", base)
    for k in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    monkeypatch.setenv("UNIHEMA_FETCH_BACKOFF", "0.01")
    monkeypatch.setenv("UNIHEMA_FETCH_RETRIES", "3")
    monkeypatch.setenv("UNIHEMA_FETCH_TIMEOUT", "5")
    monkeypatch.setenv("UNIHEMA_KAGGLE_API", server.url("/kaggle/api/v1"))
    app = typer.Typer()
    app.command("fetch")(fetch_command)
    app.command("noop")(lambda: None)  # a second command keeps 'fetch' a real sub-command
    runner = CliRunner()
    root = tmp_path / "work"

    def run(*args: str, catalogs=()):
        catalog_mod._load_cached.cache_clear()
        extra = [a for c in catalogs for a in ("--catalog", str(c))]
        return runner.invoke(app, ["fetch", *args, "--root", str(root), *extra])
    run.root = root
    return run


def _cat(tmp_path, *entries):
    return write_catalog(tmp_path / "lab.yaml", *entries)


def test_fetch_verify_extract_then_idempotent(cli, server, tmp_path):
    server.add("/d/cells.zip", ZIP)
    cat = _cat(tmp_path, entry_dict("lab_cells", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip"),
                                                         "size": len(ZIP), "sha256": sha256(ZIP)}]))
    r = cli("lab_cells", catalogs=[cat])
    assert r.exit_code == 0, r.output
    raw = cli.root / "raw" / "lab_cells"
    assert (raw / "cells" / "a.png").read_bytes() == b"\x89PNG fake a"
    assert (raw / "cells.zip").read_bytes() == ZIP
    marker = json.loads((raw / ".unihema-complete.json").read_text())
    assert marker["files"]["cells.zip"]["sha256"] == sha256(ZIP)
    lock = json.loads((cli.root / "unihema-lock.json").read_text())
    rec = lock["sources"]["lab_cells"]["files"]["cells.zip"]
    assert rec["size"] == len(ZIP) and rec["sha256"] == sha256(ZIP) and rec["url"] == server.url("/d/cells.zip")
    assert rec["fetched_at"] and lock["sources"]["lab_cells"]["complete"] is True
    n = len(server.log)
    r2 = cli("lab_cells", catalogs=[cat])
    assert r2.exit_code == 0 and "nothing to do" in r2.output
    assert len(server.log) == n  # no network at all on a complete source
    st = cli("--status", catalogs=[cat])
    assert st.exit_code == 0 and "lab_cells" in st.output and "complete" in st.output


def test_checksum_mismatch_exit_1_nothing_in_place(cli, server, tmp_path):
    server.add("/d/cells.zip", ZIP + b"tampered")
    cat = _cat(tmp_path, entry_dict("lab_cells", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip"),
                                                         "sha256": sha256(ZIP)}]))
    r = cli("lab_cells", catalogs=[cat])
    assert r.exit_code == 1
    assert f"expected sha256  {sha256(ZIP)}" in r.output and f"got      sha256  {sha256(ZIP + b'tampered')}" in r.output
    raw = cli.root / "raw" / "lab_cells"
    assert not raw.exists() or list(raw.iterdir()) == []
    assert "failed (lab_cells)" in r.output


def test_interrupted_and_flaky_download_completes(cli, server, tmp_path):
    big = zip_bytes({"cells/big.bin": os.urandom(3_000_000)})  # > one 1 MiB chunk before the drop
    server.add("/d/cells.zip", big, fail_with=[503], drop_after=1_600_000, drop_times=1)
    cat = _cat(tmp_path, entry_dict("lab_cells", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip"),
                                                         "size": len(big), "sha256": sha256(big)}]))
    r = cli("lab_cells", catalogs=[cat])
    assert r.exit_code == 0, r.output
    assert "HTTP 503" in r.output and "connection dropped" in r.output
    last = [q.headers.get("Range") for q in server.requests_to("/d/cells.zip")][-1]
    assert last.startswith("bytes=") and 1_000_000 <= int(last[6:-1]) <= 1_600_000  # resumed, not restarted
    assert (cli.root / "raw" / "lab_cells" / "cells" / "big.bin").stat().st_size == 3_000_000


def test_html_login_page_rejected_exit_1(cli, server, tmp_path):
    server.add("/d/cells.zip", html=True)
    cat = _cat(tmp_path, entry_dict("lab_cells", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip")}]))
    r = cli("lab_cells", catalogs=[cat])
    assert r.exit_code == 1 and "HTML page" in r.output
    assert not (cli.root / "raw" / "lab_cells" / "cells.zip").exists()


def test_manual_source_missing_then_wrong_then_right(cli, server, tmp_path):
    man = entry_dict("lab_manual", access="manual",
                     manual_instructions="Request access at https://example.org/form, then download the zip.",
                     files=[{"name": "cells.zip", "size": len(ZIP), "sha256": sha256(ZIP)},
                            {"name": "extra.csv", "optional": True}])
    cat = _cat(tmp_path, man)
    r = cli("lab_manual", catalogs=[cat])
    folder = cli.root / "manual" / "lab_manual"
    assert r.exit_code == 2, r.output
    assert "Request access at https://example.org/form" in r.output
    assert f"Put these files in: {folder}/" in r.output
    assert "cells.zip" in r.output and f"sha256 {sha256(ZIP)}" in r.output and f"{len(ZIP):,} bytes" in r.output
    assert "need a manual download (lab_manual)" in r.output
    assert server.log == []  # never touches the network
    st = cli("--status", "lab_manual", catalogs=[cat])
    assert "needs manual download" in st.output
    folder.mkdir(parents=True)
    (folder / "cells.zip").write_bytes(ZIP[:-3] + b"xyz")
    r = cli("lab_manual", catalogs=[cat])
    assert r.exit_code == 1 and "does not verify" in r.output and "expected sha256" in r.output
    assert not (cli.root / "raw" / "lab_manual" / "cells").exists()
    (folder / "cells.zip").write_bytes(ZIP)
    r = cli("lab_manual", catalogs=[cat])
    assert r.exit_code == 0, r.output
    assert (cli.root / "raw" / "lab_manual" / "labels.csv").exists()


def test_manual_dir_option(cli, tmp_path):
    cat = _cat(tmp_path, entry_dict("lab_manual", access="manual", manual_instructions="Log in and download.",
                                    files=[{"name": "table.csv", "sha256": sha256(b"a,b\n")}]))
    mdir = tmp_path / "downloads"
    (mdir / "lab_manual").mkdir(parents=True)
    (mdir / "lab_manual" / "table.csv").write_bytes(b"a,b\n")
    r = cli("lab_manual", "--manual-dir", str(mdir), catalogs=[cat])
    assert r.exit_code == 0, r.output
    assert (cli.root / "raw" / "lab_manual" / "table.csv").read_bytes() == b"a,b\n"


def test_status_states(cli, server, tmp_path):
    server.add("/d/ok.zip", ZIP)
    server.add("/d/flaky.zip", zip_bytes({"x.bin": os.urandom(20_000)}), drop_after=5_000, drop_times=10)
    cat = _cat(tmp_path,
               entry_dict("s_complete", files=[{"name": "ok.zip", "url": server.url("/d/ok.zip")}]),
               entry_dict("s_partial", files=[{"name": "flaky.zip", "url": server.url("/d/flaky.zip")}]),
               entry_dict("s_missing", files=[{"name": "x.zip", "url": server.url("/d/x.zip")}]),
               entry_dict("s_manual", access="manual", manual_instructions="Sign the licence.",
                          files=[{"name": "m.zip"}]))
    assert cli("s_complete", catalogs=[cat]).exit_code == 0
    assert cli("s_partial", catalogs=[cat]).exit_code == 1
    r = cli("--status", catalogs=[cat])
    lines = {ln.split()[0]: ln for ln in r.output.splitlines()[1:]}
    assert "complete" in lines["s_complete"]
    assert "partial" in lines["s_partial"] and "interrupted" in lines["s_partial"]
    assert "missing" in lines["s_missing"]
    assert "needs manual download" in lines["s_manual"]


def test_dry_run_downloads_nothing(cli, server, tmp_path):
    server.add("/d/cells.zip", ZIP)
    cat = _cat(tmp_path, entry_dict("lab_cells", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip")}]))
    r = cli("lab_cells", "--dry-run", catalogs=[cat])
    assert r.exit_code == 0
    assert "would fetch" in r.output and server.url("/d/cells.zip") in r.output
    assert "registered on first download" in r.output
    assert server.requests_to("/d/cells.zip") == []
    assert not (cli.root / "raw").exists()


def test_register_checksums_then_enforced(cli, server, tmp_path):
    route = server.add("/d/cells.zip", ZIP)
    cat = _cat(tmp_path, entry_dict("lab_cells", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip")}]))
    r = cli("lab_cells", "--register-checksums", catalogs=[cat])
    assert r.exit_code == 0, r.output
    assert "does not pin size+sha256 for cells.zip" in r.output
    reg = cli.root / "registered-checksums.yaml"
    pinned = load_catalog_file(reg).get("lab_cells").files[0]  # a valid catalog file
    assert pinned.size == len(ZIP) and pinned.sha256 == sha256(ZIP)
    # the registered values are enforced later: upstream silently changes, local copy is gone
    import shutil
    shutil.rmtree(cli.root / "raw")
    route.body = ZIP + b"silently changed"
    r = cli("lab_cells", catalogs=[cat])
    assert r.exit_code == 1 and "size mismatch" in r.output and "registered" in r.output
    # ... and the registered file works as a catalog pinning the value
    route.body = ZIP
    r = cli("lab_cells", catalogs=[reg])
    assert r.exit_code == 0, r.output


def test_unknown_id_and_no_id(cli, tmp_path):
    cat = _cat(tmp_path, entry_dict("lab_cells", files=[{"name": "c.zip", "url": "http://127.0.0.1:9/c.zip"}]))
    r = cli("nope", catalogs=[cat])
    assert r.exit_code == 1 and "unknown source id" in r.output
    assert cli(catalogs=[cat]).exit_code == 2


def test_kaggle_without_credentials_is_manual(cli, server, tmp_path):
    cat = _cat(tmp_path, entry_dict("k_src", access="kaggle", record="someone/blood-cells"))
    r = cli("k_src", catalogs=[cat])
    assert r.exit_code == 2
    assert "KAGGLE_USERNAME" in r.output and "blood-cells.zip" in r.output
    assert server.log == []


def test_kaggle_credentials_used_never_printed(cli, server, tmp_path, monkeypatch):
    key = "s3cr3t-kaggle-key-0123456789"
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", key)
    server.add("/kaggle/api/v1/datasets/download/someone/blood-cells", ZIP, require_auth=("alice", key))
    cat = _cat(tmp_path, entry_dict("k_src", access="kaggle", record="someone/blood-cells"))
    r = cli("k_src", catalogs=[cat])
    assert r.exit_code == 0, r.output
    assert (cli.root / "raw" / "k_src" / "cells" / "a.png").exists()
    # wrong key: 401, explained, key not echoed anywhere
    monkeypatch.setenv("KAGGLE_KEY", key + "-wrong")
    import shutil
    shutil.rmtree(cli.root / "raw")
    (cli.root / "unihema-lock.json").unlink()
    r2 = cli("k_src", catalogs=[cat])
    assert r2.exit_code == 1 and "401" in r2.output and "rules" in r2.output
    for text in (r.output, r2.output, (cli.root / "unihema-lock.json").read_text()):
        assert key not in text and "alice:" not in text


def test_concurrent_fetch_on_same_root_refused(cli, server, tmp_path):
    from unihema_data.fetch.lock import exclusive
    server.add("/d/cells.zip", ZIP)
    cat = _cat(tmp_path, entry_dict("lab_cells", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip")}]))
    with exclusive(cli.root):
        r = cli("lab_cells", catalogs=[cat])
    assert r.exit_code == 1 and "another 'unihema-data fetch' is running" in r.output
    assert cli("lab_cells", catalogs=[cat]).exit_code == 0


def test_all_flag_and_extra_catalog_entries(cli, server, tmp_path):
    server.add("/d/a.zip", ZIP)
    server.add("/d/b.csv", b"x,y\n")
    cat = _cat(tmp_path, entry_dict("lab_a", files=[{"name": "a.zip", "url": server.url("/d/a.zip")}]),
               entry_dict("lab_b", files=[{"name": "b.csv", "url": server.url("/d/b.csv"), "archive": "none"}]))
    r = cli("--all", catalogs=[cat])
    assert r.exit_code == 0, r.output and "2 complete" in r.output
    assert (cli.root / "raw" / "lab_b" / "b.csv").read_bytes() == b"x,y\n"
