"""The qualification quiz and gold items in the queue (annotate.assignment, annotate.submission):
a quiz of gold items comes first, a pass opens the real tasks, a fail ends the study for the
annotator; at a gold rate every annotator gets gold items, beyond the study's N; gold answers
are counted on the tally and gold items stay out of the tables. The page's side of a failed
quiz, in a browser, is the last test."""

import uuid

import pytest

from annotate import errors
from annotate.assignment import assignments_next
from annotate.errors import Forbidden
from annotate.models import AnnotatorTally, Judgment, Lease, Study
from annotate.services import study_create, task_set_gold
from annotate.submission import judgment_submit
from annotate.workforce import gold_score
from evalhub.results.winrates import ab_comparison
from tests.annotate.test_labeling_browser import log_in, page, wait_for_task  # noqa: F401  (fixture)
from tests.factories import UserFactory

GOLD = {"choice": "left"}


def gold_study(prompt_set, model_a, model_b, **settings) -> Study:
    """Three prompts × two criteria, N = 2, the first two tasks gold ("left" is right)."""
    study = study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=2, **settings
    )
    for key in study.tasks.order_by("key").values_list("key", flat=True)[:2]:
        task_set_gold(study=study, task_key=key, answer=GOLD)
    return study


def submit(lease, annotator, choice: str):
    return judgment_submit(
        token=lease.token, annotator=annotator, client_id=uuid.uuid4(), answer={"choice": choice}
    )


def tally(study, annotator) -> AnnotatorTally:
    return AnnotatorTally.objects.get(study=study, annotator=annotator)


@pytest.fixture
def quiz(prompt_set, model_a, model_b):
    return gold_study(prompt_set, model_a, model_b, quiz_size=2, quiz_pass_percent=100)


def test_the_quiz_comes_first_and_a_pass_opens_the_real_tasks(quiz):
    """Asked for three tasks, the annotator gets the quiz's two gold items; passed, real tasks follow."""
    dana = UserFactory(username="dana", role="annotators")
    leases = assignments_next(study_id=quiz.pk, annotator=dana, count=3).leases
    assert len(leases) == 2 and all(lease.task.is_gold for lease in leases)
    assert assignments_next(study_id=quiz.pk, annotator=dana, count=3).leases == leases
    for lease in leases:
        assert submit(lease, dana, "left").gold
    assert (tally(quiz, dana).quiz_state, tally(quiz, dana).gold_correct) == ("passed", 2)
    real = assignments_next(study_id=quiz.pk, annotator=dana, count=3).leases
    assert len(real) == 3 and not any(lease.task.is_gold for lease in real)


def test_a_failed_quiz_ends_the_study_for_the_annotator(quiz):
    """Below the pass mark: refused with QUIZ_FAILED, never a real task, the result on the tally."""
    eli = UserFactory(username="eli", role="annotators")
    for _ in range(2):
        (lease,) = assignments_next(study_id=quiz.pk, annotator=eli).leases
        submit(lease, eli, "right")
    with pytest.raises(Forbidden, match=errors.QUIZ_FAILED):
        assignments_next(study_id=quiz.pk, annotator=eli)
    row = tally(quiz, eli)
    assert (row.quiz_state, row.gold_answered, row.gold_correct, row.judgments) == ("failed", 2, 0, 2)
    assert not Lease.objects.filter(annotator=eli, task__is_gold=False).exists()


def test_a_quiz_without_gold_items_is_skipped(prompt_set, model_a, model_b):
    """No gold item to take the quiz with: the annotator goes on to real tasks, no result kept."""
    study = study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=2, quiz_size=2
    )
    fay = UserFactory(username="fay", role="annotators")
    assert len(assignments_next(study_id=study.pk, annotator=fay, count=3).leases) == 3


def test_at_a_gold_rate_every_annotator_gets_gold_beyond_n(prompt_set, model_a, model_b):
    """Seven annotators, N = 2, half gold: each answers gold items, real tasks get N, gold more."""
    study = gold_study(prompt_set, model_a, model_b, gold_rate_percent=50)
    crowd = [UserFactory(username=f"rater{i}", role="annotators") for i in range(7)]
    for annotator in crowd:
        while leases := assignments_next(study_id=study.pk, annotator=annotator).leases:
            submit(leases[0], annotator, "left" if annotator is crowd[0] else "right")
    for annotator in crowd:
        row, score = tally(study, annotator), gold_score(study, annotator)
        assert row.gold_answered >= 1, annotator.username
        assert (row.gold_answered, row.gold_correct) == (score.answered, score.correct)
    assert tally(study, crowd[0]).gold_answered == 2  # gold first, real, gold, real
    counts = dict(study.tasks.values_list("is_gold", "judgment_count").order_by("is_gold", "judgment_count"))
    assert counts[False] == 2 and counts[True] > 2
    assert Study.objects.get(pk=study.pk).open_tasks == 0
    # The gold items leave the tables: four decided items, each with N judgments.
    assert sum(row.decided for row in ab_comparison(study).criteria) == 4
    assert Judgment.objects.filter(task__study=study, task__is_gold=True).count() > 4


@pytest.mark.browser
def test_a_participant_who_fails_the_quiz_sees_a_polite_end_page(page, live_server, quiz):  # noqa: F811
    """By keyboard, two wrong gold answers: the done section thanks them and says why."""
    UserFactory(username="gus", role="annotators")
    log_in(page, live_server, "gus")
    page.goto(f"{live_server.url}/annotate/studies/{quiz.pk}/")
    for _ in range(2):
        wait_for_task(page)
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
    page.wait_for_selector("#lbl-done-refused:not([hidden])")
    assert page.locator("#lbl-done-refused").text_content() == errors.QUIZ_FAILED
    assert page.locator("#lbl-done-title").text_content() == "Thank you"
    assert page.locator("#lbl-task").is_hidden() and page.locator("#lbl-done-default").is_hidden()
    assert tally(quiz, AnnotatorTally.objects.get(annotator__username="gus").annotator).quiz_state == "failed"
