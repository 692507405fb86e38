"""CSV files a spreadsheet can open without running anything in them.

A text cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return,
which some spreadsheets skip before reading one of those) is taken for a formula when the
file is opened: a prompt text such as ``=HYPERLINK("http://…", "click")`` would be live in
a researcher's spreadsheet. Every CSV the app writes goes through :func:`csv_writer`, which
prefixes such a cell with a single quote, as OWASP's "CSV Injection" page recommends; the
spreadsheet shows the quote and treats the rest as text. Numbers (ints, floats) are written
as they are: a negative number is data, not a formula.
"""

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` with a single quote in front if it is text a spreadsheet would read as a
    formula; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """A ``csv.writer`` whose rows pass through :func:`csv_cell`."""

    def __init__(self, out: TextIO, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: TextIO, **options) -> SafeWriter:
    """A CSV writer for a file people open in a spreadsheet (``options`` as for
    ``csv.writer``)."""
    return SafeWriter(out, **options)
