"""Safe extraction of downloaded archives (zip, tar, tar.gz/bz2/xz, single-file .gz).

Guarantees (checked explicitly for every member before anything is written, for zip
and tar alike; tar additionally goes through Python's ``filter='data'`` when available):

* no absolute member paths (``/x``, ``C:\\x``, ``\\\\server\\x``) and no ``..`` components;
* no symbolic links at all (a chain of individually harmless links, or CVE-2025-4517's
  long-path layout, can point outside the root; dataset archives do not need links); a hard
  link must name a regular file earlier in the same archive;
* no device files, FIFOs or sockets;
* at most ``max_members`` members and ``max_bytes`` uncompressed bytes (the byte count
  is also enforced while writing, so lying zip headers cannot exceed it);
* at most ``max_ratio`` uncompressed bytes per byte of archive (plus 64 MiB of slack for tiny
  archives): a zip bomb (1 MB expanding to 1 GiB) is refused even under a generous byte limit.
  The effective ceiling is therefore relative to the archive's size, which fetch has verified
  against the catalog's expected size before extracting;
* no member may land on a ``reserved`` path of the target (the fetch completion marker, the
  downloaded archive itself, partial downloads) nor be named like the toolkit's own
  ``.unihema*`` files: an archive cannot mark a failed fetch complete or overwrite itself;
* extraction goes to a staging folder next to the target and is moved into place only
  when the whole archive extracted cleanly; a failed extraction leaves nothing behind.

``rar`` and ``7z`` are not extracted (no safe stdlib reader); the caller is told so.
"""
from __future__ import annotations

import gzip
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional

from .errors import FetchError, UnsafeArchiveError

_SUFFIXES = [(".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar.bz2", "tar.bz2"), (".tbz2", "tar.bz2"),
             (".tbz", "tar.bz2"), (".tar.xz", "tar.xz"), (".txz", "tar.xz"), (".tar", "tar"), (".zip", "zip"),
             (".gz", "gz"), (".rar", "rar"), (".7z", "7z")]
UNSUPPORTED = ("rar", "7z")
_CHUNK = 1 << 20


def archive_kind(name: str, declared: str = "auto") -> str:
    """The archive kind of a file: ``declared`` unless it is ``auto``, else guessed from the name ('none')."""
    if declared and declared != "auto":
        return declared
    low = name.lower()
    for suf, kind in _SUFFIXES:
        if low.endswith(suf):
            return kind
    return "none"


@dataclass
class ExtractResult:
    kind: str
    members: int
    bytes: int


def _safe_rel(name: str) -> Optional[PurePosixPath]:
    """Member name -> safe relative path (``None`` for the root entry); raises on absolute or ``..``."""
    if "\x00" in name:
        raise UnsafeArchiveError(f"member name contains a NUL byte: {name!r}")
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        raise UnsafeArchiveError(f"absolute member path {name!r}")
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"member path {name!r} climbs out of the target with '..'")
    return PurePosixPath(*parts) if parts else None


def _check_link(member: str, link: str, hard: bool) -> None:
    """Links must stay inside the root: symlinks relative to their folder, hard links relative to the root."""
    lk = link.replace("\\", "/")
    if lk.startswith("/") or re.match(r"^[A-Za-z]:", lk):
        raise UnsafeArchiveError(f"link {member!r} points to the absolute path {link!r}")
    base = "" if hard else posixpath.dirname(member.replace("\\", "/"))
    resolved = posixpath.normpath(posixpath.join(base, lk))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        raise UnsafeArchiveError(f"link {member!r} -> {link!r} points outside the extraction folder")


def _inside(root: Path, path: Path) -> None:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise UnsafeArchiveError(f"member would be written outside the target: {path}") from None


RATIO_SLACK = 64 << 20


class _Budget:
    def __init__(self, max_bytes: int, archive: Path, why: str = ""):
        self.left, self.max, self.archive, self.why = max_bytes, max_bytes, archive, why
        self.used = 0

    def take(self, n: int) -> None:
        self.left -= n
        self.used += n
        if self.left < 0:
            raise UnsafeArchiveError(f"{self.archive.name}: more than {self.max:,} uncompressed bytes "
                                     f"({self.why or 'limit; raise UNIHEMA_MAX_EXTRACT_BYTES if this archive is genuine'})")


