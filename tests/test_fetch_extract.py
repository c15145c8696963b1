"""Safe extraction: zip-slip, absolute paths, link attacks, devices, limits, staging."""
from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from unihema_data.fetch.errors import FetchError, UnsafeArchiveError
from unihema_data.fetch.extract import archive_kind, extract_archive


def make_zip(path: Path, members: list[tuple[str, bytes]], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                name, data = m
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_zip_extracts_through_staging(tmp_path):
    a = make_zip(tmp_path / "a.zip", [("imgs/1.png", b"x" * 10), ("labels.csv", b"id\n1\n"), ("imgs/", b"")])
    target = tmp_path / "raw" / "src"
    res = extract_archive(a, target)
    assert res.kind == "zip" and res.bytes == 15
    assert (target / "imgs" / "1.png").read_bytes() == b"x" * 10
    assert not list((tmp_path / "raw").glob(".unihema-extract-*"))
    # re-extraction overwrites cleanly (idempotent)
    extract_archive(a, target)
    assert tree(target) == ["imgs", "imgs/1.png", "labels.csv"]


@pytest.mark.parametrize("bad", ["../evil.txt", "ok/../../evil.txt", "/abs/evil.txt", "..\\evil.txt",
                                 "C:\\windows\\evil.txt", "C:/evil.txt"])
def test_zip_slip_rejected(tmp_path, bad):
    a = make_zip(tmp_path / "a.zip", [("fine.txt", b"ok"), (bad, b"evil")])
    target = tmp_path / "out" / "t"
    with pytest.raises(UnsafeArchiveError):
        extract_archive(a, target)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()
    assert tree(tmp_path / "out") == ["t"]  # nothing extracted, not even the fine member


@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd", "a/../../x"])
def test_zip_symlink_escaping_rejected(tmp_path, target):
    a = make_zip(tmp_path / "a.zip", [("f.txt", b"1")], symlinks={"lnk": target})
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_archive(a, tmp_path / "out")


def test_zip_symlinks_refused_even_inside(tmp_path):
    """Links are refused outright: a chain of harmless-looking links (e.g. ``l -> .`` then
    ``l/m -> ..``, or CVE-2025-4517's long-path layout) can end up pointing outside."""
    for i, links in enumerate(({"d/lnk": "f.txt"}, {"l": ".", "l/m": ".."})):
        a = make_zip(tmp_path / f"a{i}.zip", [("d/f.txt", b"1")], symlinks=links)
        with pytest.raises(UnsafeArchiveError, match="symbolic link"):
            extract_archive(a, tmp_path / f"out{i}")
        assert not (tmp_path / f"out{i}").exists() or tree(tmp_path / f"out{i}") == []


@pytest.mark.parametrize("bad", ["../evil.txt", "/tmp/unihema-evil.txt", "a/../../evil.txt"])
def test_tar_traversal_rejected(tmp_path, bad):
    a = make_tar(tmp_path / "a.tar.gz", [("fine.txt", b"ok"), (bad, b"evil")])
    with pytest.raises(UnsafeArchiveError):
        extract_archive(a, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/unihema-evil.txt").exists()
    assert tree(tmp_path / "out") == []


@pytest.mark.parametrize("member", [
    link("lnk", "../../etc"),
    link("lnk", "/etc/passwd"),
    link("sub/lnk", "../../x"),
    link("hard", "../outside.txt", tarfile.LNKTYPE),
    link("hard", "/etc/passwd", tarfile.LNKTYPE),
])
def test_tar_link_attacks_rejected(tmp_path, member):
    a = make_tar(tmp_path / "a.tar", [("fine.txt", b"ok"), member], mode="w")
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_archive(a, tmp_path / "out")
    assert tree(tmp_path / "out") == []


def test_tar_link_then_write_through_it_rejected(tmp_path):
    """Classic two-step attack: a symlink to '..' then a file written 'through' it."""
    a = make_tar(tmp_path / "a.tar", [link("up", ".."), ("up/evil.txt", b"evil")], mode="w")
    with pytest.raises(UnsafeArchiveError):
        extract_archive(a, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_hard_link_to_earlier_file_allowed_symlinks_refused(tmp_path):
    a = make_tar(tmp_path / "a.tar.bz2", [("d/f.txt", b"1"), link("h", "d/f.txt", tarfile.LNKTYPE)], mode="w:bz2")
    extract_archive(a, tmp_path / "out")
    assert (tmp_path / "out" / "h").read_bytes() == b"1"
    b = make_tar(tmp_path / "b.tar.bz2", [("d/f.txt", b"1"), link("d/s", "f.txt")], mode="w:bz2")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_archive(b, tmp_path / "out2")
    c = make_tar(tmp_path / "c.tar", [link("h", "d/f.txt", tarfile.LNKTYPE), ("d/f.txt", b"1")], mode="w")
    with pytest.raises(UnsafeArchiveError, match="regular file earlier"):
        extract_archive(c, tmp_path / "out3")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_devices_rejected(tmp_path, kind):
    info = tarfile.TarInfo("dev")
    info.type = kind
    a = make_tar(tmp_path / "a.tar.xz", [info], mode="w:xz")
    with pytest.raises(UnsafeArchiveError, match="device"):
        extract_archive(a, tmp_path / "out")


def test_member_count_limit(tmp_path):
    a = make_zip(tmp_path / "a.zip", [(f"f{i}.txt", b"x") for i in range(11)])
    with pytest.raises(UnsafeArchiveError, match="members"):
        extract_archive(a, tmp_path / "out", max_members=10)
    t = make_tar(tmp_path / "a.tar", [(f"f{i}.txt", b"x") for i in range(11)], mode="w")
    with pytest.raises(UnsafeArchiveError, match="members"):
        extract_archive(t, tmp_path / "out2", max_members=10)
    extract_archive(a, tmp_path / "out3", max_members=11)
    assert len(tree(tmp_path / "out3")) == 11


def test_uncompressed_size_limit(tmp_path):
    big = b"\0" * 100_000  # compresses to almost nothing: a tiny bomb
    a = make_zip(tmp_path / "a.zip", [("bomb.bin", big)])
    with pytest.raises(UnsafeArchiveError, match="uncompressed bytes"):
        extract_archive(a, tmp_path / "out", max_bytes=50_000)
    t = make_tar(tmp_path / "a.tar.gz", [("bomb.bin", big)])
    with pytest.raises(UnsafeArchiveError, match="uncompressed bytes"):
        extract_archive(t, tmp_path / "out2", max_bytes=50_000)
    g = tmp_path / "bomb.bin.gz"
    g.write_bytes(gzip.compress(big))
    with pytest.raises(UnsafeArchiveError, match="uncompressed bytes"):
        extract_archive(g, tmp_path / "out3", max_bytes=50_000)
    assert tree(tmp_path / "out") == [] and tree(tmp_path / "out3") == []


def test_lying_zip_header_cannot_exceed_budget(tmp_path):
    """A zip whose central directory understates sizes is still stopped while writing."""
    a = make_zip(tmp_path / "a.zip", [("x.bin", b"\0" * 60_000)])
    raw = bytearray(a.read_bytes())
    # patch the uncompressed size in the central directory to 10 bytes
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    a.write_bytes(bytes(raw))
    with pytest.raises((UnsafeArchiveError, FetchError)):
        extract_archive(a, tmp_path / "out", max_bytes=50_000)
    assert tree(tmp_path / "out") == []


def test_gz_single_file(tmp_path):
    g = tmp_path / "table.csv.gz"
    g.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    extract_archive(g, tmp_path / "out")
    assert (tmp_path / "out" / "table.csv").read_bytes() == b"a,b\n1,2\n"


def test_html_saved_as_zip_is_a_clear_error(tmp_path):
    p = tmp_path / "data.zip"
    p.write_bytes(b"<!DOCTYPE html><html>sign in</html>")
    with pytest.raises(FetchError, match="not a valid zip"):
        extract_archive(p, tmp_path / "out")


def test_unsupported_kinds(tmp_path):
    p = tmp_path / "x.rar"
    p.write_bytes(b"Rar!\x1a\x07\x00")
    with pytest.raises(FetchError, match="not extracted automatically"):
        extract_archive(p, tmp_path / "out")


@pytest.mark.parametrize("name,declared,kind", [
    ("a.zip", "auto", "zip"), ("a.TAR.GZ", "auto", "tar.gz"), ("a.tgz", "auto", "tar.gz"),
    ("a.tar.xz", "auto", "tar.xz"), ("a.tar.bz2", "auto", "tar.bz2"), ("a.tar", "auto", "tar"),
    ("a.csv.gz", "auto", "gz"), ("a.csv", "auto", "none"), ("download", "zip", "zip"), ("a.zip", "none", "none"),
])
def test_archive_kind(name, declared, kind):
    assert archive_kind(name, declared) == kind
