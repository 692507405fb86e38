"""The raw judgments CSV: one row per judgment with the models on each side resolved,
streamed a chunk at a time as the rows are read."""

import csv
import io
import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models.query import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from annotate.models import Judgment, Study, Task
from evalhub.catalog.models import Prompt
from evalhub.csv_safe import csv_writer
from evalhub.results import judgments_csv
from evalhub.results.judgment_rows import judgment_rows
from evalhub.results.judgments_csv import judgments_csv_chunks
from tests.factories import UserFactory
from tests.results.conftest import MODEL_A, MODEL_B, ab_study, ab_with_alignment, vote

HEADER = (
    "study,kind,task_key,prompt,criterion,annotator,answer,image_model,left_model,right_model,choice,"
    "winner_model,fetched_at,displayed_at,on_screen_seconds,answered_at,source,gold,excluded\n"
)


def download(client, study) -> str:
    """The CSV the researcher's browser receives, every chunk joined."""
    return b"".join(client.get(f"/results/studies/{study.pk}/judgments.csv").streaming_content).decode()


def a_study_with_every_kind_of_row() -> Study:
    """An A/B study whose judgments cover what a row can hold: each choice, page figures or
    none, a gold task, an excluded judgment, an imported one, answers out of time order."""
    study = ab_study(3, name="every row")
    tasks = list(study.tasks.order_by("key"))
    vote(study, {tasks[0]: ["A", "B", "tie", "reject"], tasks[1]: ["B", "A"]})
    Task.objects.filter(pk=tasks[1].pk).update(is_gold=True)
    first, second, third = Judgment.objects.filter(task__study=study).order_by("pk")[:3]
    Judgment.objects.filter(pk=first.pk).update(
        displayed_at=first.fetched_at + timedelta(seconds=1),
        on_screen_seconds=2.34567,
        answered_at=first.answered_at + timedelta(seconds=3),
        answer={"choice": first.answer["choice"], "note": "second thoughts"},
    )
    Judgment.objects.filter(pk=second.pk).update(excluded=True, source="import")
    Judgment.objects.filter(pk=third.pk).update(answered_at=third.answered_at - timedelta(minutes=5))
    return study


def csv_one_judgment_at_a_time(study: Study) -> str:
    """The export as the full-string version wrote it, rebuilt the plain way: every
    judgment through the ORM, one at a time (the reference the streamed file must equal)."""
    names = {m.model_version_id: m.model_version.name for m in study.study_models.all()}
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    out.write(HEADER)
    for j in Judgment.objects.filter(task__study=study).order_by("answered_at", "pk"):
        left = right = choice = winner = ""
        if study.kind == "ab":
            left = names[j.left_model_id]
            right = next(name for pk, name in names.items() if pk != j.left_model_id)
            choice = j.answer["choice"]
            winner = {"left": left, "right": right}.get(choice, choice)
        writer.writerow(
            [
                study.name,
                study.kind,
                j.task.key,
                j.task.prompt.text,
                j.task.criterion,
                j.annotator.username,
                json.dumps(j.answer, sort_keys=True),
                j.task.task_images.get(position=0).image.model_version.name,
                left,
                right,
                choice,
                winner,
                j.fetched_at.isoformat(),
                j.displayed_at.isoformat() if j.displayed_at else "",
                "" if j.on_screen_seconds is None else f"{j.on_screen_seconds:.3f}",
                j.answered_at.isoformat(),
                j.source,
                j.task.is_gold,
                j.excluded,
            ]
        )
    return out.getvalue()