def _ceiling(archive: Path, max_bytes: int, max_ratio: Optional[float]) -> tuple[int, str]:
    """Effective byte limit: ``max_bytes``, lowered to ``max_ratio`` x the archive's size (+slack)."""
    if not max_ratio:
        return max_bytes, ""
    rel = int(max_ratio * archive.stat().st_size) + RATIO_SLACK
    if rel < max_bytes:
        return rel, (f"expands more than {max_ratio:g}x its {archive.stat().st_size:,} bytes: a zip bomb? "
                     "raise UNIHEMA_MAX_EXTRACT_RATIO if this archive is genuine")
    return max_bytes, ""


def _check_reserved(archive: Path, name: str, rel: Optional[PurePosixPath],
                    reserved: frozenset[PurePosixPath]) -> None:
    if rel is None:
        return
    if any(part.startswith(".unihema") for part in rel.parts) or rel in reserved:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} would overwrite a file fetch keeps there "
                                 "(completion marker, downloaded archive or partial download); refusing "
                                 "the archive (set extract_to in the catalog to extract it into a sub-folder)")


def _copy(src, dst: Path, budget: _Budget) -> None:
    with open(dst, "wb") as out:
        while True:
            b = src.read(_CHUNK)
            if not b:
                break
            budget.take(len(b))
            out.write(b)


def _check_count(n: int, max_members: int, archive: Path) -> None:
    if n > max_members:
        raise UnsafeArchiveError(f"{archive.name}: {n:,} members, more than the limit of {max_members:,} "
                                 f"(raise UNIHEMA_MAX_MEMBERS if this archive is genuine)")


def _extract_zip(archive: Path, staging: Path, max_bytes: int, max_members: int,
                 reserved: frozenset = frozenset(), why: str = "") -> ExtractResult:
    if not zipfile.is_zipfile(archive):
        raise FetchError(f"{archive.name} is not a valid zip archive (an HTML page or a truncated file?)")
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _check_count(len(infos), max_members, archive)
        plan = []
        declared = 0
        for info in infos:
            rel = _safe_rel(info.filename)
            _check_reserved(archive, info.filename, rel, reserved)
            mode = info.external_attr >> 16
            ftype = stat.S_IFMT(mode) if info.create_system == 3 else 0  # unix attributes only
            if ftype in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is a device/FIFO/socket")
            if ftype == stat.S_IFLNK:
                raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is a symbolic link; "
                                         "dataset archives are extracted without links (chains of links "
                                         "can point outside the target)")
            link = None
            declared += info.file_size
            if rel is not None:
                plan.append((info, rel, link))
        if declared > max_bytes:
            raise UnsafeArchiveError(f"{archive.name}: {declared:,} uncompressed bytes declared, more than the "
                                     f"limit of {max_bytes:,} ({why or 'raise UNIHEMA_MAX_EXTRACT_BYTES if genuine'})")
        budget = _Budget(max_bytes, archive, why)
        for info, rel, link in plan:
            dst = staging / rel
            _inside(staging, dst.parent if link else dst)
            if info.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            _inside(staging, dst.parent)
            if link is not None:
                os.symlink(link, dst)
                continue
            with zf.open(info) as src:
                _copy(src, dst, budget)
        return ExtractResult("zip", len(plan), budget.used)


