"""Text-alignment rates: majority yes/no per (image, question) against the expected answer."""

import uuid

import pytest
from django.utils import timezone

from annotate.models import Judgment, Task
from evalhub.results.alignment import alignment_rates
from evalhub.results.winrate_formats import to_csv, to_latex, to_markdown
from evalhub.results.winrates import ab_comparison
from tests.factories import UserFactory
from tests.results.conftest import MODEL_A, MODEL_B, ab_with_alignment, vote


@pytest.fixture
def studies(db):
    """An A/B study and an alignment study (N = 3) over the same two prompts and models."""
    return ab_with_alignment()


def answer_all(alignment, plan: dict[str, list[tuple[bool, bool]]], prompts=None) -> None:
    """``plan[model]``: per annotator, (cat?, dog?) answers given for every image of that model
    (of the prompts at ``prompts`` positions, or all); each task's count follows."""
    now = timezone.now()
    users = [UserFactory(role="annotators") for _ in range(3)]
    judgments = []
    tasks = Task.objects.filter(study=alignment).select_related("prompt")
    if prompts is not None:
        tasks = tasks.filter(prompt__position__in=prompts)
    for task in tasks:
        model = task.task_images.get(position=0).image.model_version.name
        cat, dog = task.prompt.questions.order_by("position")
        task.judgment_count = min(len(users), len(plan[model]))
        task.save(update_fields=["judgment_count"])
        for user, (says_cat, says_dog) in zip(users, plan[model], strict=False):
            judgments.append(
                Judgment(
                    task=task,
                    annotator=user,
                    client_id=uuid.uuid4(),
                    fetched_at=now,
                    answered_at=now,
                    answer={"answers": {str(cat.pk): says_cat, str(dog.pk): says_dog}},
                )
            )
    Judgment.objects.bulk_create(judgments)


def test_rates_compare_the_majority_with_the_expected_answer(studies):
    """A always matches (4/4); B says 'dog' by majority (2/4); a 1–1 split is undecided."""
    _, alignment = studies
    answer_all(
        alignment, {MODEL_A: [(True, False)] * 3, MODEL_B: [(True, True), (True, True), (False, False)]}
    )
    rates = {r.model: r for r in alignment_rates(alignment, "plurality").values()}
    assert (rates[MODEL_A].matches, rates[MODEL_A].decided, rates[MODEL_A].rate) == (4, 4, 1.0)
    assert (rates[MODEL_B].matches, rates[MODEL_B].decided, rates[MODEL_B].rate) == (2, 4, 0.5)
    assert rates[MODEL_B].ci_low < 0.5 < rates[MODEL_B].ci_high


def test_level_votes_are_undecided(studies):
    """Two annotators split 1–1 on every question: nothing decided, no rate."""
    _, alignment = studies
    answer_all(alignment, {MODEL_A: [(True, True), (False, False)], MODEL_B: [(True, True), (False, False)]})
    rates = {r.model: r for r in alignment_rates(alignment, "plurality", include_incomplete=True).values()}
    assert (rates[MODEL_A].decided, rates[MODEL_A].rate) == (0, None)


def test_only_images_with_their_n_judgments_count(studies):
    """Images with two of three answers are left out, unless the rate is provisional."""
    _, alignment = studies
    answer_all(alignment, {MODEL_A: [(True, False)] * 3, MODEL_B: [(True, False)] * 3}, prompts=[0])
    answer_all(alignment, {MODEL_A: [(False, True)] * 2, MODEL_B: [(False, True)] * 2}, prompts=[1])
    rates = {r.model: r for r in alignment_rates(alignment, "plurality").values()}
    assert (rates[MODEL_A].matches, rates[MODEL_A].decided, rates[MODEL_A].rate) == (2, 2, 1.0)
    running = {r.model: r for r in alignment_rates(alignment, "plurality", include_incomplete=True).values()}
    assert (running[MODEL_A].matches, running[MODEL_A].decided, running[MODEL_A].rate) == (2, 4, 0.5)


def test_the_win_rate_table_carries_both_alignment_rates(studies):
    """The A/B table gains text-alignment columns from the alignment study over the same models."""
    ab, alignment = studies
    answer_all(
        alignment, {MODEL_A: [(True, False)] * 3, MODEL_B: [(True, True), (True, True), (False, False)]}
    )
    vote(ab, {task: ["A", "A", "A", "B", "tie"] for task in ab.tasks.all()})
    comparison = ab_comparison(ab)
    assert (comparison.alignment_a.rate, comparison.alignment_b.rate) == (1.0, 0.5)
    assert "| Text alignment A | Text alignment B |" in to_markdown([comparison])
    assert "| 100.0% | 50.0% |" in to_markdown([comparison])
    assert to_csv([comparison]).splitlines()[1].endswith(",ab,100.0,50.0,2,0,false")
    assert r"100.0\% & 50.0\% \\" in to_latex([comparison])
