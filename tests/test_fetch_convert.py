"""fetch -> convert end to end: a source archive served by a local HTTP server is downloaded,
verified, safely extracted into ROOT/raw/<id>/ and converted from there (the archive's top folder
included, as GitHub archives have it)."""
from __future__ import annotations

import io
import zipfile

from typer.testing import CliRunner

from fetch_server import server  # noqa: F401  (pytest fixture)
from fetch_server import entry_dict, sha256, write_catalog
from unihema_data.adapters import get_adapter
from unihema_data.cli import app
from unihema_data.outdir import read_manifest


def _zip_tree(folder) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return buf.getvalue()


def test_fetch_then_convert(server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("UNIHEMA_FETCH_BACKOFF", "0.01")
    truth = get_adapter("bccd").fake(tmp_path / "upstream", seed=5)
    archive = _zip_tree(tmp_path / "upstream")
    server.add("/Shenggan/BCCD_Dataset/archive/master.zip", archive)
    lab = write_catalog(tmp_path / "mirror.yaml", entry_dict(
        "bccd", access="http", tasks=["detection"], granularity="field_of_view", native_format="pascal_voc",
        files=[{"name": "BCCD_Dataset-master.zip", "url": server.url("/Shenggan/BCCD_Dataset/archive/master.zip"),
                "size": len(archive), "sha256": sha256(archive)}]))
    runner = CliRunner()
    root, out = tmp_path / "work", tmp_path / "corpus"
    r = runner.invoke(app, ["fetch", "bccd", "--root", str(root), "--catalog", str(lab)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["convert", "bccd", "--raw-dir", str(root / "raw"), "--out", str(out), "--num-proc", "1"])
    assert r.exit_code == 0, r.output
    assert read_manifest(out)["sources"]["bccd"]["counts"] and sum(
        read_manifest(out)["sources"]["bccd"]["counts"].values()) == truth.num_images
    # a second fetch does nothing and the conversion stays up to date
    r = runner.invoke(app, ["fetch", "bccd", "--root", str(root), "--catalog", str(lab)])
    assert r.exit_code == 0 and "nothing to do" in r.output
    r = runner.invoke(app, ["convert", "bccd", "--raw-dir", str(root / "raw"), "--out", str(out), "--num-proc", "1"])
    assert "up_to_date" in r.output
