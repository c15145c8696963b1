"""Host resolvers against recorded API response shapes served by the local server.

The JSON below mirrors the public APIs' documented shapes (only the fields the
resolvers read): Zenodo ``GET /api/records/<id>`` (InvenioRDM), Figshare
``GET /v2/articles/<id>``, Mendeley Data ``GET /public-api/datasets/<id>/files``,
GitHub ``GET /repos/<o>/<r>/releases/tags/<tag>`` and TCIA NBIA ``getSeries``.
"""
from __future__ import annotations

import hashlib

import pytest

from fetch_server import catalog, entry_dict, sha256, zip_bytes
from fetch_server import Reply, fast_settings, server  # noqa: F401  (pytest fixtures)
from unihema_data.fetch.core import Fetcher
from unihema_data.fetch.errors import ResolveError
from unihema_data.fetch.resolvers import (figshare_id, gdrive_file_id, github_record, kaggle_credentials,
                                          kaggle_record, mendeley_id, zenodo_id)

ZIP = zip_bytes({"img/1.png": b"one", "img/2.png": b"two"})
MD5 = hashlib.md5(ZIP).hexdigest()


def run(tmp_path, settings, *entries, env=None):
    logs: list[str] = []
    f = Fetcher(catalog(*entries), tmp_path / "work", settings=settings, log=logs.append, env=env or {})
    results = f.fetch([e["id"] for e in entries])
    return results, "\n".join(logs), tmp_path / "work" / "raw"


def test_zenodo_record_resolves_all_files(server, fast_settings, tmp_path):
    server.json("/zenodo/api/records/1234567", {"id": 1234567, "files": [
        {"key": "cells.zip", "size": len(ZIP), "checksum": f"md5:{MD5}",
         "links": {"self": server.url("/zenodo/api/records/1234567/files/cells.zip/content")}}]})
    server.add("/zenodo/api/records/1234567/files/cells.zip/content", ZIP)
    res, log, raw = run(tmp_path, fast_settings, entry_dict("z", access="zenodo", record="10.5281/zenodo.1234567"))
    assert res[0].state == "complete", log
    assert (raw / "z" / "img" / "1.png").read_bytes() == b"one"
    assert res[0].registered["cells.zip"]["sha256"] == sha256(ZIP)


def test_zenodo_host_md5_catches_corruption(server, fast_settings, tmp_path):
    server.json("/zenodo/api/records/7", {"files": [
        {"key": "cells.zip", "size": len(ZIP), "checksum": "md5:" + "0" * 32,
         "links": {"self": server.url("/zenodo/files/cells.zip")}}]})
    server.add("/zenodo/files/cells.zip", ZIP)
    res, log, raw = run(tmp_path, fast_settings,
                        entry_dict("z", access="zenodo", record="7", files=[{"name": "cells.zip"}]))
    assert res[0].state == "failed" and "md5 mismatch" in log
    assert not (raw / "z" / "cells.zip").exists()


def test_zenodo_file_missing_from_record(server, fast_settings, tmp_path):
    server.json("/zenodo/api/records/7", {"files": [{"key": "other.zip", "size": 1, "links": {"self": "x"}}]})
    res, log, _ = run(tmp_path, fast_settings, entry_dict("z", access="zenodo", record="7",
                                                          files=[{"name": "cells.zip"}]))
    assert res[0].state == "failed" and "not in the host record" in log and "other.zip" in log


def test_figshare_article_version(server, fast_settings, tmp_path):
    server.json("/figshare/v2/articles/23804523/versions/2", {"id": 23804523, "files": [
        {"id": 1, "name": "cells.zip", "size": len(ZIP), "computed_md5": MD5, "is_link_only": False,
         "download_url": server.url("/figshare/ndownloader/files/1")},
        {"id": 2, "name": "link.html", "size": 0, "is_link_only": True, "download_url": "https://example.org"}]})
    server.add("/figshare/ndownloader/files/1", ZIP)
    res, log, raw = run(tmp_path, fast_settings,
                        entry_dict("f", access="figshare", record="10.6084/m9.figshare.23804523.v2"))
    assert res[0].state == "complete", log
    assert (raw / "f" / "img" / "2.png").read_bytes() == b"two"
    assert not (raw / "f" / "link.html").exists()


