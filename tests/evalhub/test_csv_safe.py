"""CSV cells a spreadsheet would run as a formula are written as text (evalhub.csv_safe)."""

import csv
import io

import pytest

from evalhub.csv_safe import csv_cell, csv_writer


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("x")'])
def test_a_formula_start_gets_a_quote_in_front(text):
    """OWASP's rule: the cell is prefixed with a single quote."""
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["a dog", "", " =1", "1-2", "'=1", '{"a": 1}', -1, -2.5, 0, True, None])
def test_other_cells_are_unchanged(value):
    """Text that does not start a formula, and numbers (a negative number is data)."""
    assert csv_cell(value) == value


def test_the_writer_escapes_every_cell_of_every_row():
    """What a spreadsheet reads back: the quoted text, the numbers as written."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(["=cmd", "ok", -3])
    writer.writerows([["@x", 1.5]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["'=cmd", "ok", "-3"], ["'@x", "1.5"]]
