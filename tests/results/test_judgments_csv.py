"""The raw judgments CSV: one row per judgment with the models on each side resolved."""

import csv
import io

from django.contrib.auth.models import User

from evalhub.catalog.models import Prompt
from tests.results.conftest import MODEL_A, MODEL_B, ab_study, vote


def test_each_judgment_is_a_row_with_its_sides_resolved(client, alice, small_study):
    """The winner column names the model the annotator chose, whichever side it was on."""
    tasks = list(small_study.tasks.order_by("key"))
    vote(small_study, {tasks[0]: ["A", "B", "tie", "reject"]})
    client.force_login(alice)
    response = client.get(f"/results/studies/{small_study.pk}/judgments.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4
    assert sorted(r["winner_model"] for r in rows) == sorted([MODEL_A, MODEL_B, "tie", "reject"])
    assert {(r["displayed_at"], r["on_screen_seconds"]) for r in rows} == {("", "")}  # no page figures
    for row in rows:
        assert row["fetched_at"] <= row["answered_at"]
        assert {row["left_model"], row["right_model"]} == {MODEL_A, MODEL_B}
        assert row["task_key"] == tasks[0].key and row["criterion"] == "flaws"
        if row["choice"] in ("left", "right"):
            assert row["winner_model"] == row[f"{row['choice']}_model"]


def test_annotators_cannot_download_judgments(client, bob, small_study):
    """The CSV names models: researchers only."""
    client.force_login(bob)
    assert client.get(f"/results/studies/{small_study.pk}/judgments.csv").status_code == 403


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
    rows = list(
        csv.DictReader(io.StringIO(client.get(f"/results/studies/{study.pk}/judgments.csv").content.decode()))
    )
    assert {row["study"] for row in rows} == {"'=cmd|' /C calc'!A0"}
    assert {row["prompt"] for row in rows} == {'\'=HYPERLINK("http://evil.example", "click")'}
    assert sorted(row["annotator"] for row in rows) == ["'\tvoter", "'@SUM(1+1)"]
    assert {row["left_model"] for row in rows} | {row["right_model"] for row in rows} == {
        "'+model-a",
        "'-model-b",
    }
    assert {row["task_key"] for row in rows} == {task.key} and {row["kind"] for row in rows} == {"ab"}
