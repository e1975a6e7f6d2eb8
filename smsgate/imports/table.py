"""A CSV file read the way clinics' files really are, for any import (contacts now, appointments next).

What arrives is what a practice system or Excel wrote: UTF-8 with or without a byte-order mark, or
Windows-1252 (Excel's "CSV" on a Western Windows), now and then UTF-16; `,` or `;` (Excel where the
decimal mark is a comma) or a tab between cells; a header row with its own names, in any order and case;
blank lines; trailing empty cells. `CsvTable` finds out which, says so (`Layout`), maps the header to the
values an importer wants (`Target`s, or an explicit `--map`), and yields each row with the row number a
spreadsheet shows, or a `RowError` with a reason a person can act on. The file is streamed: only the
current row is in memory, whatever its size.

Importer-specific rules (what a phone number is, how a name splits) are not here; they live with each
importer.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from smsgate.spreadsheet import FORMULA_START, CsvSheet

__all__ = ["DELIMITERS", "CsvTable", "ErrorSheet", "FileError", "Layout", "RowError", "SourceRow", "Target",
           "header_key"]

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
IGNORE = "-"
_SCAN_CHUNK = 1 << 20
_SEPARATORS = re.compile(r"[\s_.\-/:]+")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"), (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
         (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"))
_WORKBOOKS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


class FileError(ValueError):
    """The file as a whole cannot be imported (not text, no header, a column it must have is missing)."""


@dataclass(frozen=True)
class Target:
    """A value an importer reads from a column, found by any of `aliases` (compared as `header_key`s)."""

    name: str
    aliases: tuple[str, ...]
    required: bool = False


@dataclass(frozen=True)
class Layout:
    """What was found out about a file, stated in the import's report."""

    encoding: str  # as a person would name it: "UTF-8", "UTF-8 with BOM", "Windows-1252", "UTF-16"
    delimiter: str
    header: tuple[str, ...]
    columns: dict[str, str]  # header cell -> target name, in the file's order
    ignored: tuple[str, ...]  # header cells no target reads

    @property
    def delimiter_name(self) -> str:
        return DELIMITERS.get(self.delimiter, repr(self.delimiter))


@dataclass(frozen=True)
class SourceRow:
    row: int  # the row number a spreadsheet shows for it (the header is row 1 when it is the first line)
    cells: tuple[str, ...]  # as in the file, for an error report
    values: dict[str, str]  # target name -> the cell, trimmed ("" when blank)


@dataclass(frozen=True)
class RowError:
    row: int
    reason: str
    cells: tuple[str, ...] = ()

    def line(self) -> str:
        return f"row {self.row}: {self.reason}"


def header_key(text: str) -> str:
    """A header cell as compared with aliases: case, spacing and `_ - . /` aside ("First_Name" == "first name")."""
    return _SEPARATORS.sub(" ", text.replace("\ufeff", "").strip().strip('"').casefold()).strip()


def _unquote(cell: str) -> str:
    """A cell written by `smsgate.spreadsheet.csv_cell` (`'+15555550104`) read back as the text it was."""
    return cell[1:] if cell.startswith("'") and cell[1:2] and cell[1:2] in FORMULA_START else cell


def detect_encoding(source: BinaryIO) -> tuple[str, str]:
    """(codec, name) of a seekable binary file: a BOM says it; else the whole file is tried as UTF-8, then
    as Windows-1252, chunk by chunk (so a stray byte at row 90,000 is found before row 1 is stored)."""
    start = source.tell()
    head = source.read(8)
    source.seek(start)
    if head.startswith(_WORKBOOKS):
        raise FileError("this is an Excel workbook, not a CSV file: in Excel use File > Save As > "
                        "\"CSV UTF-8 (Comma delimited)\" and import that file")
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            return codec, name
    for codec, name in (("utf-8", "UTF-8"), ("cp1252", "Windows-1252")):
        decoder = codecs.getincrementaldecoder(codec)()
        offset = 0
        try:
            while chunk := source.read(_SCAN_CHUNK):
                if b"\x00" in chunk:
                    raise FileError("the file contains NUL bytes, so it is not a CSV text file (a spreadsheet "
                                    "or a UTF-16 file without a byte-order mark?); save it as CSV UTF-8")
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            bad = offset + exc.start
            if codec == "cp1252":
                raise FileError(f"the file is neither UTF-8 nor Windows-1252 text (byte {bad}); save it as "
                                "\"CSV UTF-8\" and import it again") from None
            continue
        finally:
            source.seek(start)
        return codec, name
    raise FileError("the file's encoding could not be told")  # pragma: no cover  (cp1252 raises above)


