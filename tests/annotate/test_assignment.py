"""Handing out tasks: who gets what, in which order, for how long."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotate import errors
from annotate.assignment import (
    Progress,
    annotator_progress,
    assignments_next,
    lease_heartbeat,
    lease_report_image,
    lease_skip,
)
from annotate.errors import Conflict, NotFound
from annotate.models import AnnotatorTally, ImageReport, Judgment, Lease, Task
from annotate.queries import STUDY_SQL, pick_sql
from annotate.services import study_create, study_update
from annotate.submission import judgment_submit
from tests.factories import UserFactory


@pytest.fixture
def study(prompt_set, model_a, model_b):
    """An A/B study over three prompts for flaws only: three tasks, N = 2."""
    return study_create(
        name="ab",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=[model_a, model_b],
        criteria=["flaws"],
        overlap=2,
        lease_seconds=60,
    )


def answer(lease, annotator, choice="left"):
    return judgment_submit(
        token=lease.token, annotator=annotator, client_id=uuid.uuid4(), answer={"choice": choice}
    )


def test_it_leases_a_task_the_annotator_has_not_answered(study, annotators):
    """An answered task is never served to the same annotator again."""
    dana = annotators[0]
    seen = []
    while leases := assignments_next(study_id=study.pk, annotator=dana).leases:
        seen.append(leases[0].task_id)
        answer(leases[0], dana)
    assert sorted(seen) == sorted(study.tasks.values_list("pk", flat=True))


def test_a_held_lease_is_returned_again(study, annotators):
    """Reloading the page gives the same task back rather than a new one."""
    first = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    again = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    assert [lease.pk for lease in again] == [lease.pk for lease in first]
    assert Lease.objects.count() == 1


def test_it_leases_up_to_count_tasks_for_preloading(study, annotators):
    """count=2 leases the current task and the next one."""
    leases = assignments_next(study_id=study.pk, annotator=annotators[0], count=2).leases
    assert len({lease.task_id for lease in leases}) == 2


def test_no_task_is_held_by_more_than_n_annotators(study, annotators):
    """With N = 2 and three tasks, six annotators exhaust the leases; the seventh gets none."""
    counts = {}
    for annotator in annotators + [UserFactory(role="annotators")]:
        for lease in assignments_next(study_id=study.pk, annotator=annotator).leases:
            counts[lease.task_id] = counts.get(lease.task_id, 0) + 1
    assert sorted(counts.values()) == [2, 2, 2]
    late = UserFactory(role="annotators")
    assert assignments_next(study_id=study.pk, annotator=late).leases == []


def test_partly_answered_tasks_are_finished_first(study, annotators):
    """A task with one answer is served before untouched ones."""
    dana, eve = annotators[:2]
    (lease,) = assignments_next(study_id=study.pk, annotator=dana).leases
    answer(lease, dana)
    (next_for_eve,) = assignments_next(study_id=study.pk, annotator=eve).leases
    assert next_for_eve.task_id == lease.task_id


def test_tasks_are_served_in_a_random_order_not_by_creation(prompt_set, model_a, model_b, annotators):
    """Among equally filled tasks the order follows the random key, not the id (so not the model)."""
    study = study_create(
        name="al", kind="alignment", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=1
    )
    served = []
    while leases := assignments_next(study_id=study.pk, annotator=annotators[0]).leases:
        served.append(leases[0].task_id)
        lease_skip(token=leases[0].token, annotator=annotators[0])
    assert served == list(study.tasks.order_by("order_key").values_list("pk", flat=True))


def test_an_expired_lease_returns_the_task_to_the_pool(study, annotators):
    """After the lease time a held task can go to someone else."""
    holders = annotators[:2]
    task_ids = set()
    for annotator in holders:
        for lease in assignments_next(study_id=study.pk, annotator=annotator, count=3).leases:
            task_ids.add(lease.task_id)
    later = timezone.now() + timedelta(seconds=61)
    assert assignments_next(study_id=study.pk, annotator=annotators[2]).leases == []
    assert len(assignments_next(study_id=study.pk, annotator=annotators[2], now=later).leases) == 1


def test_a_skipped_task_goes_back_to_the_pool_but_not_to_the_skipper(study, annotators):
    """Skip frees the slot for others and is remembered for the skipper."""
    dana = annotators[0]
    (lease,) = assignments_next(study_id=study.pk, annotator=dana).leases
    lease_skip(token=lease.token, annotator=dana)
    served_to_dana = [assignments_next(study_id=study.pk, annotator=dana).leases[0].task_id]
    assert lease.task_id not in served_to_dana
    assert Lease.objects.get(pk=lease.pk).state == Lease.State.SKIPPED
    assert annotator_progress(study_id=study.pk, annotator=dana).remaining == 2


def test_heartbeat_extends_the_lease(study, annotators):
    """A heartbeat moves the expiry forward by the lease time."""
    (lease,) = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    later = lease.expires_at - timedelta(seconds=10)
    extended = lease_heartbeat(token=lease.token, annotator=annotators[0], now=later)
    assert extended.expires_at == later + timedelta(seconds=60)


def test_heartbeat_after_the_task_went_to_others_is_refused(study, annotators):
    """An expired lease whose slot was taken cannot be revived."""
    dana = annotators[0]
    (lease,) = assignments_next(study_id=study.pk, annotator=dana).leases
    later = timezone.now() + timedelta(seconds=120)
    for annotator in annotators[1:3]:
        for other in assignments_next(study_id=study.pk, annotator=annotator, count=3, now=later).leases:
            if other.task_id == lease.task_id:
                break
    assert Lease.objects.filter(task_id=lease.task_id, state="active", expires_at__gt=later).count() == 2
    with pytest.raises(Conflict, match=errors.LEASE_LOST):
        lease_heartbeat(token=lease.token, annotator=dana, now=later)


def test_paused_and_closed_studies_hand_out_nothing(study, annotators):
    """Pausing stops new leases with a clear message; closing too."""
    study = study_update(study=study, status="paused")
    with pytest.raises(Conflict, match=errors.STUDY_PAUSED):
        assignments_next(study_id=study.pk, annotator=annotators[0])
    study = study_update(study=study, status="closed")
    with pytest.raises(Conflict, match=errors.STUDY_CLOSED):
        assignments_next(study_id=study.pk, annotator=annotators[0])


def test_another_annotators_token_is_not_found(study, annotators):
    """Tokens are per annotator; someone else's is unknown to you."""
    (lease,) = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    with pytest.raises(NotFound, match=errors.UNKNOWN_ASSIGNMENT):
        lease_skip(token=lease.token, annotator=annotators[1])


