"""Dawid–Skene beside the plain majority."""

import io

import pytest
from django.core.management import call_command

from evalhub.results.reliability import ab_dawid_skene_outcomes
from evalhub.results.winrates import ab_comparison
from tests.results.conftest import ab_study, vote


@pytest.fixture
def study(db):
    """Ten flaws tasks, N = 5."""
    return ab_study(10)


def test_reliable_annotators_break_a_level_majority(study):
    """Three annotators vote the truth, two always say B; on the 2–2–1 task the plain
    majority says tie, Dawid–Skene follows the informative annotators and says A."""
    tasks = list(study.tasks.order_by("key"))
    plan = {task: (["A"] * 3 if i % 2 else ["B"] * 3) + ["B", "B"] for i, task in enumerate(tasks[:8])}
    plan[tasks[8]] = ["tie", "tie", "tie", "B", "B"]
    plan[tasks[9]] = ["A", "A", "tie", "B", "B"]
    vote(study, plan)
    majority = ab_comparison(study, "plurality").criteria[0]
    assert (majority.a_wins.count, majority.tie.count, majority.b_wins.count) == (4, 2, 4)
    assert ab_dawid_skene_outcomes(study)[tasks[9].pk] == "A"
    ds = ab_comparison(study, "dawid-skene").criteria[0]
    assert (ds.a_wins.count, ds.tie.count, ds.b_wins.count) == (5, 1, 4)


def test_the_export_command_takes_the_dawid_skene_rule(study, tmp_path):
    """`export_winrates --rule dawid-skene` writes the reliability-weighted table."""
    vote(study, {task: ["A", "A", "A", "B", "tie"] for task in study.tasks.all()})
    call_command(
        "export_winrates",
        "study",
        "--out",
        str(tmp_path),
        "--format",
        "json",
        "--rule",
        "dawid-skene",
        stdout=io.StringIO(),
    )
    assert '"rule": "dawid-skene"' in (tmp_path / "winrates.json").read_text()
