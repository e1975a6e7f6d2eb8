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

__all__ = ["FORMULA_START", "csv_cell", "write_csv"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> str:
    """`value` as a CSV cell that a spreadsheet shows as text and never runs."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """A header row, then every row through `csv_cell`; returns the number of data rows written."""
    writer = csv.writer(out)
    writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        n += 1
    return n
