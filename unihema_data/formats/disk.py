"""The shared disk-walking layer: every adapter lists and reads native files through here.

What it guarantees, so that each adapter gets it for free:

* **No traceback on odd names.** Paths are handled as :class:`~pathlib.Path` objects whose
  non-UTF-8 bytes are kept as surrogate escapes (what :func:`os.fsdecode` gives); :func:`show`
  renders such a path printable (``\\udcff`` -> ``\\xff``) for messages and the run report.
* **No hang on special files.** :func:`require_regular` checks the file type with
  :func:`os.stat` *before* anything opens the file: a FIFO, socket, device or directory where a
  file is expected is a :class:`~unihema_data.errors.CorruptInputError` naming it; a dangling
  link is a :class:`~unihema_data.errors.MissingInputError`. Listings (:func:`list_files`,
  :func:`walk_files`) never return non-regular files; they are reported instead.
* **Text files read correctly or refused.** :func:`read_text` accepts UTF-8 (with or without a
  BOM) and UTF-16 with a BOM (LE or BE); CRLF and CR line endings become LF. A NUL byte in a file
  without a UTF-16 BOM (e.g. UTF-16 without BOM, or binary junk) and bytes that are not UTF-8
  are refused naming the file: a split list is never read half-way and silently loses images.
* **Junk is skipped and reported.** Hidden entries (leading ``.``, e.g. ``.DS_Store`` or PBC's
  ``.DS_169665.jpg``), ``__MACOSX`` and ``Thumbs.db``/``desktop.ini`` are not listed; each is
  recorded in the :class:`~unihema_data.report.RunReport` passed in (``skipped``).
* **Case collisions are never resolved silently.** :func:`index_by_stem` refuses two candidate
  files for one key (``X.jpg`` and ``X.JPG``, or ``X.jpg`` and ``X.png``), naming both;
  :func:`case_collisions` lists names of a folder that differ only in case and
  :func:`refuse_case_collisions` makes them an error naming both (every family does). The rule
  behind it, enforced for every file *read* through this module (:func:`require_regular`, hence
  :func:`read_bytes`, :func:`read_text`, :func:`image_size`, and the core's image and mask
  reads): a file the conversion reads must not have a sibling whose name differs only in case
  (:func:`refuse_case_twin`), whichever way the adapter found it (a listing, or a name taken
  from an annotation). ``X.jpg`` next to ``x.JPG`` cannot coexist on a case-insensitive file
  system, so which one the annotation means cannot be told. A case collision among files the
  conversion never reads (a ``.DS_*`` junk file, a README preview) is harmless and not reported.
* **File names that are not UTF-8 are refused where they are listed.** :func:`list_dir` (and
  so :func:`list_files` and every family) raises a :class:`CorruptInputError` naming an entry
  whose name is not valid UTF-8 (junk excepted): such a name can neither be stored in a sample
  id nor matched against the annotation that was meant to name it (a renamed label file, split
  list or image would otherwise be passed over or converted under an invented id). Discovery
  (:func:`subdirs`) and the fingerprint walk (:func:`walk_files`) only look, and list them.

Listings are sorted by the raw file-name bytes, so the order never depends on the file system.
"""
from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Optional

from ..errors import CorruptInputError, MissingInputError

if TYPE_CHECKING:  # pragma: no cover
    from ..report import RunReport

#: image file extensions understood by the core (lower case, with the dot)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")
#: folder names that hold archive metadata, never data
JUNK_DIRS = frozenset({"__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information"})
#: file names (lower case) written by operating systems, never data
JUNK_FILES = frozenset({"thumbs.db", "desktop.ini", "icon\r"})


def show(path: Path | str) -> str:
    """A printable form of ``path``: bytes that are not UTF-8 appear as ``\\xNN`` escapes."""
    s = os.fspath(path)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return os.fsencode(s).decode("utf-8", "backslashreplace")


