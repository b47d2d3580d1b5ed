"""Rows as CSV text that is safe to open in a spreadsheet. Pure.

Quoting is the ``csv`` module's (a cell with a comma, quote or line break is quoted, quotes
doubled). A text cell a spreadsheet would read as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return: OWASP's "CSV injection") gets a leading ``'``, so
it is shown as the text it is; numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FORMULA_STARTS", "csv_rows", "safe_cell"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell: None is empty, text that starts like a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(columns: Sequence[str], rows: Iterable[dict[str, Any]], *, header: bool) -> str:
    """CSV lines (``\\r\\n`` ends, as RFC 4180) for ``rows``' ``columns``, the header first
    if ``header``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    writer.writerows([safe_cell(row.get(c)) for c in columns] for row in rows)
    return out.getvalue()
