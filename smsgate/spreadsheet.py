"""CSV that a spreadsheet opens as data: the one cell rule for every export (consent ledger, outbox, inbox).

Cells hold text people wrote (SMS bodies, names, evidence notes), and Excel, LibreOffice and Google Sheets
run a cell that starts with `=`, `+`, `-` or `@` (or a tab or CR before one) as a formula: `=HYPERLINK(...)`
leaks data when clicked, `=cmd|...` once ran programs (OWASP "CSV Injection"). So such a cell gets a `'`
in front, which spreadsheets read as "this is text".

E.164 phone numbers (`+15555550104`) get the quote too, deliberately. Bare, a spreadsheet reads the cell
as the number 15555550104: the `+` is gone and a long number shows as 1.56E+10, so the auditor reading
the consent ledger sees a number that is not the patient's. Quoted, the cell is the text `+15555550104`.
A script reading the file sees the `'` and strips one leading quote before a `=+-@` (or tab/CR/LF);
that is the whole rule, with no exception for text that merely looks safe.

Numbers stored as numbers (ids, part counts) are written as they are: they are ours, not people's text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

__all__ = ["FORMULA_START", "CsvSheet", "csv_cell", "write_csv"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> str:
    """`value` as a CSV cell that a spreadsheet shows as text and never runs."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class CsvSheet:
    """A header row, then rows one at a time through `csv_cell`: for a file filled while a long job runs
    (an import's rows with errors), in the separator of the file it answers."""

    def __init__(self, out: TextIO, columns: Sequence[str], *, delimiter: str = ",") -> None:
        self._writer = csv.writer(out, delimiter=delimiter)
        self._writer.writerow([csv_cell(c) for c in columns])
        self.rows = 0

    def add(self, row: Sequence[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])
        self.rows += 1


def write_csv(out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """A header row, then every row through `csv_cell`; returns the number of data rows written."""
    sheet = CsvSheet(out, columns)
    for row in rows:
        sheet.add(row)
    return sheet.rows