def rel(path: Path, root: Path) -> str:
    """POSIX path of ``path`` relative to ``root`` (printable; falls back to the full path)."""
    try:
        return show(Path(path).relative_to(root).as_posix())
    except ValueError:
        return show(path)


def _sort_key(p: Path) -> bytes:
    return os.fsencode(p.name)


def is_junk(name: str) -> Optional[str]:
    """Why a directory entry named ``name`` is junk (hidden, archive metadata...), else ``None``."""
    if name.startswith("."):
        if name.startswith(".DS_"):
            return "macOS .DS_Store file (hidden; may carry an image extension)"
        return "hidden file or folder"
    if name in JUNK_DIRS:
        return "archive/OS metadata folder"
    if name.lower() in JUNK_FILES:
        return "operating-system metadata file"
    return None


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def require_regular(path: Path | str, what: str = "file") -> os.stat_result:
    """``os.stat`` of ``path`` after checking it is a regular file (links followed) without a
    sibling whose name differs only in case (:func:`refuse_case_twin`): every read goes through here."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise MissingInputError(f"{show(path)}: {what} is a dangling symbolic link") from None
        raise MissingInputError(f"{show(path)}: {what} is missing") from None
    except OSError as e:
        raise CorruptInputError(f"{show(path)}: cannot access {what}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CorruptInputError(f"{show(path)}: expected a regular {what}, found {file_kind(st.st_mode)}")
    refuse_case_twin(path, what)
    return st


def undecodable(name: str) -> bool:
    """True when ``name`` (a str from :func:`os.fsdecode`) holds bytes that are not UTF-8."""
    return any(0xDC80 <= ord(c) <= 0xDCFF for c in name)


def refuse_undecodable(path: Path | str, what: str = "file") -> None:
    """Error naming ``path`` when its last component is not valid UTF-8 (see the module docstring)."""
    if undecodable(Path(path).name):
        raise CorruptInputError(
            f"{show(path)}: {what} name is not valid UTF-8; it can neither be matched against an annotation "
            "nor stored in a sample id: rename it (e.g. `convmv -f latin1 -t utf8`)")


#: folder -> case-colliding names of that folder, keyed by the folder's (path, inode, mtime):
#: one listing per folder and process, refreshed whenever the folder changes
_TWINS: dict[tuple[str, int, int], dict[str, tuple[str, ...]]] = {}


def forget_listings() -> None:
    """Drop the cached folder listings of :func:`case_twins` (the core calls it before each
    conversion; the cache is also refreshed whenever a folder's mtime changes)."""
    _TWINS.clear()


def case_twins(path: Path | str) -> tuple[str, ...]:
    """Names of the entries of ``path``'s folder whose names equal ``path``'s name up to case
    (``path``'s own name included); empty when there is no such collision."""
    path = Path(path)
    folder = path.parent
    try:
        st = os.stat(folder)
    except OSError:
        return ()
    key = (os.fspath(folder), st.st_ino, st.st_mtime_ns)
    groups = _TWINS.get(key)
    if groups is None:
        try:
            names = os.listdir(folder)
        except OSError:
            return ()
        by_fold: dict[str, list[str]] = {}
        for n in names:
            by_fold.setdefault(n.casefold(), []).append(n)
        groups = {k: tuple(sorted(v, key=os.fsencode)) for k, v in by_fold.items() if len(v) > 1}
        if len(_TWINS) > 4096:
            _TWINS.clear()
        _TWINS[key] = groups
    return groups.get(path.name.casefold(), ()) if groups else ()


def refuse_case_twin(path: Path | str, what: str = "file") -> None:
    """Error naming both files when ``path`` (about to be read) has a sibling whose name differs
    only in case: which of the two an annotation means cannot be told."""
    twins = case_twins(path)
    if len(twins) > 1:
        raise CorruptInputError(
            f"{show(path)}: {what} has a sibling whose name differs only in case: "
            + ", ".join(show(n) for n in twins) + "; which one is meant cannot be told (they cannot coexist on a "
            "case-insensitive file system): remove one")


def read_bytes(path: Path | str, what: str = "file") -> bytes:
    """The bytes of a regular file (type checked first, so a FIFO never blocks)."""
    require_regular(path, what)
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CorruptInputError(f"{show(path)}: cannot read {what}: {e.strerror or e}") from None


def decode_text(data: bytes, name: str, what: str = "text file") -> str:
    """Decode ``data`` as documented in the module (UTF-8 / UTF-8 BOM / UTF-16 BOM; NUL refused)."""
    if data.startswith(codecs.BOM_UTF8):
        body, enc = data[len(codecs.BOM_UTF8):], "utf-8"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        body, enc = data, "utf-16"
    else:
        body, enc = data, "utf-8"
    if enc == "utf-8" and b"\x00" in body:
        pos = body.index(b"\x00")
        hint = " (UTF-16 without a byte-order mark?)" if body[1::2].count(0) > len(body) // 4 else ""
        raise CorruptInputError(f"{name}: {what} contains a NUL byte at offset {pos}{hint}; refusing to guess its content")
    try:
        text = body.decode(enc)
    except UnicodeDecodeError as e:
        raise CorruptInputError(
            f"{name}: {what} is not valid {enc.upper()} text (byte {e.start}: {body[e.start:e.start + 1]!r})"
        ) from None
    if "\x00" in text:
        raise CorruptInputError(f"{name}: {what} contains a NUL character; refusing to guess its content")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path | str, what: str = "text file") -> str:
    """A small text annotation file (split list, CSV, label file), decoded as documented above."""
    return decode_text(read_bytes(path, what), show(path), what)


