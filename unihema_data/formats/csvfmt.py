"""Strict reading of small annotation CSV files.

Conventions:
* Encoding UTF-8 (a leading byte-order mark is tolerated) or UTF-16 with a byte-order mark; a
  NUL byte or invalid UTF-8 is refused naming the file (:func:`unihema_data.formats.disk.read_text`). LF and CRLF line endings are both
  accepted (the standard :mod:`csv` module handles quoting and embedded commas).
* The first non-empty line is the header. Cells and header names are returned verbatim except
  that surrounding whitespace is stripped (so ``"1,2\\r"`` and ``"1, 2"`` give ``"2"``).
* Blank lines are skipped; every other row must have exactly as many cells as the header.
* Line numbers are 1-based physical line numbers of the file, so error messages can point at
  the exact line (``<file>:<line>: ...``).

Errors: a missing file raises :class:`~unihema_data.adapters.base.MissingInputError`; anything
unparseable raises :class:`~unihema_data.adapters.base.CorruptInputError`; both name the file.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from ..errors import CorruptInputError, MissingInputError
from . import disk


@dataclass
class CsvRow:
    """One data row: ``line`` is its 1-based line number in the file; ``values`` by column name."""

    line: int
    values: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.values[key]


@dataclass
class CsvTable:
    path: Path
    header: list[str]
    rows: list[CsvRow] = field(default_factory=list)

    def __iter__(self) -> Iterator[CsvRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, row: CsvRow) -> str:
        """``<file>:<line>`` of a row, for error messages."""
        return f"{self.path}:{row.line}"


def read_csv(
    path: Path | str,
    header_variants: Optional[Sequence[Sequence[str]]] = None,
    required: Iterable[str] = (),
    delimiter: str = ",",
) -> CsvTable:
    """Read ``path`` strictly.

    ``header_variants``: when given, the header must equal one of these column lists exactly
    (order included); the returned :attr:`CsvTable.header` is the variant found.
    ``required``: columns that must be present (checked in addition to the variants).
    """
    path = Path(path)
    # file type checked first (a FIFO never blocks); UTF-8 with or without BOM and UTF-16 with a
    # BOM are read, NUL bytes and non-UTF-8 text are refused naming the file
    text = disk.decode_text(disk.read_bytes(path, "CSV file"), disk.show(path), "CSV file")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: Optional[list[str]] = None
    table: Optional[CsvTable] = None
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            cells = [c.strip() for c in cells]
            if header is None:
                header = cells
                _check_header(path, header, header_variants, required)
                table = CsvTable(path, header)
                continue
            if len(cells) != len(header):
                raise CorruptInputError(
                    f"{path}:{line}: expected {len(header)} comma-separated fields "
                    f"({','.join(header)}), found {len(cells)}: {delimiter.join(cells)!r}"
                )
            assert table is not None
            table.rows.append(CsvRow(line, dict(zip(header, cells))))
    except csv.Error as e:
        raise CorruptInputError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    if table is None:
        raise CorruptInputError(f"{path}: empty file (no header line)")
    return table


def _check_header(path: Path, header: list[str], variants, required) -> None:
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise CorruptInputError(f"{path}:1: duplicate column names {dup} in header {','.join(header)!r}")
    if variants is not None and not any(list(v) == header for v in variants):
        expected = " or ".join(repr(",".join(v)) for v in variants)
        raise CorruptInputError(f"{path}:1: unexpected header {','.join(header)!r}; expected {expected}")
    missing = [c for c in required if c not in header]
    if missing:
        raise CorruptInputError(f"{path}:1: header {','.join(header)!r} lacks column(s) {', '.join(missing)}")


def write_csv(path: Path | str, header: Sequence[str], rows: Iterable[Sequence[object]], newline: str = "\n") -> None:
    """Write a plain unquoted-when-possible CSV (used by fake-data generators); ``newline`` sets
    the line ending (``"\\r\\n"`` to imitate Windows-made files)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(list(header))
    for r in rows:
        w.writerow([str(v) for v in r])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue().encode("utf-8"))
