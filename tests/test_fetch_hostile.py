"""Fetch against hostile hosts and archives (issue 18), on a real 127.0.0.1 server."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

import unihema_data.fetch.extract as extract_mod
from fetch_server import Reply, entry_dict, sha256, write_catalog, zip_bytes
from fetch_server import fast_settings, server  # noqa: F401  (pytest fixtures)
from test_fetch_cli import cli  # noqa: F401  (pytest fixture)
from unihema_data.fetch.core import fingerprint
from unihema_data.fetch.download import Location, Target, download_file
from unihema_data.fetch.errors import UnsafeArchiveError
from unihema_data.fetch.extract import extract_archive
from unihema_data.fetch.lock import MARKER_NAME

from unihema_data.catalog import DatasetEntry

GOOD = {"cells/a.png": b"\x89PNG fake a", "labels.csv": b"img,label\n"}


def test_register_checksums_never_writes_tokens_or_passwords(cli, server, tmp_path):  # noqa: F811
    body = zip_bytes(GOOD)
    server.add("/d/cells.zip", body, require_auth=("alice", "hunter2-PASSWORD"))
    url = server.url("/d/cells.zip").replace("http://", "http://alice:hunter2-PASSWORD@") + "?token=SECRET-TOKEN-42&dl=1"
    cat = write_catalog(tmp_path / "lab.yaml", entry_dict("lab_cells", files=[{"name": "cells.zip", "url": url,
                                                                              "mirrors": [url + "&x=2"]}]))
    r = cli("lab_cells", "--register-checksums", catalogs=[cat])
    assert r.exit_code == 0, r.output
    reg = (cli.root / "registered-checksums.yaml").read_text()
    for secret in ("SECRET-TOKEN-42", "hunter2-PASSWORD", "alice"):
        assert secret not in reg, secret
        assert secret not in r.output, secret
        for p in cli.root.rglob("*.json"):
            assert secret not in p.read_text(errors="replace"), (secret, p)
    assert sha256(body) in reg and "token=…" in reg


def test_archive_member_named_like_the_completion_marker(cli, server, tmp_path):  # noqa: F811
    """A member ``.unihema-complete.json`` (even with the right fingerprint) must not make a
    failed fetch look complete."""
    d = entry_dict("lab_cells", files=[{"name": "cells.zip", "url": server.url("/d/cells.zip")},
                                       {"name": "extra.csv", "url": server.url("/d/missing.csv")}])
    forged = json.dumps({"id": "lab_cells", "fingerprint": fingerprint(DatasetEntry.model_validate(d)),
                         "files": {}}).encode()
    server.add("/d/cells.zip", zip_bytes({**GOOD, MARKER_NAME: forged}))
    cat = write_catalog(tmp_path / "lab.yaml", d)
    r = cli("lab_cells", catalogs=[cat])
    assert r.exit_code == 1, r.output
    assert MARKER_NAME in r.output, r.output
    raw = cli.root / "raw" / "lab_cells"
    assert not (raw / MARKER_NAME).exists()
    r2 = cli("lab_cells", catalogs=[cat])
    assert r2.exit_code == 1 and "nothing to do" not in r2.output
    st = cli("--status", catalogs=[cat])
    assert "complete" not in st.output.replace("incomplete", "")


def test_archive_member_named_like_the_archive_does_not_overwrite_it(cli, server, tmp_path):  # noqa: F811
    body = zip_bytes({**GOOD, "cells.zip": b"not the archive"})
    server.add("/d/cells.zip", body)
    cat = write_catalog(tmp_path / "lab.yaml", entry_dict("lab_cells", files=[{"name": "cells.zip",
                                                                              "url": server.url("/d/cells.zip")}]))
    r = cli("lab_cells", catalogs=[cat])
    assert r.exit_code == 1 and "would overwrite" in r.output, r.output
    raw = cli.root / "raw" / "lab_cells"
    assert (raw / "cells.zip").read_bytes() == body
    assert not (raw / MARKER_NAME).exists()


def test_member_named_like_the_archive_is_fine_in_a_sub_folder(tmp_path):
    arc = tmp_path / "cells.zip"
    arc.write_bytes(zip_bytes({"sub/cells.zip": b"inner"}))
    extract_archive(arc, tmp_path, reserved=["cells.zip", MARKER_NAME])
    assert (tmp_path / "sub" / "cells.zip").read_bytes() == b"inner" and arc.read_bytes().startswith(b"PK")


def _ignoring_if_range(versions: list[bytes], with_validators: bool = True):
    """A server whose file changes and that ignores If-Range (answers 206 from the new file)."""
    def handler(req):
        body = versions[-1]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        hdr = {"ETag": etag} if with_validators else {}
        rng = req.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            return Reply(206, body[start:], {**hdr, "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
        return Reply(200, body, {**hdr, "Content-Type": "application/octet-stream"})
    return handler


@pytest.mark.parametrize("validators_on_206", [True, False])
def test_changed_file_from_a_server_ignoring_if_range_is_not_spliced(server, fast_settings, tmp_path,  # noqa: F811
                                                                      validators_on_206):
    old, new = bytes(range(256)) * 40, bytes(reversed(range(256))) * 40
    versions = [old]
    url = server.url("/f.bin")
    server.add("/f.bin", handler=_ignoring_if_range(versions))
    # a first, interrupted download of the old version leaves a .part with the old ETag
    dest = tmp_path / "f.bin"
    part = tmp_path / "f.bin.part"
    part.write_bytes(old[:4000])
    etag_old = '"' + hashlib.sha256(old).hexdigest()[:16] + '"'
    (tmp_path / "f.bin.part.json").write_text(json.dumps({
        "url": url, "url_sha256": hashlib.sha256(url.encode()).hexdigest(), "etag": etag_old,
        "last_modified": None, "total": len(old)}))
    versions.append(new)  # upstream changes; the file is unpinned (no size, no sha256)
    if not validators_on_206:
        server.routes["/f.bin"].handler = _ignoring_if_range(versions, with_validators=False)
    logs: list[str] = []
    r = download_file(Target("f.bin", [Location(url)]), dest, settings=fast_settings, log=logs.append)
    assert dest.read_bytes() == new, "spliced old + new bytes"
    assert r.sha256 == hashlib.sha256(new).hexdigest() and not r.resumed
    assert any("changed upstream" in m for m in logs), logs


def test_unchanged_file_still_resumes(server, fast_settings, tmp_path):  # noqa: F811
    body = bytes(range(256)) * 40
    url = server.url("/g.bin")
    server.add("/g.bin", body)
    (tmp_path / "g.bin.part").write_bytes(body[:3000])
    (tmp_path / "g.bin.part.json").write_text(json.dumps({
        "url": url, "url_sha256": hashlib.sha256(url.encode()).hexdigest(), "etag": server.routes["/g.bin"].etag,
        "last_modified": None, "total": len(body)}))
    r = download_file(Target("g.bin", [Location(url)]), tmp_path / "g.bin", settings=fast_settings, log=lambda m: None)
    assert r.resumed and (tmp_path / "g.bin").read_bytes() == body


def _bomb(tmp_path, n_bytes: int, name="bomb.zip"):
    arc = tmp_path / name
    with zipfile.ZipFile(arc, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("zeros.bin", "w") as w:
            chunk = bytes(1 << 20)
            for _ in range(n_bytes >> 20):
                w.write(chunk)
    return arc


def test_zip_bomb_refused_by_the_ratio_guard_under_default_byte_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(extract_mod, "RATIO_SLACK", 0)
    arc = _bomb(tmp_path, 16 << 20)  # 16 MiB of zeros in ~16 kB: ratio ~1000
    assert arc.stat().st_size * 250 < 16 << 20
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        extract_archive(arc, tmp_path / "out")  # default max_bytes is 200 GiB
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_zip_bomb_lying_about_its_size_is_stopped_while_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(extract_mod, "RATIO_SLACK", 0)
    arc = _bomb(tmp_path, 8 << 20)
    data = bytearray(arc.read_bytes())
    # forge the declared uncompressed size (central directory and local header) down to 10 bytes
    cd = data.rindex(b"PK\x01\x02")
    data[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    lh = data.index(b"PK\x03\x04")
    data[lh + 22:lh + 26] = (10).to_bytes(4, "little")
    arc.write_bytes(bytes(data))
    with pytest.raises(Exception) as ei:  # either the ratio guard or zipfile's own size check
        extract_archive(arc, tmp_path / "out")
    assert "bomb" in str(ei.value) or "corrupt" in str(ei.value)
    assert not (tmp_path / "out" / "zeros.bin").exists()


def _zip_of_zeros(path, n_mib: int, name: str = "zeros.bin") -> None:
    """A real deflate zip of ``n_mib`` MiB of zeros, built in a blink: one fully flushed deflate
    segment for 1 MiB of zeros (byte-aligned, no back-references across it) repeated ``n_mib``
    times, then an empty final block. The CRC and sizes in the headers are the true ones."""
    import struct
    import zlib

    chunk = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    seg = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    data = seg * n_mib + tail
    crc = 0
    for _ in range(n_mib):
        crc = zlib.crc32(chunk, crc)
    size = n_mib << 20
    fn = name.encode()
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(fn), 0) + fn
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size,
                          len(fn), 0, 0, 0, 0, 0, 0) + fn
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)


def test_one_megabyte_expanding_to_a_gibibyte_is_refused_with_defaults(tmp_path):
    """The issue's case, with the real defaults (ratio 250, 64 MiB slack): refused from the
    declared sizes, before anything is written; the same bytes with lying headers are stopped
    while writing."""
    arc = tmp_path / "big.zip"
    _zip_of_zeros(arc, 1024)
    assert arc.stat().st_size < 2 << 20
    with zipfile.ZipFile(arc) as zf:  # a valid archive: the first MiB really inflates
        with zf.open("zeros.bin") as f:
            assert f.read(1 << 20) == bytes(1 << 20)
    with pytest.raises(UnsafeArchiveError, match="declared"):
        extract_archive(arc, tmp_path / "out")
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_genuine_compressible_archive_still_extracts(tmp_path):
    text = b"".join(b"img_%06d.jpg,neutrophil,round,purple\n" % i for i in range(50_000))
    arc = tmp_path / "labels.zip"
    with zipfile.ZipFile(arc, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.csv", text)
    res = extract_archive(arc, tmp_path / "out")
    assert (tmp_path / "out" / "labels.csv").read_bytes() == text and res.bytes == len(text)


def test_ratio_limit_from_the_environment():
    from unihema_data.fetch.settings import FetchSettings

    assert FetchSettings.from_env({"UNIHEMA_MAX_EXTRACT_RATIO": "1000"}).max_extract_ratio == 1000.0
    assert FetchSettings.from_env({}).max_extract_ratio == 250.0