def test_mendeley_named_file_and_sha256(server, fast_settings, tmp_path):
    server.add("/mendeley/public-api/datasets/snkd93bnjr/files", handler=lambda req: Reply(
        200, __import__("json").dumps([
            {"filename": "cells.zip", "id": "abc", "size": len(ZIP),
             "content_details": {"sha256_hash": sha256(ZIP), "size": len(ZIP),
                                 "download_url": server.url("/mendeley/s3/cells.zip")}}]).encode()
        if req.query == {"folder_id": "root", "version": "1"} else b"[]",
        {"Content-Type": "application/json"}))
    server.add("/mendeley/s3/cells.zip", ZIP)
    res, log, raw = run(tmp_path, fast_settings, entry_dict("m", access="mendeley", record="snkd93bnjr/1",
                                                            files=[{"name": "cells.zip"}]))
    assert res[0].state == "complete", log
    assert (raw / "m" / "img" / "1.png").exists()


def test_mendeley_whole_dataset_zip(server, fast_settings, tmp_path):
    server.add("/mendeley/public-api/zip/hms3sjzt7f/download/1", ZIP, content_type="application/zip")
    res, log, raw = run(tmp_path, fast_settings, entry_dict("m", access="mendeley", record="10.17632/hms3sjzt7f.1"))
    assert res[0].state == "complete", log
    assert (raw / "m" / "hms3sjzt7f-1.zip").exists() and (raw / "m" / "img" / "1.png").exists()


def test_github_release_asset_digest_checked(server, fast_settings, tmp_path):
    url = server.url("/gh/owner/repo/releases/download/v1.0/cells.zip")
    server.add("/gh/owner/repo/releases/download/v1.0/cells.zip", ZIP + b"tampered")
    server.json("/ghapi/repos/owner/repo/releases/tags/v1.0", {"tag_name": "v1.0", "assets": [
        {"name": "cells.zip", "size": len(ZIP), "browser_download_url": url, "digest": f"sha256:{sha256(ZIP)}"}]})
    res, log, raw = run(tmp_path, fast_settings, entry_dict("g", access="github", files=[{"name": "cells.zip", "url": url}]))
    assert res[0].state == "failed" and "size mismatch" in log  # host-published size caught it
    server.routes["/gh/owner/repo/releases/download/v1.0/cells.zip"].body = ZIP
    res, log, raw = run(tmp_path, fast_settings, entry_dict("g", access="github", files=[{"name": "cells.zip", "url": url}]))
    assert res[0].state == "complete", log


def test_github_repository_archive(server, fast_settings, tmp_path):
    arch = zip_bytes({"repo-abc123/labels/a.txt": b"label"})
    server.add("/gh/owner/repo/archive/abc123.zip", arch)
    res, log, raw = run(tmp_path, fast_settings, entry_dict("g", access="github", record="owner/repo@abc123"))
    assert res[0].state == "complete", log
    assert (raw / "g" / "repo-abc123" / "labels" / "a.txt").read_bytes() == b"label"


def test_gdrive_virus_scan_interstitial(server, fast_settings, tmp_path):
    fid = "1nG-ra6BPAZSTsdYCvedzCo-JLD7jdH71"
    action = server.url("/gdrive/download")
    page = (f'<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
            f'<p>Google Drive can\'t scan this file for viruses.</p>'
            f'<form id="download-form" action="{action}" method="get">'
            f'<input type="submit" value="Download anyway"/>'
            f'<input type="hidden" name="id" value="{fid}"><input type="hidden" name="export" value="download">'
            f'<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-123">'
            f'</form></body></html>').encode()

    def drive(req):
        if req.query.get("confirm") == "t" and req.query.get("uuid") == "u-123" and req.query.get("id") == fid:
            return Reply(200, ZIP, {"Content-Type": "application/octet-stream"})
        return Reply(200, page, {"Content-Type": "text/html; charset=utf-8"})
    server.add("/gdrive/download", handler=drive)
    e = entry_dict("d", access="gdrive", files=[{"name": "cells.zip", "url": f"https://drive.google.com/file/d/{fid}/view?usp=sharing",
                                                "sha256": sha256(ZIP)}])
    res, log, raw = run(tmp_path, fast_settings, e)
    assert res[0].state == "complete", log
    assert "confirmation page" in log
    assert [r.query.get("confirm") for r in server.requests_to("/gdrive/download")] == [None, "t"]


