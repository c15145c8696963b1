"""YOLO txt labels (Ultralytics / darknet style) and their class-name files.

Label files
-----------
One object per line: ``cls xc yc w h [extra columns ...]``, whitespace separated.

* ``cls`` is a 0-based integer class index (``"1.0"`` is accepted as 1; anything fractional is not).
* ``xc yc w h`` are the box centre and size **normalized** by the image width/height, i.e. the
  native convention :attr:`unihema_data.boxes.BoxFormat.YOLO`. They are returned as floats exactly as
  written (no rounding, no clipping, no conversion) - the core converts them.
* Extra columns (dataset-specific, e.g. LeukemiaAttri's morphology codes) are returned as the verbatim
  token strings; the caller decides what they mean.
* Blank / whitespace-only lines (e.g. trailing newlines) are ignored; an empty file means "no objects".

Strictness: a wrong column count, a column count that changes inside a file, a non-numeric or
non-finite token, a negative or out-of-range class id, or a coordinate outside ``[-tol, 1 + tol]``
(sizes outside ``[0, 1 + tol]``; default ``tol`` = 0.02, so values such as pixel coordinates are
caught) raise :class:`~unihema_data.adapters.base.CorruptInputError` naming the file and the
1-based line number.

Class-name files
----------------
* ``classes.txt`` (written by labelImg next to the labels): one name per line, index = line order.
* ``data.yaml`` / ``<name>.yaml`` (Ultralytics data config): ``names`` is a list or a dict
  ``{index: name}`` (indices must be exactly ``0..n-1``); ``nc``, when present, must equal the
  number of names.

Pairing (:func:`iter_yolo_pairs`): ``images/<split>/<stem>.<ext>`` with ``labels/<split>/<stem>.txt``
(or ``images/<stem>.<ext>`` with ``labels/<stem>.txt`` when there are no split folders). ``classes.txt``
inside a label folder is a class-name file, never a label file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import yaml

from ..errors import CorruptInputError
from . import disk

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
CLASS_FILE_NAMES = ("classes.txt",)
DEFAULT_TOL = 0.02


@dataclass(frozen=True)
class YoloRow:
    """One parsed label line. ``box`` = ``(xc, yc, w, h)`` normalized, verbatim floats."""

    cls: int
    box: tuple[float, float, float, float]
    extra: tuple[str, ...]
    line: int  # 1-based line number in the file


@dataclass(frozen=True)
class YoloFile:
    path: Path
    rows: tuple[YoloRow, ...]
    #: number of columns of every line (``None`` for a file without objects)
    columns: Optional[int]


def parse_yolo(
    path: Path,
    columns: Iterable[int] = (5,),
    num_classes: Optional[int] = None,
    tol: float = DEFAULT_TOL,
) -> YoloFile:
    """Parse one YOLO label file. ``columns``: allowed total column counts (all lines of a file
    must have the same count); ``num_classes``: class ids must be ``< num_classes`` when given."""
    path = Path(path)
    allowed = tuple(sorted(set(columns)))
    text = disk.read_text(path, "YOLO label file")  # type checked, BOM/UTF-16 read, NUL refused
    path_s = disk.show(path)
    rows: list[YoloRow] = []
    ncols: Optional[int] = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        toks = raw.split()
        if not toks:
            continue
        where = f"{path_s}: line {lineno}"
        if len(toks) not in allowed:
            want = " or ".join(str(c) for c in allowed)
            raise CorruptInputError(f"{where}: {len(toks)} columns, expected {want}: {raw.strip()!r}")
        if ncols is None:
            ncols = len(toks)
        elif len(toks) != ncols:
            raise CorruptInputError(
                f"{where}: {len(toks)} columns but earlier lines of this file have {ncols}: {raw.strip()!r}"
            )
        cls = _class_id(toks[0], where, num_classes)
        vals = []
        for name, tok in zip(("xc", "yc", "w", "h"), toks[1:5]):
            v = _number(tok, where, name)
            lo = 0.0 if name in ("w", "h") else -tol
            if not lo <= v <= 1.0 + tol:
                hint = " (absolute pixels? YOLO boxes must be normalized to [0, 1])" if v > 1.5 else ""
                raise CorruptInputError(f"{where}: {name}={tok} is outside [{lo:g}, 1]{hint}")
            vals.append(v)
        rows.append(YoloRow(cls, (vals[0], vals[1], vals[2], vals[3]), tuple(toks[5:]), lineno))
    return YoloFile(path, tuple(rows), ncols)


def first_row_columns(path: Path) -> Optional[int]:
    """Column count of the first non-blank line of a label file (``None`` if it has none). Cheap
    pre-scan helper for datasets whose column count varies between releases."""
    for raw in disk.read_text(path, "YOLO label file").split("\n"):
        toks = raw.split()
        if toks:
            return len(toks)
    return None


def _class_id(tok: str, where: str, num_classes: Optional[int]) -> int:
    v = _number(tok, where, "class id")
    if not float(v).is_integer():
        raise CorruptInputError(f"{where}: class id {tok!r} is not an integer")
    cls = int(v)
    if cls < 0 or (num_classes is not None and cls >= num_classes):
        rng = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise CorruptInputError(f"{where}: class id {cls} is out of range ({rng})")
    return cls


def _number(tok: str, where: str, what: str) -> float:
    try:
        v = float(tok)
    except ValueError:
        raise CorruptInputError(f"{where}: {what} {tok!r} is not a number") from None
    if not math.isfinite(v):
        raise CorruptInputError(f"{where}: {what} {tok!r} is not finite")
    return v


# --------------------------------------------------------------------------- class names
def read_classes_txt(path: Path) -> list[str]:
    """Names of a ``classes.txt``: one per line, surrounding whitespace stripped, blank lines
    (trailing or not) ignored."""
    text = disk.read_text(path, "class-name file")
    names = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not names:
        raise CorruptInputError(f"{path}: class-name file lists no classes")
    return names


def read_yaml_names(path: Path, required: bool = True) -> Optional[list[str]]:
    """``names`` of an Ultralytics data YAML (list, or dict ``{0: name, ...}``), checked against
    ``nc``. Returns ``None`` when the file has no ``names`` and ``required`` is false."""
    try:
        data = yaml.safe_load(disk.read_text(path, "YAML data config"))
    except yaml.YAMLError as e:
        raise CorruptInputError(f"{path}: not a readable YAML file ({e})") from None
    if not isinstance(data, dict) or "names" not in data:
        if required:
            raise CorruptInputError(f"{path}: no 'names' list in the YAML data config")
        return None
    raw = data["names"]
    if isinstance(raw, dict):
        try:
            keys = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise CorruptInputError(f"{path}: 'names' keys must be integer class ids: {list(raw)}") from None
        if keys != list(range(len(keys))):
            raise CorruptInputError(f"{path}: 'names' ids must be 0..{len(keys) - 1}, got {keys}")
        names = [raw[k] if k in raw else raw[str(k)] for k in keys]
    elif isinstance(raw, (list, tuple)):
        names = list(raw)
    else:
        raise CorruptInputError(f"{path}: 'names' must be a list or a mapping, got {type(raw).__name__}")
    names = [str(n).strip() for n in names]
    if not names or any(not n for n in names):
        raise CorruptInputError(f"{path}: 'names' is empty or contains an empty name: {names}")
    nc = data.get("nc")
    if nc is not None and nc != len(names):
        raise CorruptInputError(f"{path}: nc: {nc} but 'names' lists {len(names)} classes")
    return names


# --------------------------------------------------------------------------- pairing
@dataclass(frozen=True)
class YoloPair:
    split: str            # split folder name, verbatim ("" when images sit directly in images/)
    image: Path
    label: Optional[Path]  # None when the label file does not exist


def iter_yolo_pairs(images_dir: Path, labels_dir: Path, report=None, root: Optional[Path] = None) -> Iterator[YoloPair]:
    """Image/label pairs of an ``images/`` + ``labels/`` tree, sorted by (split, file name).
    Raises :class:`CorruptInputError` for a label file whose image is missing (orphan label) and
    for two images of one stem (``X.jpg`` / ``X.JPG``). Junk and special files are skipped (and
    recorded in ``report`` when given)."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    root = root or images_dir.parent
    groups: list[tuple[str, Path, Path]] = []
    dirs, top_files = disk.list_dir(images_dir, report, root)
    if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in top_files):
        groups.append(("", images_dir, labels_dir))
    for sub in dirs:
        groups.append((sub.name, sub, labels_dir / sub.name))
    for split, idir, ldir in groups:
        imgs = _images_in(idir, report, root)
        stems = disk.index_by_stem(imgs, "image")
        for lab in label_files(ldir, report, root):
            if lab.stem not in stems:
                raise CorruptInputError(f"{disk.show(lab)}: label file has no image {disk.show(idir)}/{disk.show(lab.stem)}.*")
        for img in imgs:
            lab = ldir / f"{img.stem}.txt"
            yield YoloPair(split, img, lab if (lab.exists() or lab.is_symlink()) else None)


