"""The raw judgments as Parquet: the CSV's rows and columns, typed, written a row group at a
time to a temporary file that goes when the download ends."""

import csv
import io

import pyarrow as pa
import pyarrow.parquet as pq
from django.http import FileResponse

from evalhub.catalog.models import Prompt
from evalhub.results import views
from evalhub.results.judgments_parquet import judgments_parquet_write
from tests.results.conftest import ab_study, vote
from tests.results.test_judgments_csv import (
    HEADER,
    a_study_with_every_kind_of_row,
    alignment_with_one_judgment,
    download,
)

TEXT = ["study", "kind", "task_key", "prompt", "criterion", "annotator", "answer", "image_model"]
TEXT += ["left_model", "right_model", "choice", "winner_model", "source"]
UTC_MICROSECONDS = pa.timestamp("us", tz="UTC")


def parquet_of(client, study) -> pa.Table:
    """The Parquet file the researcher's browser receives, read back."""
    response = client.get(f"/results/studies/{study.pk}/judgments.parquet")
    assert response.status_code == 200, response
    return pq.read_table(io.BytesIO(b"".join(response.streaming_content)))


def as_csv_cell(name: str, value) -> str:
    """A Parquet value as the CSV writes the same cell."""
    if value is None:
        return ""
    if name in ("fetched_at", "displayed_at", "answered_at"):
        return value.isoformat()
    if name == "on_screen_seconds":
        return f"{value:.3f}"
    return str(value)


def test_the_columns_are_the_csvs_with_types(client, alice, db):
    """Same columns in the same order; times as UTC microseconds, seconds a float, flags
    booleans, the rest text."""
    client.force_login(alice)
    table = parquet_of(client, a_study_with_every_kind_of_row())
    assert table.column_names == HEADER.strip().split(",")
    types = {field.name: field.type for field in table.schema}
    assert [types[name] for name in ("fetched_at", "displayed_at", "answered_at")] == [UTC_MICROSECONDS] * 3
    assert types["on_screen_seconds"] == pa.float64()
    assert types["gold"] == types["excluded"] == pa.bool_()
    assert {types[name] for name in TEXT} == {pa.string()}


def test_the_rows_hold_the_csvs_values(client, alice, db):
    """Row for row, every value is the one the CSV writes (the seconds unrounded here)."""
    study = a_study_with_every_kind_of_row()
    client.force_login(alice)
    table = parquet_of(client, study)
    csv_rows = list(csv.DictReader(io.StringIO(download(client, study))))
    assert table.num_rows == len(csv_rows) == 6
    for parquet_row, csv_row in zip(table.to_pylist(), csv_rows, strict=True):
        assert {name: as_csv_cell(name, value) for name, value in parquet_row.items()} == csv_row
    assert 2.34567 in table.column("on_screen_seconds").to_pylist()


def test_absent_values_are_null(client, alice, db):
    """Where the CSV leaves a cell empty (no page figures; no sides outside A/B) the
    Parquet value is null, not an empty string."""
    alignment, now = alignment_with_one_judgment()
    client.force_login(alice)
    (row,) = parquet_of(client, alignment).to_pylist()
    absent = ("left_model", "right_model", "choice", "winner_model", "displayed_at", "on_screen_seconds")
    assert [row[name] for name in absent] == [None] * 6
    assert row["image_model"] and row["kind"] == "alignment" and row["fetched_at"] == now


def test_text_is_kept_as_written(client, alice, db):
    """No quote before a formula-like cell: Parquet is typed, and no spreadsheet runs it."""
    study = ab_study(1, name="=cmd")
    task = study.tasks.get()
    Prompt.objects.filter(pk=task.prompt_id).update(text="=HYPERLINK(1)")
    vote(study, {task: ["A"]})
    client.force_login(alice)
    (row,) = parquet_of(client, study).to_pylist()
    assert (row["study"], row["prompt"]) == ("=cmd", "=HYPERLINK(1)")


def test_rows_are_written_a_row_group_at_a_time(small_study):
    """One row group per ``row_group_rows`` rows, the last one holding the rest."""
    vote(small_study, {task: ["A", "B"] for task in list(small_study.tasks.all())[:3]})
    out = io.BytesIO()
    assert judgments_parquet_write(small_study, out, row_group_rows=4) == 6
    metadata = pq.ParquetFile(io.BytesIO(out.getvalue())).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [4, 2]


def test_a_study_without_judgments_is_an_empty_table(client, alice, small_study):
    """The columns and their types, no row."""
    client.force_login(alice)
    table = parquet_of(client, small_study)
    assert table.num_rows == 0 and table.column_names == HEADER.strip().split(",")


def test_the_download_is_an_attachment_whose_file_goes_when_it_ends(client, alice, small_study, monkeypatch):
    """Named after the study, Parquet's media type; the temporary file is closed (and so
    gone: it never had a name) once the response is read."""
    files = []

    def temporary_file():
        files.append(open_temporary())
        return files[-1]

    open_temporary = views.tempfile.TemporaryFile
    monkeypatch.setattr(views.tempfile, "TemporaryFile", temporary_file)
    vote(small_study, {small_study.tasks.first(): ["A", "B"]})
    client.force_login(alice)
    response = client.get(f"/results/studies/{small_study.pk}/judgments.parquet")
    assert isinstance(response, FileResponse)
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    name = f"judgments-study-{small_study.pk}.parquet"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert len(files) == 1 and not files[0].closed
    assert pq.read_table(io.BytesIO(b"".join(response.streaming_content))).num_rows == 2
    assert files[0].closed


def test_the_study_page_links_both_downloads(client, alice, small_study):
    """CSV and Parquet side by side, each saved as a file."""
    client.force_login(alice)
    page = client.get(f"/results/studies/{small_study.pk}/").content.decode()
    for ext in ("csv", "parquet"):
        assert f'<a href="/results/studies/{small_study.pk}/judgments.{ext}" download>' in page