def test_gdrive_quota_page_rejected_with_hint(server, fast_settings, tmp_path):
    server.add("/gdrive/download", html=True)
    e = entry_dict("d", access="gdrive", files=[{"name": "cells.zip", "url": "https://drive.google.com/open?id=1EMJ7dg0TBs34sDWcj7Tj1wozXJC0wtbc"}])
    res, log, raw = run(tmp_path, fast_settings, e)
    assert res[0].state == "failed" and "HTML page" in log and "quota" in log


def test_gdrive_folder_is_manual(server, fast_settings, tmp_path):
    e = entry_dict("d", access="gdrive", files=[{"name": "all.zip",
                                                "url": "https://drive.google.com/drive/folders/1J5ld-tK6cewj9wXWUi3rs6UdlHnDBe8U"}])
    res, log, raw = run(tmp_path, fast_settings, e)
    assert res[0].state == "manual" and "Download all" in log and server.log == []


def test_tcia_series_resolved_to_zips(server, fast_settings, tmp_path):
    server.json("/tcia/v1/getSeries", [{"SeriesInstanceUID": "1.2.3", "Collection": "C-X"},
                                       {"SeriesInstanceUID": "1.2.4", "Collection": "C-X"}])
    server.add("/tcia/v1/getImage", handler=lambda req: Reply(
        200, zip_bytes({f"{req.query['SeriesInstanceUID']}/000001.dcm": b"DICM"}), {"Content-Type": "application/zip"}))
    res, log, raw = run(tmp_path, fast_settings, entry_dict("t", access="tcia", record="C-X"))
    assert res[0].state == "complete", log
    assert (raw / "t" / "1.2.4" / "1.2.4" / "000001.dcm").read_bytes() == b"DICM"
    assert server.requests_to("/tcia/v1/getSeries")[0].query == {"Collection": "C-X", "format": "json"}


def test_tcia_aspera_collection_is_manual(server, fast_settings, tmp_path):
    server.json("/tcia/v1/getSeries", [])
    res, log, _ = run(tmp_path, fast_settings, entry_dict("t", access="tcia", record="AML-Cytomorphology_LMU",
                                                          manual_instructions="Download the TIFF package with Aspera."))
    assert res[0].state == "manual" and "Aspera" in log
    res, log, _ = run(tmp_path, fast_settings, entry_dict("t2", access="tcia", files=[{"name": "PKG.zip"}]))
    assert res[0].state == "manual" and "PKG.zip" in log


def test_kaggle_credentials_sources(tmp_path):
    assert kaggle_credentials({"KAGGLE_USERNAME": "a", "KAGGLE_KEY": "k"}) == ("a", "k")
    (tmp_path / "kaggle.json").write_text('{"username": "b", "key": "j"}')
    assert kaggle_credentials({"KAGGLE_CONFIG_DIR": str(tmp_path)}) == ("b", "j")
    assert kaggle_credentials({}, config_dir=str(tmp_path / "none")) is None


@pytest.mark.parametrize("fn,rec,want", [
    (zenodo_id, "10.5281/zenodo.10519652", "10519652"),
    (zenodo_id, "https://zenodo.org/records/10519652", "10519652"),
    (figshare_id, "23804523", ("23804523", None)),
    (figshare_id, "23804523/v2", ("23804523", "2")),
    (figshare_id, "10.6084/m9.figshare.23804523.v2", ("23804523", "2")),
    (mendeley_id, "snkd93bnjr/1", ("snkd93bnjr", "1")),
    (mendeley_id, "10.17632/5bf2kmwvfn.1", ("5bf2kmwvfn", "1")),
    (mendeley_id, "https://data.mendeley.com/datasets/jzdj6h7gms/2", ("jzdj6h7gms", "2")),
    (github_record, "draaslan/blood-cell-detection-dataset@721d642", ("draaslan", "blood-cell-detection-dataset", "721d642")),
    (kaggle_record, "eugeneshenderov/acute-promyelocytic-leukemia-apl", ("eugeneshenderov", "acute-promyelocytic-leukemia-apl", None)),
    (kaggle_record, "paultimothymooney/blood-cells@6", ("paultimothymooney", "blood-cells", "6")),
    (gdrive_file_id, "https://drive.google.com/open?id=1EMJ7dg0TBs34sDWcj7Tj1wozXJC0wtbc", "1EMJ7dg0TBs34sDWcj7Tj1wozXJC0wtbc"),
])
def test_record_parsers(fn, rec, want):
    assert fn(rec) == want