def label_files(folder: Path, report=None, root: Optional[Path] = None) -> list[Path]:
    """``*.txt`` label files of a folder, excluding class-name files (``classes.txt``)."""
    if not folder.is_dir():
        return []
    _dirs, files = disk.list_dir(folder, report, root or folder)
    return [p for p in files if p.suffix.lower() == ".txt" and p.name.lower() not in CLASS_FILE_NAMES]


def _images_in(folder: Path, report=None, root: Optional[Path] = None) -> list[Path]:
    """Image files of ``folder`` (none when it does not exist). A FIFO, socket or dangling link
    among them is an error naming *it* (never swallowed: the image would otherwise vanish and
    its label file be reported as the culprit)."""
    if not folder.is_dir():
        return []
    _dirs, files = disk.list_dir(folder, report, root or folder)
    return [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]


# --------------------------------------------------------------------------- writing (fakes, exports)
def format_row(cls: int, box: Sequence[float], extra: Sequence[object] = (), digits: int = 6) -> str:
    """One label line, coordinates with ``digits`` decimals (the real TXL-PBC files use 6)."""
    coords = " ".join(f"{float(v):.{digits}f}" for v in box)
    tail = "".join(f" {e}" for e in extra)
    return f"{int(cls)} {coords}{tail}"


def write_yolo(path: Path, lines: Sequence[str], trailing_newline: bool = True) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines)
    if lines and trailing_newline:
        text += "\n"
    Path(path).write_text(text, encoding="utf-8")


def coco_to_yolo(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in box)
    return ((x + w / 2) / width, (y + h / 2) / height, w / width, h / height)


def yolo_to_coco(box: Sequence[float], width: int, height: int) -> list[float]:
    xc, yc, w, h = (float(v) for v in box)
    return [xc * width - w * width / 2, yc * height - h * height / 2, w * width, h * height]
