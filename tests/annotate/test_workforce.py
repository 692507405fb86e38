"""Excluding an annotator from a study and reinstating one (annotate.workforce): their
judgments leave the tables and their tasks' counts, the tasks reopen until each has N
valid judgments, they are handed nothing more and their answers in flight are refused;
the quality rule excludes on gold accuracy by itself. The race test runs real threads on
the configured database (PostgreSQL in `make test`'s second run, a SQLite file in the first)."""

import random
import threading
import time
import uuid

import pytest
from django.db import connections
from django.db.models import Count, Q

from annotate import errors
from annotate.assignment import annotator_progress, assignments_next
from annotate.errors import Conflict, Forbidden, InvalidInput
from annotate.models import AnnotatorTally, Judgment, Lease, Study, WorkforceEvent
from annotate.services import study_create, study_update, task_set_gold
from annotate.submission import judgment_submit
from annotate.workforce import RULE_REASON, annotator_exclude, annotator_reinstate, study_quality
from evalhub.results.winrates import ab_comparison
from tests.annotate.test_concurrency import OVERLAP, race_study  # noqa: F401  (fixture)
from tests.factories import UserFactory


def answer(study, annotator, choice="left", count=None):
    """``annotator`` answers ``count`` tasks of the A/B ``study`` (all it can get if None)."""
    done = []
    while count is None or len(done) < count:
        leases = assignments_next(study_id=study.pk, annotator=annotator).leases
        if not leases:
            break
        result = judgment_submit(
            token=leases[0].token, annotator=annotator, client_id=uuid.uuid4(), answer={"choice": choice}
        )
        done.append(result.judgment)
    return done


@pytest.fixture
def ab(prompt_set, model_a, model_b):
    """Three prompts × two criteria, N = 2."""
    return study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=2
    )


@pytest.fixture
def people(db):
    return [UserFactory(username=name, role="annotators") for name in ("lefty", "ana", "ben", "cy")]


def test_an_exclusion_takes_the_judgments_out_and_reopens_the_tasks(ab, people, alice):
    lefty, ana, ben, _ = people
    answer(ab, lefty)
    answer(ab, ana, "right")
    held = assignments_next(study_id=ab.pk, annotator=lefty).leases  # nothing left for lefty
    assert held == [] and Study.objects.get(pk=ab.pk).open_tasks == 0
    before = ab_comparison(ab)

    event = annotator_exclude(study=ab, annotator=lefty, reason="always left", by=alice)

    assert (event.action, event.judgments, event.tasks_reopened, event.by) == ("excluded", 6, 6, alice)
    assert Judgment.objects.filter(annotator=lefty, excluded=True).count() == 6
    assert set(ab.tasks.values_list("judgment_count", flat=True)) == {1}
    assert Study.objects.get(pk=ab.pk).open_tasks == 6
    assert not Lease.objects.filter(task__study=ab, task_filled=True).exists()
    tally = AnnotatorTally.objects.get(study=ab, annotator=lefty)
    assert tally.excluded_at is not None and tally.excluded_reason == "always left"
    with pytest.raises(Forbidden, match=errors.EXCLUDED):
        assignments_next(study_id=ab.pk, annotator=lefty)

    # The reopened tasks go to someone else, until each has N valid judgments again.
    assert len(answer(ab, ben, "right")) == 6
    assert Study.objects.get(pk=ab.pk).open_tasks == 0
    after = ab_comparison(ab)
    # With lefty, left against right on every task: ties. Without, both say right: no tie.
    assert [(row.decided, row.tie.count) for row in before.criteria] == [(3, 3), (3, 3)]
    assert [(row.decided, row.tie.count) for row in after.criteria] == [(3, 0), (3, 0)]


