"""Raw judgments as CSV, one row per judgment, models resolved (evalhub.results.judgment_rows),
streamed: the header goes out before the query runs, then the rows a chunk at a time as
the database cursor yields them, so a million-judgment study neither waits for the whole
file nor holds it in memory. Researchers only: it names the models. Cells that a spreadsheet
would read as a formula (a prompt, study or annotator name starting with ``=``) are written
as text (evalhub.csv_safe)."""

import io
from collections.abc import Iterator

from annotate.models import Study
from evalhub.csv_safe import csv_writer
from evalhub.results.judgment_rows import CHUNK_ROWS, COLUMNS, JudgmentRow, judgment_rows

TIMES = [COLUMNS.index(name) for name in ("fetched_at", "displayed_at", "answered_at")]
SECONDS = COLUMNS.index("on_screen_seconds")


def csv_cells(row: JudgmentRow) -> list:
    """A row as the CSV writes it: times in ISO 8601, seconds with three decimals, an
    absent value as an empty cell (``csv`` writes ``None`` so)."""
    cells = list(row)
    for i in TIMES:
        cells[i] = cells[i] and cells[i].isoformat()
    cells[SECONDS] = None if row[SECONDS] is None else f"{row[SECONDS]:.3f}"
    return cells


def judgments_csv_chunks(study: Study, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[bytes]:
    """The study's judgments as UTF-8 CSV, oldest first: the header alone, then one chunk
    per ``chunk_rows`` rows, each written as soon as its rows are read."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")

    def drain() -> bytes:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text.encode()

    writer.writerow(COLUMNS)
    yield drain()
    pending = 0
    for row in judgment_rows(study, chunk_size=chunk_rows):
        writer.writerow(csv_cells(row))
        pending += 1
        if pending == chunk_rows:
            yield drain()
            pending = 0
    if pending:
        yield drain()
