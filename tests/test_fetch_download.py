"""HTTP download ladder against a real local server: resume, retry, HTML rejection, verification."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from fetch_server import fast_settings, server  # noqa: F401  (pytest fixtures)
from unihema_data.fetch.download import Location, Target, download_file, looks_like_html, redact_url
from unihema_data.fetch.errors import (FetchError, HTMLInsteadOfFileError, PermanentHTTPError,
                                       TransientHTTPError, VerificationError)

BODY = os.urandom(200_000)
SHA = hashlib.sha256(BODY).hexdigest()


def _get(server, settings, tmp_path, path, logs=None, **expect):
    t = Target("data.zip", [Location(server.url(path))], **expect)
    return download_file(t, tmp_path / "data.zip", settings=settings, log=(logs.append if logs is not None else
                                                                           (lambda m: None)))


def _ranges(server, path):
    return [r.headers.get("Range") for r in server.requests_to(path)]


def test_plain_download_verifies_and_leaves_no_part(server, fast_settings, tmp_path):
    server.add("/f.zip", BODY)
    r = _get(server, fast_settings, tmp_path, "/f.zip", size=len(BODY), sha256=SHA)
    assert r.sha256 == SHA and r.size == len(BODY) and not r.resumed
    assert (tmp_path / "data.zip").read_bytes() == BODY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zip"]


def test_resume_after_interruption_uses_range(server, fast_settings, tmp_path):
    server.add("/f.zip", BODY, drop_after=70_000, drop_times=1)
    logs = []
    r = _get(server, fast_settings, tmp_path, "/f.zip", logs, size=len(BODY), sha256=SHA)
    assert r.resumed and r.sha256 == SHA
    ranges = _ranges(server, "/f.zip")
    assert ranges[0] is None and len(ranges) == 2
    start = int(ranges[1].split("=")[1].rstrip("-"))
    assert 0 < start <= 70_000  # resumed where the .part ended, not from zero
    assert (tmp_path / "data.zip").read_bytes() == BODY
    assert any("connection dropped" in m for m in logs)
    # If-Range protects against splicing two versions of the file
    assert server.requests_to("/f.zip")[1].headers.get("If-Range") == server.routes["/f.zip"].etag


def test_resume_of_a_part_left_by_an_earlier_run(server, fast_settings, tmp_path):
    """A .part from a killed process (with its validator file) is continued, not restarted."""
    route = server.add("/f.zip", BODY, drop_after=50_000, drop_times=1)
    cfg = fast_settings.with_(retries=1)
    with pytest.raises(TransientHTTPError):
        _get(server, cfg, tmp_path, "/f.zip", size=len(BODY), sha256=SHA)
    part = tmp_path / "data.zip.part"
    assert part.exists() and 0 < part.stat().st_size <= 50_000
    assert not (tmp_path / "data.zip").exists()
    r = _get(server, fast_settings, tmp_path, "/f.zip", size=len(BODY), sha256=SHA)
    assert r.resumed and (tmp_path / "data.zip").read_bytes() == BODY and route.hits == 2
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(server, fast_settings, tmp_path):
    server.add("/f.zip", BODY, drop_after=60_000, drop_times=1, ignore_range=True)
    logs = []
    r = _get(server, fast_settings, tmp_path, "/f.zip", logs, size=len(BODY), sha256=SHA)
    assert r.sha256 == SHA and not r.resumed
    assert any("ignored the resume request" in m for m in logs)
    assert (tmp_path / "data.zip").read_bytes() == BODY


def test_file_changed_between_interruption_and_resume(server, fast_settings, tmp_path):
    """If-Range makes the server send the whole new file; no spliced garbage survives."""
    route = server.add("/f.zip", BODY, drop_after=60_000, drop_times=1)
    with pytest.raises(TransientHTTPError):
        _get(server, fast_settings.with_(retries=1), tmp_path, "/f.zip")
    new = os.urandom(150_000)
    route.body = new
    r = _get(server, fast_settings, tmp_path, "/f.zip")
    assert r.sha256 == hashlib.sha256(new).hexdigest()
    assert (tmp_path / "data.zip").read_bytes() == new


def test_retry_after_500_and_503_then_success(server, fast_settings, tmp_path):
    route = server.add("/f.zip", BODY, fail_with=[500, 503])
    logs = []
    r = _get(server, fast_settings, tmp_path, "/f.zip", logs, sha256=SHA)
    assert r.sha256 == SHA and route.hits == 3
    assert [m for m in logs if "retrying" in m][0].count("HTTP 500") == 1
    assert any("HTTP 503" in m for m in logs)


def test_gives_up_after_retries(server, fast_settings, tmp_path):
    route = server.add("/f.zip", BODY, fail_with=[503] * 10)
    with pytest.raises(TransientHTTPError, match="gave up after 4 attempts"):
        _get(server, fast_settings, tmp_path, "/f.zip")
    assert route.hits == 4
    assert not (tmp_path / "data.zip").exists()


def test_html_instead_of_archive_is_rejected(server, fast_settings, tmp_path):
    route = server.add("/f.zip", BODY, html=True)
    with pytest.raises(HTMLInsteadOfFileError, match="HTML page"):
        _get(server, fast_settings, tmp_path, "/f.zip")
    assert route.hits == 1  # not retried: a login page does not go away
    assert list(tmp_path.iterdir()) == []


def test_html_without_content_type_is_sniffed(server, fast_settings, tmp_path):
    server.add("/f.zip", b"\n  <!DOCTYPE html><html><body>Quota exceeded</body></html>",
               content_type="application/octet-stream")
    with pytest.raises(HTMLInsteadOfFileError):
        _get(server, fast_settings, tmp_path, "/f.zip")


def test_zip_mislabelled_as_html_is_accepted(server, fast_settings, tmp_path):
    body = b"PK\x03\x04" + BODY
    server.add("/f.zip", body, content_type="text/html")
    assert _get(server, fast_settings, tmp_path, "/f.zip").size == len(body)


def test_checksum_mismatch_clear_error_nothing_in_place(server, fast_settings, tmp_path):
    changed = BODY[:-1] + bytes([BODY[-1] ^ 1])
    server.add("/f.zip", changed)
    with pytest.raises(VerificationError) as ei:
        _get(server, fast_settings, tmp_path, "/f.zip", size=len(BODY), sha256=SHA)
    msg = str(ei.value)
    assert f"expected sha256  {SHA}" in msg
    assert f"got      sha256  {hashlib.sha256(changed).hexdigest()}" in msg
    assert list(tmp_path.iterdir()) == []  # neither data.zip nor .part nor .part.json


def test_size_mismatch_is_reported_before_sha(server, fast_settings, tmp_path):
    server.add("/f.zip", BODY + b"extra")
    with pytest.raises(VerificationError, match=r"expected size\s+200,000 bytes\n\s+got\s+size\s+200,005 bytes"):
        _get(server, fast_settings, tmp_path, "/f.zip", size=len(BODY), sha256=SHA)
    assert list(tmp_path.iterdir()) == []


def test_host_md5_is_checked_when_catalog_does_not_pin(server, fast_settings, tmp_path):
    server.add("/f.zip", BODY)
    with pytest.raises(VerificationError, match="md5 mismatch"):
        _get(server, fast_settings, tmp_path, "/f.zip", host_checksums={"md5": "0" * 32})
    r = _get(server, fast_settings, tmp_path, "/f.zip", host_checksums={"md5": hashlib.md5(BODY).hexdigest()})
    assert r.sha256 == SHA


def test_mirror_used_when_primary_fails(server, fast_settings, tmp_path):
    server.add("/good.zip", BODY)
    t = Target("data.zip", [Location(server.url("/gone.zip")), Location(server.url("/good.zip"))], sha256=SHA)
    r = download_file(t, tmp_path / "data.zip", settings=fast_settings, log=lambda m: None)
    assert r.url.endswith("/good.zip")
    assert len(server.requests_to("/gone.zip")) == 1  # a 404 is not retried


def test_all_locations_fail_lists_each(server, fast_settings, tmp_path):
    server.add("/login.zip", html=True)
    t = Target("data.zip", [Location(server.url("/gone.zip")), Location(server.url("/login.zip"))])
    with pytest.raises(FetchError) as ei:
        download_file(t, tmp_path / "data.zip", settings=fast_settings, log=lambda m: None)
    assert "HTTP 404" in str(ei.value) and "HTML page" in str(ei.value)


def test_401_is_permanent_and_explained(server, fast_settings, tmp_path):
    server.add("/f.zip", BODY, require_auth=("u", "k"))
    with pytest.raises(PermanentHTTPError, match="access denied"):
        _get(server, fast_settings, tmp_path, "/f.zip")
    assert len(server.requests_to("/f.zip")) == 1


def test_redirect_followed(server, fast_settings, tmp_path):
    from fetch_server import Reply
    server.add("/f.zip", BODY)
    server.add("/r", handler=lambda req: Reply(302, b"", {"Location": "/f.zip"}))
    t = Target("data.zip", [Location(server.url("/r"))], sha256=SHA)
    assert download_file(t, tmp_path / "data.zip", settings=fast_settings, log=lambda m: None).sha256 == SHA


def test_redact_url_hides_credentials_and_tokens():
    u = redact_url("https://user:secret@host.example:8443/p/file.zip?token=abc&x=1#frag")
    assert u == "https://host.example:8443/p/file.zip?token=…&x=…"
    assert "secret" not in u and "abc" not in u


@pytest.mark.parametrize("ctype,head,expected", [
    ("text/html; charset=utf-8", b"<html>", True),
    ("application/zip", b"<!doctype html>", True),
    ("application/octet-stream", b"PK\x03\x04rest", False),
    ("text/html", b"\x1f\x8b\x08", False),
    ("application/json", b'{"a": 1}', False),
])
def test_looks_like_html(ctype, head, expected):
    assert looks_like_html(ctype, head) is expected


def test_part_validator_file_records_url(server, fast_settings, tmp_path):
    server.add("/f.zip", BODY, drop_after=10_000, drop_times=1)
    with pytest.raises(TransientHTTPError):
        _get(server, fast_settings.with_(retries=1), tmp_path, "/f.zip")
    meta = json.loads((tmp_path / "data.zip.part.json").read_text())
    assert meta["url"] == server.url("/f.zip") and meta["etag"] == server.routes["/f.zip"].etag
    assert meta["url_sha256"] == hashlib.sha256(server.url("/f.zip").encode()).hexdigest()


def test_part_validator_file_never_stores_secrets(server, fast_settings, tmp_path):
    secret = server.url("/f.zip") + "?token=SECRET123"
    server.add("/f.zip", BODY, drop_after=10_000, drop_times=1)
    with pytest.raises(TransientHTTPError):
        download_file(Target("data.zip", [Location(secret)]), tmp_path / "data.zip",
                      settings=fast_settings.with_(retries=1), log=lambda m: None)
    assert "SECRET123" not in (tmp_path / "data.zip.part.json").read_text()
    # and the partial file is still recognised: the resume completes the download
    r = download_file(Target("data.zip", [Location(secret)]), tmp_path / "data.zip", settings=fast_settings,
                      log=lambda m: None)
    assert r.resumed and (tmp_path / "data.zip").read_bytes() == BODY


def test_no_validator_and_no_checksum_restarts_instead_of_splicing(server, fast_settings, tmp_path):  # noqa: F811
    """A partial file from a server that sent neither ETag nor Last-Modified cannot be resumed
    safely when nothing pins the file: the download restarts from zero."""
    from fetch_server import Reply

    old, new = b"A" * 1000, b"B" * 1000

    def handler(req):
        rng = req.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            return Reply(206, new[start:], {"Content-Range": f"bytes {start}-{len(new) - 1}/{len(new)}"})
        return Reply(200, new, {"Content-Type": "application/octet-stream"})

    server.add("/f.bin", handler=handler)
    url = server.url("/f.bin")
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(old[:400])  # left by a run against the old upstream file
    (tmp_path / "f.bin.part.json").write_text(json.dumps({"url": url, "url_sha256": hashlib.sha256(url.encode()).hexdigest(),
                                                          "etag": None, "last_modified": None}))
    download_file(Target("f.bin", [Location(url)]), dest, settings=fast_settings, log=lambda m: None)
    assert dest.read_bytes() == new