def test_an_answer_in_flight_is_refused_and_its_lease_released(ab, people):
    """The excluded annotator's held lease: the submission is refused and writes nothing."""
    lefty = people[0]
    (lease,) = assignments_next(study_id=ab.pk, annotator=lefty).leases
    annotator_exclude(study=ab, annotator=lefty, reason="by hand")
    assert Lease.objects.get(pk=lease.pk).state == Lease.State.SKIPPED
    with pytest.raises((Forbidden, Conflict)):
        judgment_submit(token=lease.token, annotator=lefty, client_id=uuid.uuid4(), answer={"choice": "left"})
    assert not Judgment.objects.filter(annotator=lefty).exists()


def test_the_tally_refuses_an_answer_whose_lease_survived(ab, people):
    """A lease the exclusion could not release (an answer was in flight on it) still cannot
    bring in a judgment: the tally row, written last, reads the exclusion back."""
    lefty = people[0]
    (lease,) = assignments_next(study_id=ab.pk, annotator=lefty).leases
    annotator_exclude(study=ab, annotator=lefty, reason="by hand")
    Lease.objects.filter(pk=lease.pk).update(state=Lease.State.ACTIVE)  # as if skipped over when locked
    with pytest.raises(Forbidden, match=errors.EXCLUDED):
        judgment_submit(token=lease.token, annotator=lefty, client_id=uuid.uuid4(), answer={"choice": "left"})
    assert not Judgment.objects.filter(annotator=lefty).exists()
    assert ab.tasks.filter(judgment_count__gt=0).count() == 0


def test_reinstating_brings_back_only_what_still_has_room(ab, people):
    lefty, ana, ben, _ = people
    answer(ab, lefty)
    answer(ab, ana)
    annotator_exclude(study=ab, annotator=lefty, reason="looked random")
    answer(ab, ben, count=2)  # two of the six reopened tasks are full again without lefty

    event = annotator_reinstate(study=ab, annotator=lefty, reason="a second look: fine")

    assert (event.action, event.judgments) == ("reinstated", 4)
    assert Judgment.objects.filter(annotator=lefty, excluded=True).count() == 2
    assert set(ab.tasks.values_list("judgment_count", flat=True)) == {2}
    assert Study.objects.get(pk=ab.pk).open_tasks == 0
    assert not Lease.objects.filter(task__study=ab, task_filled=False).exists()
    assert AnnotatorTally.objects.get(study=ab, annotator=lefty).excluded_at is None
    assert list(WorkforceEvent.objects.values_list("action", flat=True)) == ["reinstated", "excluded"]


def test_each_action_needs_a_reason_and_a_state_it_changes(ab, people):
    lefty = people[0]
    with pytest.raises(InvalidInput, match=errors.REASON_EMPTY):
        annotator_exclude(study=ab, annotator=lefty, reason="   ")
    with pytest.raises(Conflict, match="is not excluded"):
        annotator_reinstate(study=ab, annotator=lefty, reason="why not")
    annotator_exclude(study=ab, annotator=lefty, reason="never answered")  # nothing to take out: fine
    with pytest.raises(Conflict, match="already excluded"):
        annotator_exclude(study=ab, annotator=lefty, reason="again")
    assert WorkforceEvent.objects.count() == 1


def test_the_quality_rule_excludes_on_gold_accuracy(prompt_set, model_a, people):
    """Set to exclude, after m gold answers below the threshold the annotator is out."""
    study = study_create(
        name="bw",
        kind="best_worst",
        prompt_set=prompt_set,
        model_versions=[model_a],
        overlap=3,
        quality_action="exclude",
        quality_min_gold=2,
        quality_gold_accuracy=60,
    )
    for key in study.tasks.order_by("key").values_list("key", flat=True)[:2]:
        task_set_gold(study=study, task_key=key, answer={"positive": 0, "negative": 1})
    careless = people[0]
    done = 0
    with pytest.raises(Forbidden, match=errors.EXCLUDED):
        while True:  # the gold tasks come first or last; the rule acts at the second gold answer
            (lease,) = assignments_next(study_id=study.pk, annotator=careless).leases
            judgment_submit(
                token=lease.token,
                annotator=careless,
                client_id=uuid.uuid4(),
                answer={"positive": 4, "negative": 3},
            )
            done += 1
    event = WorkforceEvent.objects.get()
    assert event.by is None and event.judgments == done
    assert event.reason == RULE_REASON.format(correct=0, answered=2, percent=0, threshold=60)


