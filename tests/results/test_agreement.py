"""Agreement: Fleiss' kappa on textbook cases, and per-annotator figures of an A/B study."""

from datetime import timedelta

import pandas as pd
import pytest

from annotate.models import Judgment
from evalhub.results.agreement import annotator_stats, fleiss_kappa, study_agreement
from tests.results.conftest import vote


def test_fleiss_kappa_of_the_textbook_example():
    """Fleiss (1971): 10 items, 14 raters, 5 categories → kappa 0.210."""
    table = pd.DataFrame(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)


def test_perfect_agreement_is_one_and_a_single_category_is_undefined():
    """Unanimity across categories gives 1; one category everywhere gives no kappa."""
    assert fleiss_kappa(pd.DataFrame([[5, 0], [0, 5]])) == pytest.approx(1.0)
    assert fleiss_kappa(pd.DataFrame([[5, 0], [5, 0]])) is None
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(pd.DataFrame([[5, 0], [3, 0]]))


def test_study_agreement_and_annotator_figures(small_study):
    """Kappa covers complete tasks; each annotator's agreement with the majority is reported."""
    tasks = list(small_study.tasks.order_by("key"))
    vote(
        small_study,
        {t: ["A", "A", "A", "A", "B"] for t in tasks[:3]} | {t: ["B", "B", "B", "B", "A"] for t in tasks[3:]},
    )
    agreement = study_agreement(small_study)
    assert agreement["items"] == 6
    assert agreement["fleiss_kappa"] == pytest.approx(0.2, abs=1e-9)  # P̄ = 0.6, Pe = 0.5
    stats = annotator_stats(small_study, "plurality")
    assert stats.loc["voter0", "agreement_with_majority"] == 1.0
    assert stats.loc["voter4", "agreement_with_majority"] == 0.0
    assert stats["judgments"].tolist() == [6] * 5


def test_agreement_with_the_majority_counts_complete_items_only(small_study):
    """A dissent on a task short of its N judgments does not lower an annotator's agreement."""
    tasks = list(small_study.tasks.order_by("key"))
    vote(small_study, {tasks[0]: ["A", "A", "A", "A", "B"], tasks[1]: ["B", "A", "A"]})
    stats = annotator_stats(small_study, "plurality")
    assert stats.loc["voter0", "agreement_with_majority"] == 1.0
    assert stats.loc["voter4", "agreement_with_majority"] == 0.0
    assert stats.loc["voter0", "judgments"] == 2  # the timing columns still read every judgment


def test_an_annotator_without_complete_items_has_no_agreement_figure(client, alice, small_study):
    """Only incomplete tasks: no agreement (None, a dash on the page), not NaN."""
    vote(small_study, {small_study.tasks.first(): ["A", "B"]})
    assert annotator_stats(small_study, "plurality")["agreement_with_majority"].tolist() == [None, None]
    client.force_login(alice)
    page = client.get(f"/results/studies/{small_study.pk}/").content.decode()
    assert '<td class="num">%</td>' not in page


def test_the_median_time_per_task_is_the_time_on_screen(client, alice, small_study):
    """Time waiting in the page's queue does not count; answers without the figure are left out."""
    tasks = list(small_study.tasks.order_by("key"))
    vote(small_study, {t: ["A", "A", "A", "A", "B"] for t in tasks[:3]})
    judgments = Judgment.objects.filter(annotator__username="voter0").order_by("pk")
    for judgment, seconds in zip(judgments, (4.0, 6.0, None), strict=True):
        judgment.fetched_at = judgment.answered_at - timedelta(minutes=10)  # preloaded long before
        judgment.on_screen_seconds = seconds
        judgment.save()
    stats = annotator_stats(small_study, "plurality")
    assert stats.loc["voter0", "median_seconds"] == pytest.approx(5.0)
    assert stats.loc["voter1", "median_seconds"] is None
    client.force_login(alice)
    page = client.get(f"/results/studies/{small_study.pk}/").content.decode()
    assert "Median s on screen / task" in page and '<td class="num">5.0</td>' in page


def test_the_study_page_shows_agreement(client, alice, small_study):
    """Kappa and each annotator's agreement with the majority appear on the study page."""
    vote(small_study, {t: ["A", "A", "A", "A", "B"] for t in small_study.tasks.all()})
    client.force_login(alice)
    page = client.get(f"/results/studies/{small_study.pk}/").content.decode()
    assert "Fleiss' κ" in page
    assert "100%" in page and "0%" in page


def test_agreement_for_alignment_and_best_worst_studies(db):
    """Alignment votes count per (image, question); best/worst votes by the positive chosen."""
    import uuid

    from django.utils import timezone

    from annotate.models import Judgment
    from annotate.services import study_create
    from evalhub.catalog.models import AlignmentQuestion, ModelVersion
    from tests.factories import UserFactory
    from tests.results.conftest import MODEL_A, ab_study

    ab = ab_study(3, name="base")
    for prompt in ab.prompt_set.prompts.all():
        AlignmentQuestion.objects.create(prompt=prompt, text="Is there a cat?", position=0)
    model = ModelVersion.objects.get(name=MODEL_A)
    alignment = study_create(
        name="al", kind="alignment", prompt_set=ab.prompt_set, model_versions=[model], overlap=2
    )
    users = [UserFactory(role="annotators") for _ in range(2)]
    now = timezone.now()
    for task in alignment.tasks.all():
        (question,) = task.prompt.questions.all()
        for user in users:
            Judgment.objects.create(
                task=task,
                annotator=user,
                client_id=uuid.uuid4(),
                fetched_at=now,
                answered_at=now,
                answer={"answers": {str(question.pk): task.prompt.position != 0}},
            )
    alignment.tasks.update(judgment_count=2)
    agreement = study_agreement(alignment)
    assert agreement == {"items": 3, "fleiss_kappa": pytest.approx(1.0)}
    stats = annotator_stats(alignment, "plurality")
    assert set(stats["agreement_with_majority"]) == {1.0}