def test_reporting_a_broken_image_records_it_and_skips(study, annotators):
    """A report names the image at the position and frees the task."""
    (lease,) = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    result = lease_report_image(token=lease.token, annotator=annotators[0], position=1, reason="grey square")
    assert result.created and result.position == 1
    assert result.report.image == Task.objects.get(pk=lease.task_id).task_images.get(position=1).image
    assert ImageReport.objects.count() == 1
    assert Lease.objects.get(pk=lease.pk).state == Lease.State.SKIPPED


def test_a_report_at_no_image_is_not_found(study, annotators):
    """A position the task has no image at is refused, and nothing is recorded or skipped."""
    (lease,) = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    with pytest.raises(NotFound, match=errors.NO_IMAGE_AT.format(position=7)):
        lease_report_image(token=lease.token, annotator=annotators[0], position=7)
    assert not ImageReport.objects.exists()
    assert Lease.objects.get(pk=lease.pk).state == Lease.State.ACTIVE


def test_a_repeated_report_returns_the_first_and_records_nothing(study, annotators):
    """One report per annotator and task: a repeat, at any position, is the first report."""
    (lease,) = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    first = lease_report_image(token=lease.token, annotator=annotators[0], position=1, reason="grey")
    for position in (1, 0, 7):
        repeat = lease_report_image(token=lease.token, annotator=annotators[0], position=position, reason="x")
        assert not repeat.created and repeat.report.pk == first.report.pk
        assert (repeat.position, repeat.report.reason) == (1, "grey")
    assert ImageReport.objects.count() == 1


def test_the_database_keeps_one_report_per_annotator_and_task(study, annotators):
    """The unique constraint backs the rule when two reports race past the first look."""
    from django.db import IntegrityError, transaction

    (lease,) = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    report = lease_report_image(token=lease.token, annotator=annotators[0], position=0).report
    with pytest.raises(IntegrityError), transaction.atomic():
        ImageReport.objects.create(task_id=report.task_id, image_id=report.image_id, annotator=annotators[0])