def test_the_rule_is_a_setting_that_can_change_while_the_study_runs(prompt_set, model_a):
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    assert study_quality(study)["quality_action"] == "flag"
    study_update(study=study, quality_action="exclude", quality_gold_accuracy=80)
    study.refresh_from_db()
    assert study_quality(study) == {
        "quality_action": "exclude",
        "quality_min_gold": 5,
        "quality_gold_accuracy": 80,
        "quality_floor_seconds": 2,
        # The quiz and the gold rate share the group (tests/annotate/test_gold_quiz.py).
        "quiz_size": 0,
        "quiz_pass_percent": 80,
        "gold_rate_percent": 0,
    }


# ---------------------------------------------------------------- the race

HONEST = 7


def work(study_id, annotator, choice, stop, failures, barrier):
    """Next + submit until the study is full and ``stop`` is set, or until excluded."""
    rng = random.Random(annotator.pk)
    try:
        barrier.wait()
        while True:
            try:
                leases = assignments_next(study_id=study_id, annotator=annotator).leases
            except Forbidden:
                return
            if not leases:
                if (
                    stop.is_set()
                    and annotator_progress(study_id=study_id, annotator=annotator).remaining == 0
                ):
                    return
                time.sleep(0.01)
                continue
            try:
                judgment_submit(
                    token=leases[0].token,
                    annotator=annotator,
                    client_id=uuid.uuid4(),
                    answer={"choice": choice or rng.choice(["left", "tie", "right"])},
                )
            except Forbidden:
                return
            except Conflict:
                continue  # the lease was lost; take another task
    except Exception as exc:  # reported by the test, not lost in the thread
        failures.append(repr(exc))
    finally:
        connections.close_all()


def test_excluding_a_constant_annotator_mid_race_still_ends_with_n_valid_judgments(race_study):  # noqa: F811
    """N = 5; one annotator answers "left" every time and is excluded while everyone is
    working. Their judgments leave the table, their tasks reopen, and the study ends with
    exactly N valid judgments per task."""
    lefty = UserFactory(username="lefty", role="annotators")
    honest = [UserFactory(username=f"honest{i}", role="annotators") for i in range(HONEST)]
    stop, failures = threading.Event(), []
    # Lefty starts alone, so they have answers to lose; then everyone works at once, and
    # the exclusion lands while lefty's answers and everyone else's are in flight.
    alone, together = threading.Barrier(1), threading.Barrier(HONEST + 1)
    lefty_thread = threading.Thread(target=work, args=(race_study.pk, lefty, "left", stop, failures, alone))
    threads = [lefty_thread] + [
        threading.Thread(target=work, args=(race_study.pk, person, None, stop, failures, together))
        for person in honest
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while Judgment.objects.filter(annotator=lefty).count() < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
    together.wait()
    time.sleep(0.05)
    event = annotator_exclude(study=race_study, annotator=lefty, reason="left every time")
    stop.set()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    assert not any(thread.is_alive() for thread in threads)

    valid = Q(judgments__excluded=False)
    per_task = dict(race_study.tasks.annotate(n=Count("judgments", filter=valid)).values_list("pk", "n"))
    assert set(per_task.values()) == {OVERLAP}, per_task
    assert dict(race_study.tasks.values_list("pk", "judgment_count")) == per_task
    assert Study.objects.get(pk=race_study.pk).open_tasks == 0
    assert not Lease.objects.filter(task__study=race_study, task_filled=False).exists()
    lefty_judgments = Judgment.objects.filter(annotator=lefty)
    assert lefty_judgments.count() >= 3 and not lefty_judgments.filter(excluded=False).exists()
    assert event.judgments == lefty_judgments.count()  # nothing of lefty's came in after the exclusion
    comparison = ab_comparison(race_study)
    assert sum(row.decided + row.rejects for row in comparison.criteria) == race_study.tasks.count()
