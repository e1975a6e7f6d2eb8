"""Imports from the files clinics have: a reader for messy CSV files (`table`), and the rules that turn its
rows into contacts (`contacts`). The appointments import will reuse `table`.

May import: `smsgate.queue`, `smsgate.numbers`, `smsgate.names`, `smsgate.spreadsheet` and the standard
library; never the top layer (cli, web, modemd, gateway). The CLI and the web page are thin over it.
"""

from .contacts import TARGETS, ContactImport, ImportReport, RowChange, open_table, parse_mapping
from .table import CsvTable, FileError, Layout, RowError, SourceRow, Target

__all__ = [
    "TARGETS",
    "ContactImport",
    "CsvTable",
    "FileError",
    "ImportReport",
    "Layout",
    "RowChange",
    "RowError",
    "SourceRow",
    "Target",
    "open_table",
    "parse_mapping",
]
