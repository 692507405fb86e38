"""Importing a vendor's judgments: validated row by row, all or nothing."""

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotate.assignment import Progress, annotator_progress, assignments_next
from annotate.judgment_import import judgments_import
from annotate.models import Judgment, Lease, Task
from evalhub.catalog.errors import ImportRejected
from evalhub.results.winrates import ab_comparison
from tests.factories import UserFactory
from tests.results.conftest import ab_study

HEADER = "study,task_key,annotator,answer\n"


@pytest.fixture
def small_study(db):
    """Six flaws tasks, N = 5 (the results tests' A/B study)."""
    return ab_study(6)


def test_a_vendor_file_fills_an_ab_study(small_study):
    """Shorthand and JSON answers are stored like the page's, with the left model resolved."""
    rows = "".join(
        f"study,p{i:04d}-flaws,vendor-{a},{'left' if a < 3 else 'right'}\n"
        for i in range(6)
        for a in range(5)
    )
    assert judgments_import(text=HEADER + rows) == 30
    assert set(Judgment.objects.values_list("source", flat=True)) == {"import"}
    assert set(small_study.tasks.values_list("judgment_count", flat=True)) == {5}
    small_study.refresh_from_db()
    assert small_study.open_tasks == 0  # every task is full: none is left to hand out
    (flaws,) = ab_comparison(small_study).criteria
    assert flaws.decided == 6 and flaws.tie.count == 0
    for judgment in Judgment.objects.select_related("task"):
        assert judgment.left_model_id == judgment.task.task_images.get(position=0).image.model_version_id


def test_an_import_keeps_progress_and_takes_back_a_lease_on_a_task_it_fills(small_study):
    """Imported answers count in their annotators' progress and are not handed to them
    again, and a task the import fills leaves the annotator who held it."""
    dana = UserFactory(username="dana", role="annotators")
    (held,) = assignments_next(study_id=small_study.pk, annotator=dana).leases
    key = Task.objects.get(pk=held.task_id).key
    rows = "".join(f"study,{key},vendor-{a},left\n" for a in range(5))
    other = "p0005-flaws" if key != "p0005-flaws" else "p0004-flaws"
    rows += f"study,{other},vendor-0,right\n"
    judgments_import(text=HEADER + rows)
    vendor = User.objects.get(username="vendor-0")
    assert annotator_progress(study_id=small_study.pk, annotator=vendor) == Progress(done=2, remaining=4)
    answered = set(Judgment.objects.filter(annotator=vendor).values_list("task_id", flat=True))
    assert assignments_next(study_id=small_study.pk, annotator=vendor).leases[0].task_id not in answered
    assert Lease.objects.get(pk=held.pk).task_filled
    result = assignments_next(study_id=small_study.pk, annotator=dana)
    assert [lease.task_id for lease in result.leases] != [held.task_id]
    assert result.progress == Progress(done=0, remaining=5)


@pytest.mark.parametrize(
    "rows, line, message",
    [
        ("nope,p0000-flaws,v1,left\n", 2, "no study named 'nope'"),
        ("study,p9999-flaws,v1,left\n", 2, "no task 'p9999-flaws' in study 'study'"),
        ("study,p0000-flaws,v1,left\nstudy,p0000-flaws,v1,right\n", 3, "already answers this task on line 3"),
        ("study,p0000-flaws,v1,sideways\n", 2, "choice must be one of left, tie, right, reject"),
        ('study,p0000-flaws,v1,"{""choice"": 1"\n', 2, "answer is not valid JSON"),
        (
            "".join(f"study,p0000-flaws,v{i},left\n" for i in range(6)),
            7,
            "would have more than N = 5 judgments",
        ),
    ],
)
def test_a_bad_row_stops_the_import_and_keeps_nothing(small_study, rows, line, message):
    """The first bad row names its line; no judgment and no new annotator is kept."""
    text = HEADER + "study,p0001-flaws,v-good,left\n" + rows
    with pytest.raises(ImportRejected) as caught:
        judgments_import(text=text)
    assert caught.value.line == line + 1
    assert message in caught.value.detail
    assert not Judgment.objects.exists()
    assert not small_study.tasks.filter(judgment_count__gt=0).exists()
    assert not User.objects.filter(username__startswith="v").exists()


def test_the_command(small_study, tmp_path):
    """`import_judgments` reports the count, or the file and line of the first problem."""
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "study,p0000-flaws,v1,tie\n")
    call_command("import_judgments", str(good))
    assert Judgment.objects.count() == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("study,task\n")
    with pytest.raises(CommandError, match="bad.csv: line 1: missing column"):
        call_command("import_judgments", str(bad))
