"""CSV writing safe against formula injection, and the reader that undoes its escaping.

Every CSV the platform writes goes through :func:`csv_row` (or :class:`CsvWriter`), and
every CSV it reads back through :func:`read_csv`, so an export re-imports to the very
same values.

Writing (OWASP "CSV injection"):

- A cell a spreadsheet would run as a formula, one starting with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return (or their full-width forms U+FF1D, U+FF0B, U+FF0D and
  U+FF20, which some spreadsheets also take for formulas), gets a single quote in front:
  ``=1+2`` is written ``'=1+2``.
- A plain decimal number is left alone, so negative numbers stay numbers in a spreadsheet:
  ``-1``, ``-0.5``, ``-1.5e-07`` are written as they are (not ``-1+2`` nor ``-inf``).
- A cell that already starts with a single quote, or starts or ends with whitespace, is
  escaped the same way (``'x`` is written ``''x``), so that the reader can tell the escape
  from the data and from whitespace that a hand-written file is allowed to carry.
- A field holding the delimiter, a double quote, a carriage return or a line feed is put
  in double quotes (inner quotes doubled), so a bare CR in a value is data, not a line end.

Reading: a cell whose first character is a single quote loses that one quote and is taken
verbatim; any other cell has surrounding whitespace removed (hand-written files often have
``a, b``). A value starting with a single quote in a hand-written file must therefore be
written with two.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

__all__ = [
    "CSV_FORMULA_PREFIXES",
    "CsvFormatError",
    "CsvReader",
    "CsvWriter",
    "csv_escape",
    "csv_row",
    "csv_unescape",
    "read_csv",
]

CSV_FORMULA_PREFIXES = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, plus the
full-width forms)."""

_ESCAPE = "'"
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_escape(value: object) -> str:
    """``value`` as cell text a spreadsheet shows as text: ``None`` is empty, booleans are
    ``true``/``false``, and a formula-like value gets a leading single quote (see module)."""
    text = _text(value)
    if not text:
        return text
    first = text[0]
    if first in CSV_FORMULA_PREFIXES and not _NUMBER.fullmatch(text):
        return _ESCAPE + text
    if first == _ESCAPE or first.isspace() or text[-1].isspace():
        return _ESCAPE + text
    return text


def csv_unescape(cell: str) -> str:
    """The value behind a cell :func:`csv_escape` wrote (or a hand-written one): one
    leading single quote removed and the rest verbatim, else the cell without surrounding
    whitespace."""
    if cell.startswith(_ESCAPE):
        return cell[1:]
    return cell.strip()


def _quote(cell: str) -> str:
    if _NEEDS_QUOTES.search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_row(cells: Iterable[object], *, lineterminator: str = "\n") -> str:
    """One CSV record: each cell escaped (:func:`csv_escape`), quoted where needed."""
    record = ",".join(_quote(csv_escape(c)) for c in cells)
    # A record of one empty cell would be a blank line, which readers skip.
    return (record or '""') + lineterminator


class CsvWriter:
    """Writes escaped records to a text stream (open files with ``newline=""``)."""

    def __init__(self, stream: TextIO, *, lineterminator: str = "\n") -> None:
        """Write to ``stream``, ending records with ``lineterminator``."""
        self.stream = stream
        self.lineterminator = lineterminator

    def writerow(self, cells: Iterable[object]) -> None:
        """Write one record."""
        self.stream.write(csv_row(cells, lineterminator=self.lineterminator))

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write many records."""
        for row in rows:
            self.writerow(row)


class CsvFormatError(ValueError):
    """A CSV file the reader cannot take apart; ``line`` is the physical line (1-based)."""

    def __init__(self, line: int, message: str) -> None:
        """``message`` about ``line``."""
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class CsvReader:
    """The header of a CSV file and an iterator over its records (see :func:`read_csv`)."""

    def __init__(self, reader: Iterator[list[str]], line_num: Callable[[], int]) -> None:
        """Read the header from ``reader``; ``line_num()`` is the reader's physical line."""
        self._reader = reader
        self._line_num = line_num
        try:
            first = next(reader, [])
        except csv.Error as exc:
            raise CsvFormatError(line_num(), str(exc)) from exc
        if first and first[0].startswith("\ufeff"):
            first[0] = first[0][1:]
        self.header: list[str] = [csv_unescape(h) for h in first]
        """The column names (unescaped, stripped; a byte-order mark dropped)."""

    def missing(self, row: dict[str, str]) -> list[str]:
        """The columns a record of this reader has no cell for (a short record)."""
        return [c for c in self.header if c not in row]

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``(line, {column: value})`` per record; ``line`` is where the record ends."""
        width = len(self.header)
        try:
            for cells in self._reader:
                if not cells:
                    continue
                if len(cells) > width:
                    raise CsvFormatError(
                        self._line_num(), "the record has more cells than the header"
                    )
                values = [csv_unescape(c) for c in cells]
                yield self._line_num(), dict(zip(self.header, values, strict=False))
        except csv.Error as exc:
            raise CsvFormatError(self._line_num(), str(exc)) from exc


def read_csv(source: str | Iterable[str]) -> CsvReader:
    """Open CSV text (a string, or a file opened with ``newline=""``) for reading.

    The header's names and every value are unescaped (:func:`csv_unescape`); a record
    shorter than the header lacks the keys of its missing trailing cells (so a caller blames
    the missing cells, not what an empty value would fail: :meth:`CsvReader.missing`); blank
    lines are skipped. :class:`CsvFormatError` for a
    malformed file (an unclosed quote, text after a closing quote) or a record longer
    than the header.
    """
    stream = io.StringIO(source, newline="") if isinstance(source, str) else source
    reader = csv.reader(stream, strict=True)
    return CsvReader(reader, lambda: reader.line_num)