def test_bad_record_is_clear():
    with pytest.raises(ResolveError, match="Zenodo"):
        zenodo_id("not-a-record")


def test_kaggle_auth_not_forwarded_to_storage_redirect(server, fast_settings, tmp_path):
    """Kaggle redirects to signed storage URLs on another host; the credentials must not follow."""
    port = server.url("").rsplit(":", 1)[1]
    storage = f"http://localhost:{port}/storage/blood-cells.zip"  # a different host name than 127.0.0.1
    server.add("/kaggle/api/v1/datasets/download/someone/blood-cells",
               handler=lambda req: Reply(302, b"", {"Location": storage}) if req.headers.get("Authorization")
               else Reply(401, b"{}", {"Content-Type": "application/json"}))
    server.add("/storage/blood-cells.zip", ZIP)
    res, log, raw = run(tmp_path, fast_settings, entry_dict("k", access="kaggle", record="someone/blood-cells"),
                        env={"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": "topsecret"})
    assert res[0].state == "complete", log
    assert server.requests_to("/kaggle/api/v1/datasets/download/someone/blood-cells")[0].headers["Authorization"]
    assert "Authorization" not in server.requests_to("/storage/blood-cells.zip")[0].headers
    assert "topsecret" not in log


def test_optional_file_failure_is_a_warning(server, fast_settings, tmp_path):
    server.add("/d/cells.zip", ZIP)
    e = entry_dict("o", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip")},
                               {"name": "extra.csv", "url": server.url("/d/gone.csv"), "optional": True}])
    res, log, raw = run(tmp_path, fast_settings, e)
    assert res[0].state == "complete" and "optional file extra.csv skipped" in log


def test_verification_failure_after_resume_retries_from_scratch(server, fast_settings, tmp_path):
    """A .part spliced from two file versions (server without validators) is thrown away once."""
    import os as _os
    from unihema_data.fetch.download import Location, Target, download_file
    good = _os.urandom(50_000)
    route = server.add("/d/x.bin", b"A" * 50_000, drop_after=20_000, drop_times=1)
    # first attempt gets 20 kB of the old version, then the upstream changes
    from unihema_data.fetch.errors import TransientHTTPError
    with pytest.raises(TransientHTTPError):
        download_file(Target("x.bin", [Location(server.url("/d/x.bin"))]), tmp_path / "x.bin",
                      settings=fast_settings.with_(retries=1), log=lambda m: None)
    route.body = good
    meta = tmp_path / "x.bin.part.json"
    m = __import__("json").loads(meta.read_text())
    m["etag"] = m["last_modified"] = None  # a host that sends no validators: If-Range cannot help
    meta.write_text(__import__("json").dumps(m))
    # the server honours the Range, the spliced file fails sha256, one fresh download fixes it
    logs = []
    r = download_file(Target("x.bin", [Location(server.url("/d/x.bin"))], sha256=sha256(good)), tmp_path / "x.bin",
                      settings=fast_settings, log=logs.append)
    assert r.sha256 == sha256(good) and any("once more from the start" in m for m in logs)


def test_dry_run_skips_optional_api_lookups(server, fast_settings, tmp_path):
    e = entry_dict("z", access="zenodo", record="7", files=[{"name": "c.zip", "url": server.url("/z/c.zip")}])
    logs: list[str] = []
    f = Fetcher(catalog(e), tmp_path / "w", settings=fast_settings, log=logs.append, env={})
    assert f.fetch(["z"], dry_run=True)[0].state == "dry-run"
    assert server.log == [] and any(server.url("/z/c.zip") in m for m in logs)


def test_unexpected_api_shape_is_a_clear_failure(server, fast_settings, tmp_path):  # noqa: F811
    """A host API answering with an unknown shape fails that source with a message, no traceback."""
    server.json("/zenodo/api/records/99", [{"unexpected": "list"}])
    res, log, _ = run(tmp_path, fast_settings, entry_dict("z", access="zenodo", record="99"))
    assert res[0].state == "failed" and "unexpected answer from the zenodo API" in log
