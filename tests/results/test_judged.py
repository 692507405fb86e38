"""Which judgments a table counts, and the task counts it reports beside them."""

from evalhub.results.judged import study_judgments, study_task_counts
from tests.results.conftest import ab_study, vote


def test_only_tasks_with_their_n_judgments_are_read_unless_asked(small_study):
    """Five votes on one task count; three on another only for a provisional table."""
    tasks = list(small_study.tasks.order_by("key"))
    vote(small_study, {tasks[0]: ["A"] * 5, tasks[1]: ["B"] * 3})
    assert set(study_judgments(small_study).values_list("task_id", flat=True)) == {tasks[0].pk}
    assert study_judgments(small_study, include_incomplete=True).count() == 8


def test_task_counts_are_per_criterion_and_include_tasks_without_judgments(db):
    """Incomplete means fewer than N judgments, none included; started means some."""
    study = ab_study(3, criteria=("flaws", "appeal"))
    flaws = list(study.tasks.filter(criterion="flaws").order_by("key"))
    vote(study, {flaws[0]: ["A"] * 5, flaws[1]: ["A"]})
    assert study_task_counts(study) == {
        "flaws": {"items": 3, "complete": 1, "incomplete": 2, "started": 1},
        "appeal": {"items": 3, "complete": 0, "incomplete": 3, "started": 0},
    }