def counted_progress(study, annotator) -> Progress:
    """Progress counted from the judgments and leases themselves, none of the kept counts."""
    open_tasks = study.tasks.filter(judgment_count__lt=study.overlap)
    closed = Lease.objects.filter(annotator=annotator, task__in=open_tasks).exclude(state=Lease.State.ACTIVE)
    return Progress(
        done=Judgment.objects.filter(annotator=annotator, task__study=study).count(),
        remaining=open_tasks.count() - closed.count(),
    )


def test_next_and_submit_report_the_progress_a_count_from_scratch_gives(study, annotators):
    """The progress that next, submit and annotator_progress report matches a count from the
    judgments and leases at every step: answering, a task reaching N, a skip and a repeated
    submission; and the kept counts behind it (tallies, full tasks' leases) stay exact."""
    dana, eve = annotators[:2]

    def fresh(annotator):
        progress = annotator_progress(study_id=study.pk, annotator=annotator)
        assert progress == counted_progress(study, annotator)
        return progress

    for annotator in (dana, eve, dana, eve):
        result = assignments_next(study_id=study.pk, annotator=annotator)
        assert result.progress == fresh(annotator)
        lease, client_id = result.leases[0], uuid.uuid4()
        submitted = judgment_submit(
            token=lease.token, annotator=annotator, client_id=client_id, answer={"choice": "left"}
        )
        assert submitted.progress == fresh(annotator)
    assert fresh(dana) == Progress(done=2, remaining=1)  # N = 2: two tasks are full
    study.refresh_from_db()
    assert study.open_tasks == study.tasks.filter(judgment_count__lt=2).count() == 1
    leases = Lease.objects.select_related("task")
    assert {(lease.task.judgment_count, lease.task_filled) for lease in leases} == {(2, True)}
    assert sorted(AnnotatorTally.objects.values_list("annotator__username", "judgments")) == [
        ("dana", 2),
        ("eve", 2),
    ]
    repeat = judgment_submit(token=lease.token, annotator=eve, client_id=client_id, answer={"choice": "left"})
    assert not repeat.created and repeat.progress == fresh(eve) == Progress(done=2, remaining=1)
    (lease,) = assignments_next(study_id=study.pk, annotator=dana).leases
    lease_skip(token=lease.token, annotator=dana)
    assert assignments_next(study_id=study.pk, annotator=dana).progress == Progress(done=2, remaining=0)
    assert fresh(dana) == Progress(done=2, remaining=0)


def test_an_annotators_own_expired_lease_is_renewed_when_its_task_comes_round(study, annotators):
    """An expired lease does not bar its annotator from the task: it is handed back under
    the same token, with a new expiry, not as a second lease."""
    dana = annotators[0]
    (lease,) = assignments_next(study_id=study.pk, annotator=dana).leases
    later = lease.expires_at + timedelta(seconds=1)
    leases = assignments_next(study_id=study.pk, annotator=dana, count=3, now=later).leases
    assert lease.token in {held.token for held in leases}
    assert Lease.objects.filter(annotator=dana).count() == 3
    assert Lease.objects.get(pk=lease.pk).expires_at > later


def test_the_reads_of_an_annotators_leases_use_the_open_leases_index(study, annotators):
    """Progress, held leases and the queue's pass-over list read the partial index of
    leases on tasks not yet full, so none reads back through all the annotator ever
    answered (the planner would fall back to their whole history if a predicate drifted
    from the index's)."""
    dana = annotators[0]
    params = {
        "study": study.pk,
        "me": dana.pk,
        "now": timezone.now(),
        "limit": 1,
        "n": study.overlap,
        "conflicts": "revealing",
    }
    plans = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        for name, statement in (("study", STUDY_SQL), ("pick", pick_sql(barred=True))):
            cursor.execute(explain + statement, params)
            plans[name] = "\n".join(str(row) for row in cursor.fetchall())
    assert plans["study"].count("lease_annotator_open_idx") == 2, plans["study"]
    assert plans["pick"].count("lease_annotator_open_idx") == 1, plans["pick"]
    # The exposure check looks the task's images up by index (by image, or by annotator
    # and image), never through all exposures.
    exposure_indexes = (
        "exposure_once",
        "annotate_imageexposure_image_id",
        "sqlite_autoindex_annotate_imageexp",
    )
    assert any(index in plans["pick"] for index in exposure_indexes), plans["pick"]
    assert "SCAN e" not in plans["pick"] and "Seq Scan on annotate_imageexposure" not in plans["pick"]