def _extract_tar(archive: Path, staging: Path, kind: str, max_bytes: int, max_members: int,
                 reserved: frozenset = frozenset(), why: str = "") -> ExtractResult:
    mode = {"tar": "r:", "tar.gz": "r:gz", "tar.bz2": "r:bz2", "tar.xz": "r:xz"}.get(kind, "r:*")
    if not tarfile.is_tarfile(archive):
        raise FetchError(f"{archive.name} is not a valid tar archive (an HTML page or a truncated file?)")
    with tarfile.open(archive, mode) as tf:
        members = []
        regular: set[PurePosixPath] = set()  # regular files seen so far: the only hard-link targets
        total = 0
        for m in tf:
            if len(members) >= max_members:
                _check_count(len(members) + 1, max_members, archive)
            rel = _safe_rel(m.name)
            _check_reserved(archive, m.name, rel, reserved)
            if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a device/FIFO")
            if m.issym():
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a symbolic link; dataset "
                                         "archives are extracted without symbolic links (chains of links "
                                         "can point outside the target)")
            elif m.islnk():
                _check_link(m.name, m.linkname, hard=True)
                if _safe_rel(m.linkname) not in regular:
                    raise UnsafeArchiveError(f"{archive.name}: hard link {m.name!r} -> {m.linkname!r} does not "
                                             "point to a regular file earlier in the archive")
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} has an unsupported type")
            total += m.size if m.isfile() else 0
            if total > max_bytes:
                raise UnsafeArchiveError(f"{archive.name}: more than {max_bytes:,} uncompressed bytes "
                                         f"({why or 'limit; raise UNIHEMA_MAX_EXTRACT_BYTES if genuine'})")
            if rel is not None:
                members.append(m)
                if m.isfile():
                    regular.add(rel)
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        try:
            tf.extractall(staging, members=members, **kw)
        except tarfile.FilterError as e:  # defence in depth: our checks should have caught it first
            raise UnsafeArchiveError(f"{archive.name}: {e}") from None
        return ExtractResult(kind, len(members), total)


def _extract_gz(archive: Path, staging: Path, max_bytes: int, reserved: frozenset = frozenset(),
                why: str = "") -> ExtractResult:
    name = archive.name[:-3] if archive.name.lower().endswith(".gz") else archive.name + ".out"
    _check_reserved(archive, name, PurePosixPath(name), reserved)
    budget = _Budget(max_bytes, archive, why)
    with gzip.open(archive, "rb") as src:
        _copy(src, staging / name, budget)
    return ExtractResult("gz", 1, budget.used)


def _merge_into(src: Path, dst: Path) -> None:
    """Move the children of ``src`` into ``dst``, replacing files and merging folders."""
    dst.mkdir(parents=True, exist_ok=True)
    for child in src.iterdir():
        target = dst / child.name
        if child.is_dir() and not child.is_symlink() and target.is_dir() and not target.is_symlink():
            _merge_into(child, target)
            continue
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        os.replace(child, target)


def extract_archive(archive: Path, target: Path, kind: str = "auto", *, max_bytes: int = 200 << 30,
                    max_members: int = 2_000_000, max_ratio: Optional[float] = 250.0,
                    reserved: Iterable[str] = ()) -> ExtractResult:
    """Safely extract ``archive`` into ``target`` (created). See the module docstring for the checks.
    ``reserved``: paths relative to ``target`` that no member may be extracted to."""
    reserved_set = frozenset(PurePosixPath(r) for r in reserved)
    kind = archive_kind(archive.name, kind)
    if kind == "none":
        return ExtractResult("none", 0, 0)
    if kind in UNSUPPORTED:
        raise FetchError(f"{archive.name}: {kind} archives are not extracted automatically; "
                         f"extract it yourself into {target}")
    target.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".unihema-extract-{archive.name}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    max_bytes, why = _ceiling(archive, max_bytes, max_ratio)
    try:
        if kind == "zip":
            res = _extract_zip(archive, staging, max_bytes, max_members, reserved_set, why)
        elif kind.startswith("tar"):
            res = _extract_tar(archive, staging, kind, max_bytes, max_members, reserved_set, why)
        elif kind == "gz":
            res = _extract_gz(archive, staging, max_bytes, reserved_set, why)
        else:
            raise FetchError(f"{archive.name}: unknown archive kind {kind!r}")
        _merge_into(staging, target)
        return res
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError,
            gzip.BadGzipFile if hasattr(gzip, "BadGzipFile") else OSError) as e:
        if isinstance(e, UnsafeArchiveError):
            raise
        raise FetchError(f"{archive.name}: corrupt or unreadable {kind} archive ({type(e).__name__}: {e})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
