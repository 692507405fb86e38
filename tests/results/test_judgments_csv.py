"""The raw judgments CSV: one row per judgment with the models on each side resolved."""

import csv
import io

from tests.results.conftest import MODEL_A, MODEL_B, vote


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