def sniff_delimiter(first_line: str) -> str:
    """The separator of a header line: the one of `,` `;` tab that occurs most outside quotes (`,` if none)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvTable:
    """A seekable CSV file with its layout found out; iterate `rows()` once, in order.

    `mapping` (header cell -> target name, or "-" to ignore the column) is applied first; the columns it
    leaves are matched to targets by alias, the first alias in a target's list winning when two columns
    would both fit. `dynamic_prefixes` are target names the importer accepts in a mapping beyond its
    targets (e.g. "field." for "MRN=field.mrn"); a header that already reads so is mapped as written.
    """

    def __init__(self, source: BinaryIO, targets: Sequence[Target], *, mapping: Mapping[str, str] | None = None,
                 dynamic_prefixes: Sequence[str] = ()) -> None:
        self.source = source
        self.targets = list(targets)
        self.dynamic_prefixes = tuple(dynamic_prefixes)
        self.codec, encoding = detect_encoding(source)
        self.start = source.tell()
        self.size = _size(source)
        self._text = io.TextIOWrapper(source, encoding=self.codec, newline="")
        self._line_no = 0
        self._lines = self._count_lines()
        first = self._first_line()
        delimiter = sniff_delimiter(first)
        self._rewind()
        self._reader = csv.reader(self._lines, delimiter=delimiter)
        header_row = self._header()
        self.header_row_number = self._line_no
        header = tuple(cell.strip() for cell in header_row)
        self._index, columns, ignored = self._map(header, mapping or {})
        self.layout = Layout(encoding, delimiter, header, columns, ignored)

    def preview(self, n: int) -> list[SourceRow | RowError]:
        """The first `n` rows (for a page that shows the file before importing it)."""
        out: list[SourceRow | RowError] = []
        for item in self.rows():
            out.append(item)
            if len(out) >= n:
                break
        return out

    @property
    def position(self) -> int:
        """Bytes read so far (read ahead in chunks: for a progress bar, not for resuming)."""
        try:
            return self.source.tell() - self.start
        except (OSError, ValueError):
            return 0

    def _count_lines(self) -> Iterator[str]:
        for line in self._text:
            self._line_no += 1
            yield line

    def _first_line(self) -> str:
        for line in self._lines:
            if line.strip():
                return line
        raise FileError("the file is empty: it needs a header row (e.g. number,first_name,last_name) and rows")

    def _rewind(self) -> None:
        self._text.detach()
        self.source.seek(self.start)
        self._text = io.TextIOWrapper(self.source, encoding=self.codec, newline="")
        self._line_no = 0
        self._lines = self._count_lines()

    def _header(self) -> list[str]:
        for row in self._reader:
            if any(cell.strip() for cell in row):
                return row
        raise FileError("the file has no header row")  # pragma: no cover  (_first_line found a line)

    def _target_names(self) -> set[str]:
        return {t.name for t in self.targets}

    def _check_target(self, name: str, column: str) -> str:
        name = name.strip()
        if name == IGNORE or name in self._target_names():
            return name
        for prefix in self.dynamic_prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                return name
        known = ", ".join([*(t.name for t in self.targets), *(p + "NAME" for p in self.dynamic_prefixes), IGNORE])
        raise FileError(f"the mapping gives column {column!r} the meaning {name!r}, which this import does not "
                        f"know; use one of: {known}")

    def _map(self, header: tuple[str, ...], mapping: Mapping[str, str]
             ) -> tuple[dict[str, int], dict[str, str], tuple[str, ...]]:
        keys = [header_key(h) for h in header]
        chosen: dict[int, str] = {}
        for column, meaning in mapping.items():
            wanted = header_key(column)
            if wanted not in keys:
                raise FileError(f"the mapping names the column {column!r}, which the file does not have; its "
                                f"columns are: {', '.join(h for h in header if h)}")
            chosen[keys.index(wanted)] = self._check_target(meaning, column)
        for i, key in enumerate(keys):
            if i in chosen:
                continue
            for prefix in self.dynamic_prefixes:
                if key.startswith(header_key(prefix)) and len(key) > len(header_key(prefix)):
                    chosen[i] = prefix + key[len(header_key(prefix)):].strip().replace(" ", "_")
        taken = set(chosen.values())
        for target in self.targets:
            if target.name in taken:
                continue
            ranked = [(target.aliases.index(key), i) for i, key in enumerate(keys)
                      if i not in chosen and key in target.aliases]
            if ranked:
                chosen[min(ranked)[1]] = target.name
                taken.add(target.name)
        by_target: dict[str, int] = {}
        for i, name in sorted(chosen.items()):
            if name == IGNORE:
                continue
            if name in by_target:
                raise FileError(f"both {header[by_target[name]]!r} and {header[i]!r} would be read as {name}; "
                                f"map one of them to '-' (e.g. --map \"{header[i]}=-\")")
            by_target[name] = i
        for target in self.targets:
            if target.required and target.name not in by_target:
                raise FileError(f"no column holds the {target.name}: the header is {', '.join(h for h in header if h)}."
                                f" Name the column with a mapping, e.g. --map \"{header[0]}={target.name}\"")
        columns = {header[i]: name for name, i in sorted(by_target.items(), key=lambda kv: kv[1])}
        ignored = tuple(h for i, h in enumerate(header) if h and i not in by_target.values())
        return by_target, columns, ignored

    def rows(self) -> Iterator[SourceRow | RowError]:
        """Each non-empty row after the header, as values by target, or the reason it cannot be read."""
        width = len(self.layout.header)
        index = self._index
        reader = self._reader
        while True:
            start = self._line_no + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RowError(start, f"the row cannot be read as CSV ({exc}); a cell this long or with an "
                                      "unmatched double quote must be fixed in the file")
                continue
            if not any(cell.strip() for cell in cells):
                continue
            raw = tuple(cells)
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                yield RowError(start, f"the row has {len(cells)} cells but the header has {width} columns: a "
                                      f"value that contains {self.layout.delimiter_name}s must be in double quotes",
                               raw)
                continue
            values = {name: _unquote(cells[i].strip()) if i < len(cells) else "" for name, i in index.items()}
            yield SourceRow(start, raw, values)


class ErrorSheet:
    """The rows that failed, with the reason beside each, as a CSV a person fixes and imports again.

    Cells go through `csv_cell`, as in every export (a hostile cell must not run in the spreadsheet that
    opens this file); `CsvTable` reads such a quoted cell back as it was."""

    def __init__(self, header: Sequence[str], out: TextIO | None, delimiter: str = ",") -> None:
        self.header = (*header, "reason")
        self.out = out
        self.delimiter = delimiter
        self._sheet: CsvSheet | None = None

    @property
    def written(self) -> int:
        return self._sheet.rows if self._sheet else 0

    def add(self, error: RowError) -> None:
        if self.out is None:
            return
        if self._sheet is None:
            self._sheet = CsvSheet(self.out, self.header, delimiter=self.delimiter)
        self._sheet.add([*error.cells, error.line()])


def _size(source: BinaryIO) -> int | None:
    try:
        here = source.tell()
        end = source.seek(0, io.SEEK_END)
        source.seek(here)
        return end - here
    except (OSError, ValueError):
        return None
