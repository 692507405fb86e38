"""Dawid–Skene beside the plain majority."""

import io

import pytest
from crowdkit.aggregation import DawidSkene
from django.core.management import call_command

from evalhub.results.reliability import ab_dawid_skene_outcomes, ab_votes_long
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


OTHER = {"A": "B", "B": "A"}


def test_each_criterion_is_fitted_on_its_own_votes(db):
    """voter0 and voter1 are right on flaws and wrong on appeal, where three others outvote them.
    Fitted per criterion, each appeal item keeps its majority; one pooled fit would carry
    their flaws record over and follow them on appeal."""
    study = ab_study(20, criteria=("flaws", "appeal"), name="two criteria")
    flaws = list(study.tasks.filter(criterion="flaws").order_by("key"))
    appeal = list(study.tasks.filter(criterion="appeal").order_by("key"))[:6]
    truth = {task.pk: "A" if i % 2 else "B" for i, task in enumerate(flaws + appeal)}
    plan = {t: [truth[t.pk]] * 3 + [OTHER[truth[t.pk]]] * 2 for t in flaws}
    plan |= {t: [OTHER[truth[t.pk]]] * 2 + [truth[t.pk]] * 3 for t in appeal}
    vote(study, plan)
    separate = ab_dawid_skene_outcomes(study)
    assert [separate[t.pk] for t in appeal] == [truth[t.pk] for t in appeal]
    votes = ab_votes_long(study)
    pooled = DawidSkene(n_iter=100).fit_predict(votes[["task", "worker", "label"]])
    assert [pooled[t.pk] for t in appeal] == [OTHER[truth[t.pk]] for t in appeal]
    table = {r.criterion: r for r in ab_comparison(study, "dawid-skene").criteria}
    assert (table["appeal"].a_wins.count, table["appeal"].b_wins.count, table["appeal"].decided) == (3, 3, 6)


def test_dawid_skene_reads_complete_tasks_and_counts_its_rejects_apart(study):
    """A task short of N judgments is not fitted unless provisional; a task it labels reject
    is counted apart like any reject."""
    tasks = list(study.tasks.order_by("key"))
    plan = {t: ["A", "A", "A", "B", "tie"] for t in tasks[:7]}
    plan |= {tasks[7]: ["reject"] * 5, tasks[8]: ["B", "B", "B"]}
    vote(study, plan)
    assert tasks[8].pk not in ab_dawid_skene_outcomes(study).index
    assert tasks[8].pk in ab_dawid_skene_outcomes(study, include_incomplete=True).index
    assert ab_dawid_skene_outcomes(study)[tasks[7].pk] == "reject"
    (flaws,) = ab_comparison(study, "dawid-skene").criteria
    assert (flaws.a_wins.count, flaws.decided, flaws.rejects, flaws.incomplete) == (7, 7, 1, 2)