def read_lines(path: Path | str, what: str = "list file") -> list[tuple[int, str]]:
    """Non-blank lines of a text file, stripped, with their 1-based line numbers."""
    return [(i, ln.strip()) for i, ln in enumerate(read_text(path, what).split("\n"), 1) if ln.strip()]


def _names(folder: Path) -> list[str]:
    """Entry names of ``folder``, sorted by their bytes. Names only: a listing of a large source
    folder kept one ``os.DirEntry`` (with its cached ``stat`` result) per entry alive until the
    whole folder was walked, and the memory stayed with the process (the conversion's peak RSS
    grew with the number of files)."""
    try:
        return sorted(os.listdir(folder), key=os.fsencode)
    except FileNotFoundError:
        raise MissingInputError(f"{show(folder)}: folder is missing") from None
    except NotADirectoryError:
        raise CorruptInputError(f"{show(folder)}: expected a folder, found a file") from None
    except OSError as e:
        raise CorruptInputError(f"{show(folder)}: cannot list folder: {e.strerror or e}") from None


def _entry_kind(path: str) -> tuple[str, int]:
    """('dir' | 'file' | 'special' | 'dangling', mode) of the entry at ``path``."""
    try:
        st = os.stat(path)  # follows links
    except FileNotFoundError:
        return "dangling", 0
    except OSError:
        return "special", 0
    if stat.S_ISDIR(st.st_mode):
        return "dir", st.st_mode
    if stat.S_ISREG(st.st_mode):
        return "file", st.st_mode
    return "special", st.st_mode


def list_dir(folder: Path, report: Optional["RunReport"] = None, root: Optional[Path] = None,
             **options: bool) -> tuple[list[Path], list[Path]]:
    """``(sub-folders, regular files)`` of ``folder`` as paths: :func:`list_dir_names` (its checks,
    order, report and ``keep_junk`` / ``strict`` / ``check_names`` options), each name joined to
    ``folder``."""
    folder = Path(folder)
    dirs, files = list_dir_names(folder, report, root, **options)
    # ``folder / name`` shares the folder's path components (``Path(e.path)`` re-parsed them into
    # new strings per entry: ~350 bytes more per file, held by every listing of a large source)
    return [folder / n for n in dirs], [folder / n for n in files]


