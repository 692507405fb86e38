"""Raw judgments as Parquet: the rows and columns of the CSV (evalhub.results.judgment_rows)
with types, for pandas, Polars or DuckDB. Times are ``timestamp[us, UTC]``, seconds on
screen a float (not rounded as in the CSV), ``gold`` and ``excluded`` booleans, the rest
text; null where the CSV has an empty cell.

Written a row group at a time (``ROW_GROUP_ROWS`` rows) from the same cursor as the CSV, so
memory stays flat however many judgments there are. Unlike the CSV it cannot stream as it
is read: a Parquet file ends with its footer (the schema and where each row group lies),
known only once every row is written, so the view writes it to a temporary file first.
No formula neutralising (evalhub.csv_safe) here: the columns are typed, and a spreadsheet
does not open Parquet and run a text cell as a formula, so the text is kept as it is."""

from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from annotate.models import Study
from evalhub.results.judgment_rows import CHUNK_ROWS, COLUMNS, JudgmentRow, judgment_rows

TIMESTAMP = pa.timestamp("us", tz="UTC")
TYPES = {
    "fetched_at": TIMESTAMP,
    "displayed_at": TIMESTAMP,
    "answered_at": TIMESTAMP,
    "on_screen_seconds": pa.float64(),
    "gold": pa.bool_(),
    "excluded": pa.bool_(),
}
SCHEMA = pa.schema([(name, TYPES.get(name, pa.string())) for name in COLUMNS])
ROW_GROUP_ROWS = 50_000
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


def _row_group(rows: list[JudgmentRow]) -> pa.Table:
    """One row group: the rows turned into typed columns."""
    columns = zip(*rows, strict=True)
    arrays = [pa.array(column, type=field.type) for column, field in zip(columns, SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def judgments_parquet_write(study: Study, out: BinaryIO, *, row_group_rows: int = ROW_GROUP_ROWS) -> int:
    """Write the study's judgments, oldest first, to ``out`` as Parquet, one row group per
    ``row_group_rows`` rows; return how many rows. ``out`` is left open."""
    written = 0
    with pq.ParquetWriter(out, SCHEMA) as writer:
        rows: list[JudgmentRow] = []
        for row in judgment_rows(study, chunk_size=min(row_group_rows, CHUNK_ROWS)):
            rows.append(row)
            if len(rows) == row_group_rows:
                writer.write_table(_row_group(rows))
                written += len(rows)
                rows = []
        if rows:
            writer.write_table(_row_group(rows))
            written += len(rows)
    return written
