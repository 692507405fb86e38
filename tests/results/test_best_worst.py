"""Best/worst-of-five aggregation rules: winner/loser pairs from complete tasks."""

import uuid

import pytest
from django.db.models import F
from django.utils import timezone

from annotate.models import Judgment, Task
from annotate.services import study_create
from evalhub.results.best_worst import best_worst_pairs, task_completion
from tests.annotate.conftest import catalog_images
from tests.factories import PromptFactory, PromptSetFactory, UserFactory


@pytest.fixture
def bw_study(db, tmp_path):
    """Four prompts with five real image files each, one best/worst task per prompt."""
    prompt_set = PromptSetFactory(name="bw set")
    for position in range(4):
        PromptFactory(prompt_set=prompt_set, text=f"a cat, take {position}", position=position)
    (tmp_path / "src").mkdir()
    catalog_images(tmp_path / "src", prompt_set, ["bw-model"], images_per_prompt=5)
    from evalhub.catalog.models import ModelVersion

    return study_create(
        name="bw",
        kind="best_worst",
        prompt_set=prompt_set,
        model_versions=[ModelVersion.objects.get(name="bw-model")],
        overlap=7,
    )


def judge(task, votes: list[tuple[int, int]]) -> None:
    """Store one judgment per (positive, negative) vote, each by a new annotator, and count them."""
    now = timezone.now()
    Judgment.objects.bulk_create(
        Judgment(
            task=task,
            annotator=UserFactory(role="annotators"),
            client_id=uuid.uuid4(),
            answer={"positive": p, "negative": n},
            fetched_at=now,
            answered_at=now,
        )
        for p, n in votes
    )
    Task.objects.filter(pk=task.pk).update(judgment_count=F("judgment_count") + len(votes))


def pairs_by_key(study, **options) -> dict[str, tuple[int, int]]:
    keys = dict(study.tasks.values_list("pk", "key"))
    return {keys[r.task_id]: (r.winner, r.loser) for r in best_worst_pairs(study, **options).itertuples()}


def test_the_aggregation_rules(bw_study):
    """Most positives wins, ties go to fewer negatives; level ties and winner = loser are left out."""
    t0, t1, t2, t3 = bw_study.tasks.order_by("key")
    judge(t0, [(0, 4), (0, 4), (0, 3), (1, 4), (2, 3)])  # clear: 0 beats 4
    judge(t1, [(0, 4), (0, 4), (1, 3), (1, 0)])  # 0 and 1 level on positives; 0 has a negative → 1 wins
    judge(t2, [(0, 4), (1, 3)])  # level on both counts → left out
    judge(
        t3, [(2, 0), (2, 1), (2, 3), (0, 2), (1, 2), (3, 2), (4, 2)]
    )  # 2 is both winner and loser → left out
    assert pairs_by_key(bw_study, include_incomplete=True) == {"p0000": (0, 4), "p0001": (1, 4)}


def test_pairs_come_from_complete_tasks_unless_asked(bw_study):
    """A task short of its N judgments gives no pair by default, and counts as incomplete."""
    t0, t1, *_ = bw_study.tasks.order_by("key")
    judge(t0, [(0, 4)] * 7)
    judge(t1, [(1, 3)] * 6)
    assert pairs_by_key(bw_study) == {"p0000": (0, 4)}
    assert pairs_by_key(bw_study, include_incomplete=True) == {"p0000": (0, 4), "p0001": (1, 3)}
    assert task_completion(bw_study) == (1, 3)