def list_dir_names(
    folder: Path,
    report: Optional["RunReport"] = None,
    root: Optional[Path] = None,
    keep_junk: bool = False,
    strict: bool = True,
    check_names: bool = True,
) -> tuple[list[str], list[str]]:
    """``(sub-folder names, regular file names)`` of ``folder``, sorted by their bytes; junk left
    out and recorded in ``report`` (``skipped``; paths relative to ``root`` when given). A FIFO,
    socket or device (where a file is expected) is a :class:`CorruptInputError` and a dangling
    link a :class:`MissingInputError`, both naming the entry: nothing ever opens them. An entry
    whose name is not valid UTF-8 is a :class:`CorruptInputError` naming it (unless
    ``check_names``, which discovery and the fingerprint walk turn off; see the module docstring).
    Names rather than paths: a source's record listing that keeps names, building each path when
    its record is handed out, holds ~70 bytes a file instead of a ``Path`` (~250-350 bytes) for the
    whole conversion (:func:`list_dir` gives paths)."""
    dirs, files = [], []
    base = root if root is not None else folder
    folder = Path(folder)
    prefix = os.path.join(folder, "")
    for name in _names(folder):
        why = None if keep_junk else is_junk(name)
        kind, mode = _entry_kind(prefix + name)
        if not strict and kind in ("special", "dangling"):
            continue  # discovery: looking is not reading
        if why is None and check_names and undecodable(name):
            refuse_undecodable(folder / name, "folder" if kind == "dir" else "file")
        if why is None and kind == "special":
            raise CorruptInputError(f"{show(folder / name)}: expected a regular file or folder, found {file_kind(mode)}")
        if why is None and kind == "dangling":
            raise MissingInputError(f"{show(folder / name)}: dangling symbolic link (its target is missing)")
        if why is not None:
            if report is not None:
                report.skip(rel(folder / name, base), why)
            continue
        (dirs if kind == "dir" else files).append(name)
    return dirs, files


def name_suffix(name: str) -> str:
    """``Path(name).suffix`` of a bare file name, without building a ``Path``."""
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def name_stem(name: str) -> str:
    """``Path(name).stem`` of a bare file name, without building a ``Path``."""
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def present(path: Path | str) -> bool:
    """Whether an optional file of fixed name (a split list, a box CSV) is there. A FIFO or a
    dangling link counts as present (its reader refuses it, naming it). When it is absent, its
    folder is looked at first: an entry there whose name is not UTF-8 may be this very file,
    renamed, so it is an error naming that entry rather than a silent "absent"."""
    p = Path(path)
    if p.exists() or p.is_symlink():
        return True
    if p.parent.is_dir():
        list_dir(p.parent, strict=False)
    return False


def list_files(folder: Path, suffixes: Optional[Iterable[str]] = None, report: Optional["RunReport"] = None,
               root: Optional[Path] = None, what: str = "file") -> list[Path]:
    """Regular files of ``folder`` (not recursive) whose suffix (case-insensitive) is in
    ``suffixes``; other files are reported as skipped (``not a <what>``), sub-folders too."""
    folder = Path(folder)
    return [folder / n for n in list_file_names(folder, suffixes, report, root, what)]


def list_file_names(folder: Path, suffixes: Optional[Iterable[str]] = None, report: Optional["RunReport"] = None,
                    root: Optional[Path] = None, what: str = "file") -> list[str]:
    """:func:`list_files` as file names (see :func:`list_dir_names`)."""
    folder = Path(folder)
    base = root if root is not None else folder
    dirs, files = list_dir_names(folder, report, base)
    wanted = None if suffixes is None else {s.lower() for s in suffixes}
    out = []
    for f in files:
        if wanted is None or name_suffix(f).lower() in wanted:
            out.append(f)
        elif report is not None:
            report.skip(rel(folder / f, base), f"not {what} (extension {name_suffix(f) or 'none'})")
    if report is not None:
        for d in dirs:
            report.skip(rel(folder / d, base) + "/", "unexpected sub-folder")
    return out