def test_each_judgment_is_a_row_with_its_sides_resolved(client, alice, small_study):
    """The winner column names the model the annotator chose, whichever side it was on."""
    tasks = list(small_study.tasks.order_by("key"))
    vote(small_study, {tasks[0]: ["A", "B", "tie", "reject"]})
    client.force_login(alice)
    response = client.get(f"/results/studies/{small_study.pk}/judgments.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="judgments-study-{small_study.pk}.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 4
    assert sorted(r["winner_model"] for r in rows) == sorted([MODEL_A, MODEL_B, "tie", "reject"])
    assert {(r["displayed_at"], r["on_screen_seconds"]) for r in rows} == {("", "")}  # no page figures
    for row in rows:
        assert row["fetched_at"] <= row["answered_at"]
        assert {row["left_model"], row["right_model"]} == {MODEL_A, MODEL_B}
        assert row["task_key"] == tasks[0].key and row["criterion"] == "flaws"
        if row["choice"] in ("left", "right"):
            assert row["winner_model"] == row[f"{row['choice']}_model"]


def test_the_streamed_file_is_the_one_the_full_export_wrote(client, alice, db):
    """Header and rows, byte for byte, as the export built in one string wrote them."""
    study = a_study_with_every_kind_of_row()
    client.force_login(alice)
    response = client.get(f"/results/studies/{study.pk}/judgments.csv")
    assert isinstance(response, StreamingHttpResponse)
    content = b"".join(response.streaming_content).decode()
    assert content == csv_one_judgment_at_a_time(study)
    rows = list(csv.DictReader(io.StringIO(content)))
    assert len(rows) == 6 and rows[0]["answered_at"] < rows[1]["answered_at"]
    assert [r["on_screen_seconds"] for r in rows].count("2.346") == 1
    assert [(r["source"], r["excluded"]) for r in rows].count(("import", "True")) == 1
    assert [r["gold"] for r in rows].count("True") == 2


def alignment_with_one_judgment():
    """A text-alignment study whose first task has one answer, fetched and answered now
    (no page figures); the study and that time."""
    _, alignment = ab_with_alignment()
    now = timezone.now()
    Judgment.objects.create(
        task=alignment.tasks.order_by("key").first(),
        annotator=UserFactory(username="reader", role="annotators"),
        client_id=uuid.uuid4(),
        answer={"answers": {"1": True}},
        fetched_at=now,
        answered_at=now,
    )
    return alignment, now


def test_a_study_of_another_kind_leaves_the_sides_empty(client, alice, db):
    """No sides, choice or winner outside A/B; the image's model is still named."""
    alignment, _ = alignment_with_one_judgment()
    client.force_login(alice)
    content = download(client, alignment)
    assert content == csv_one_judgment_at_a_time(alignment)
    (row,) = csv.DictReader(io.StringIO(content))
    assert row["image_model"] in (MODEL_A, MODEL_B)
    assert [row[c] for c in ("left_model", "right_model", "choice", "winner_model")] == ["", "", "", ""]


def test_the_header_goes_out_before_the_rows_are_read(small_study, django_assert_num_queries, monkeypatch):
    """The header needs no query; then each chunk is sent once its rows are read, before
    the next ones are pulled from the cursor."""
    tasks = list(small_study.tasks.order_by("key"))
    vote(small_study, {tasks[0]: ["A", "B", "tie"], tasks[1]: ["A", "B"]})
    pulled = []

    def counted(study, *, chunk_size):
        for row in judgment_rows(study, chunk_size=chunk_size):
            pulled.append(row)
            yield row

    monkeypatch.setattr(judgments_csv, "judgment_rows", counted)
    chunks = judgments_csv_chunks(small_study, chunk_rows=2)
    with django_assert_num_queries(0):
        assert next(chunks).decode() == HEADER
    first = next(chunks).decode()
    assert first.count("\n") == 2 and len(pulled) == 2  # three rows still unread
    assert [chunk.decode().count("\n") for chunk in chunks] == [2, 1] and len(pulled) == 5


def test_the_rows_come_from_one_query_read_in_chunks(small_study, django_assert_num_queries, monkeypatch):
    """Two queries however many judgments (model names, then the rows: no query per row),
    read with QuerySet.iterator, never loaded whole."""
    vote(small_study, {task: ["A", "B", "tie", "reject"] for task in small_study.tasks.all()})
    sizes = []
    iterator = QuerySet.iterator

    def spy(queryset, chunk_size=None):
        sizes.append(chunk_size)
        return iterator(queryset, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    with django_assert_num_queries(2):
        rows = list(judgment_rows(small_study, chunk_size=7))
    assert len(rows) == 24 and sizes == [7]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_annotators_cannot_download_judgments(client, bob, small_study, fmt):
    """Both files name models: researchers only."""
    client.force_login(bob)
    assert client.get(f"/results/studies/{small_study.pk}/judgments.{fmt}").status_code == 403


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_anonymous_visitors_are_sent_to_log_in(client, small_study, fmt):
    """No session: the log-in page, then back."""
    response = client.get(f"/results/studies/{small_study.pk}/judgments.{fmt}")
    assert response.status_code == 302 and "login" in response["Location"]


def test_cells_a_spreadsheet_would_run_are_written_as_text(client, alice, db):
    """A study, prompt, model or annotator name starting with = + - @, a tab or a carriage
    return comes out with a quote in front (evalhub.csv_safe); the other cells as they are."""
    study = ab_study(1, name="=cmd|' /C calc'!A0", models=("+model-a", "-model-b"))
    task = study.tasks.get()
    Prompt.objects.filter(pk=task.prompt_id).update(text='=HYPERLINK("http://evil.example", "click")')
    vote(study, {task: ["A", "B"]})
    User.objects.filter(username="voter0").update(username="@SUM(1+1)")
    User.objects.filter(username="voter1").update(username="\tvoter")
    client.force_login(alice)
    rows = list(csv.DictReader(io.StringIO(download(client, study))))
    assert {row["study"] for row in rows} == {"'=cmd|' /C calc'!A0"}
    assert {row["prompt"] for row in rows} == {'\'=HYPERLINK("http://evil.example", "click")'}
    assert sorted(row["annotator"] for row in rows) == ["'\tvoter", "'@SUM(1+1)"]
    assert {row["left_model"] for row in rows} | {row["right_model"] for row in rows} == {
        "'+model-a",
        "'-model-b",
    }
    assert {row["task_key"] for row in rows} == {task.key} and {row["kind"] for row in rows} == {"ab"}