def subdirs(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder`` (no error when it cannot be listed; special files
    are ignored here: discovery only looks, the parsers refuse them)."""
    try:
        return list_dir(folder, strict=False, check_names=False)[0]
    except (MissingInputError, CorruptInputError):
        return []


def walk_dirs(root: Path, depth: int = 3) -> Iterator[Path]:
    """Visible folders below ``root``, breadth first, at most ``depth`` levels down (discovery)."""
    frontier = [root]
    for _ in range(depth):
        nxt = []
        for d in frontier:
            for c in subdirs(d):
                yield c
                nxt.append(c)
        frontier = nxt


def walk_files(root: Path, report: Optional["RunReport"] = None) -> Iterator[Path]:
    """Every regular file below ``root`` (depth first, sorted by name bytes, links to folders not
    followed); junk and special files are left out (and reported)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            dirs, files = list_dir(folder, report, root, check_names=False)
        except (MissingInputError, CorruptInputError):
            continue
        yield from files
        stack.extend(reversed([d for d in dirs if not d.is_symlink()]))


def case_collisions(paths: Iterable[Path]) -> list[list[Path]]:
    """Groups (of two or more) of ``paths`` in one folder whose names differ only in case."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for p in paths:
        groups.setdefault((os.fspath(p.parent), p.name.casefold()), []).append(p)
    return [sorted(g, key=_sort_key) for g in groups.values() if len(g) > 1]


def refuse_case_collisions(paths: Iterable[Path], what: str = "image") -> None:
    """Error naming both files when two of ``paths`` in one folder differ only in case
    (``X.jpg`` / ``x.jpg``): which one the annotation means cannot be told, and keeping both
    would convert one picture twice. For sources whose files are named by annotations."""
    for group in case_collisions(paths):
        raise CorruptInputError(f"{show(group[-1])}: two {what + ' ' if what else ''}files whose names differ only in case: "
                                + ", ".join(show(g.name) for g in group) + "; remove one")


def refuse_case_collisions_in(folder: Path, names: Iterable[str], what: str = "image") -> None:
    """:func:`refuse_case_collisions` for file names of one folder."""
    seen: dict[str, list[str]] = {}
    for n in names:
        seen.setdefault(n.casefold(), []).append(n)
    refuse_case_collisions([Path(folder) / n for g in seen.values() if len(g) > 1 for n in g], what)


def index_by_stem(paths: Iterable[Path], what: str = "image", key=lambda p: p.stem) -> dict[str, Path]:
    """``key(path)`` -> path; two paths with one key (``X.jpg`` / ``X.JPG`` / ``X.png``) are an
    error naming both, never one picked silently."""
    out: dict[str, Path] = {}
    for p in paths:
        k = key(p)
        if k in out:
            a, b = sorted((out[k], p), key=_sort_key)
            raise CorruptInputError(
                f"{show(b)}: two {what} files for {show(k)!r}: {show(a.name)} and {show(b.name)} "
                "(names differing only in case or extension); remove one"
            )
        out[k] = p
    return out


def index_names_by_stem(folder: Path, names: Iterable[str], what: str = "image") -> dict[str, str]:
    """:func:`index_by_stem` for file names of one folder: stem -> name (same error, naming both)."""
    out: dict[str, str] = {}
    for n in names:
        k = name_stem(n)
        if k in out:
            index_by_stem([Path(folder) / out[k], Path(folder) / n], what)  # raises, naming both
        out[k] = n
    return out


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the image header (no pixel decode)."""
    from PIL import Image, UnidentifiedImageError

    require_regular(path, "image file")
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise CorruptInputError(f"{show(path)}: not a readable image ({type(e).__name__}: {e})") from None


__all__ = [
    "IMAGE_SUFFIXES", "JUNK_DIRS", "case_collisions", "decode_text", "image_size", "index_by_stem", "is_junk",
    "list_dir", "list_files", "read_bytes", "read_lines", "read_text", "rel", "require_regular", "show",
    "refuse_case_collisions", "subdirs", "walk_dirs", "walk_files", "case_twins", "refuse_case_twin",
    "undecodable", "refuse_undecodable", "present", "forget_listings",
]
