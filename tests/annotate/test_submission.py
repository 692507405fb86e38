"""Recording judgments: idempotent, validated, never twice, never over N."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotate import errors
from annotate.assignment import assignments_next, lease_skip
from annotate.errors import Conflict, InvalidInput
from annotate.models import Judgment, Lease, Task
from annotate.services import study_create, study_update
from annotate.submission import MAX_TIMING_MS, Timing, judgment_submit

NEXT = "/api/annotate/studies/{}/next/"
SUBMIT = "/api/annotate/assignments/{}/submit/"


@pytest.fixture
def ab(prompt_set, model_a, model_b):
    return study_create(
        name="ab",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=[model_a, model_b],
        criteria=["flaws"],
        overlap=2,
        lease_seconds=60,
    )


@pytest.fixture
def bw(prompt_set, model_a):
    return study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])


@pytest.fixture
def al(prompt_set, model_a):
    return study_create(name="al", kind="alignment", prompt_set=prompt_set, model_versions=[model_a])


def lease_for(study, annotator, **kwargs):
    return assignments_next(study_id=study.pk, annotator=annotator, **kwargs).leases[0]


def test_it_records_an_ab_judgment_with_the_left_model_server_side(ab, annotators):
    """The judgment keeps the choice, the model shown left, and the shown/answered times."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    result = judgment_submit(
        token=lease.token, annotator=dana, client_id=uuid.uuid4(), answer={"choice": "right"}
    )
    judgment = result.judgment
    assert result.created
    assert judgment.answer == {"choice": "right"}
    left = Task.objects.get(pk=lease.task_id).task_images.get(position=0).image.model_version
    assert judgment.left_model == left
    assert judgment.fetched_at == lease.shown_at and judgment.answered_at >= judgment.fetched_at
    assert Task.objects.get(pk=lease.task_id).judgment_count == 1
    assert Lease.objects.get(pk=lease.pk).state == Lease.State.DONE


def test_the_same_client_id_is_the_same_judgment(ab, annotators):
    """A double click or a retry returns the first judgment and records nothing new."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    client_id = uuid.uuid4()
    first = judgment_submit(token=lease.token, annotator=dana, client_id=client_id, answer={"choice": "tie"})
    again = judgment_submit(
        token=lease.token, annotator=dana, client_id=str(client_id), answer={"choice": "tie"}
    )
    assert (first.created, again.created) == (True, False)
    assert again.judgment.pk == first.judgment.pk
    assert Judgment.objects.count() == 1
    assert Task.objects.get(pk=lease.task_id).judgment_count == 1


def test_a_second_tab_cannot_answer_twice(ab, annotators):
    """Another answer with a new client_id for an answered task is a conflict."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    judgment_submit(token=lease.token, annotator=dana, client_id=uuid.uuid4(), answer={"choice": "tie"})
    with pytest.raises(Conflict, match=errors.ALREADY_ANSWERED):
        judgment_submit(token=lease.token, annotator=dana, client_id=uuid.uuid4(), answer={"choice": "left"})
    assert Judgment.objects.count() == 1


def test_a_client_id_cannot_be_reused_for_another_task(ab, annotators):
    """A client_id names one answer to one task."""
    dana = annotators[0]
    first, second = assignments_next(study_id=ab.pk, annotator=dana, count=2).leases
    client_id = uuid.uuid4()
    judgment_submit(token=first.token, annotator=dana, client_id=client_id, answer={"choice": "tie"})
    with pytest.raises(Conflict, match=errors.CLIENT_ID_REUSED):
        judgment_submit(token=second.token, annotator=dana, client_id=client_id, answer={"choice": "tie"})


@pytest.mark.parametrize(
    "answer, message",
    [
        ({"choice": "up"}, errors.BAD_CHOICE.format(choices="left, tie, right, reject")),
        ({"choice": "left", "extra": 1}, errors.ANSWER_FIELDS.format(kind="A/B", fields="choice")),
        ("left", errors.ANSWER_NOT_OBJECT),
    ],
)
def test_invalid_ab_answers_are_refused(ab, annotators, answer, message):
    """An A/B answer is one of the four choices."""
    lease = lease_for(ab, annotators[0])
    with pytest.raises(InvalidInput) as caught:
        judgment_submit(token=lease.token, annotator=annotators[0], client_id=uuid.uuid4(), answer=answer)
    assert caught.value.message == message
    assert not Judgment.objects.exists()


@pytest.mark.parametrize(
    "answer, message",
    [
        ({"positive": 1, "negative": 1}, errors.SAME_POSITIVE_NEGATIVE),
        ({"positive": 5, "negative": 1}, errors.BAD_POSITION.format(field="positive", last=4)),
        ({"positive": 1, "negative": True}, errors.BAD_POSITION.format(field="negative", last=4)),
        ({"positive": 1}, errors.ANSWER_FIELDS.format(kind="best/worst", fields="positive, negative")),
    ],
)
def test_invalid_best_worst_answers_are_refused(bw, annotators, answer, message):
    """Positive and negative are two different positions among the five."""
    lease = lease_for(bw, annotators[0])
    with pytest.raises(InvalidInput) as caught:
        judgment_submit(token=lease.token, annotator=annotators[0], client_id=uuid.uuid4(), answer=answer)
    assert caught.value.message == message


def test_best_worst_records_the_positions(bw, annotators):
    """A valid best/worst answer is stored as given."""
    lease = lease_for(bw, annotators[0])
    result = judgment_submit(
        token=lease.token,
        annotator=annotators[0],
        client_id=uuid.uuid4(),
        answer={"positive": 3, "negative": 0},
    )
    assert result.judgment.answer == {"positive": 3, "negative": 0}
    assert result.judgment.left_model is None


def test_alignment_needs_every_question_answered_yes_or_no(al, annotators):
    """Each of the prompt's questions gets a yes or no; unknown ids are refused."""
    dana = annotators[0]
    lease = lease_for(al, dana)
    q1, q2 = (
        Task.objects.get(pk=lease.task_id).prompt.questions.order_by("position").values_list("pk", flat=True)
    )
    cases = [
        ({"answers": {str(q1): "yes"}}, errors.MISSING_QUESTIONS.format(ids=q2)),
        ({"answers": {str(q1): "yes", str(q2): "maybe"}}, errors.BAD_YES_NO.format(question=q2)),
        (
            {"answers": {str(q1): "yes", str(q2): "no", "999999": "no"}},
            errors.UNKNOWN_QUESTIONS.format(ids=999999),
        ),
    ]
    for answer, message in cases:
        with pytest.raises(InvalidInput) as caught:
            judgment_submit(token=lease.token, annotator=dana, client_id=uuid.uuid4(), answer=answer)
        assert caught.value.message == message
    result = judgment_submit(
        token=lease.token,
        annotator=dana,
        client_id=uuid.uuid4(),
        answer={"answers": {str(q1): "Yes", str(q2): False}},
    )
    assert result.judgment.answer == {"answers": {str(q1): True, str(q2): False}}


def test_a_closed_study_takes_no_answers(ab, annotators):
    """Closing a study refuses answers still in flight, with a clear message."""
    lease = lease_for(ab, annotators[0])
    study_update(study=ab, status="closed")
    with pytest.raises(Conflict, match=errors.STUDY_CLOSED):
        judgment_submit(
            token=lease.token, annotator=annotators[0], client_id=uuid.uuid4(), answer={"choice": "tie"}
        )


def test_a_paused_study_still_takes_answers_in_flight(ab, annotators):
    """Pausing stops new tasks, not the answers to tasks already shown."""
    lease = lease_for(ab, annotators[0])
    study_update(study=ab, status="paused")
    assert judgment_submit(
        token=lease.token, annotator=annotators[0], client_id=uuid.uuid4(), answer={"choice": "tie"}
    ).created


def test_a_skipped_task_cannot_be_answered(ab, annotators):
    """After a skip the lease takes no answer."""
    lease = lease_for(ab, annotators[0])
    lease_skip(token=lease.token, annotator=annotators[0])
    with pytest.raises(Conflict, match=errors.TASK_SKIPPED):
        judgment_submit(
            token=lease.token, annotator=annotators[0], client_id=uuid.uuid4(), answer={"choice": "tie"}
        )


def test_a_late_answer_is_kept_while_the_task_has_room(ab, annotators):
    """An expired lease whose slot nobody took still records its answer."""
    lease = lease_for(ab, annotators[0])
    late = timezone.now() + timedelta(minutes=10)
    result = judgment_submit(
        token=lease.token, annotator=annotators[0], client_id=uuid.uuid4(), answer={"choice": "tie"}, now=late
    )
    assert result.created


def test_a_late_answer_to_a_full_task_is_refused(ab, annotators):
    """When the others filled the task after the lease expired, the late answer is a conflict
    that says the lease expired and the task went to someone else."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    late = timezone.now() + timedelta(minutes=10)
    filled = 0
    for annotator in annotators[1:]:
        for other in assignments_next(study_id=ab.pk, annotator=annotator, count=3, now=late).leases:
            if other.task_id == lease.task_id and filled < 2:
                judgment_submit(
                    token=other.token,
                    annotator=annotator,
                    client_id=uuid.uuid4(),
                    answer={"choice": "left"},
                    now=late,
                )
                filled += 1
    assert Task.objects.get(pk=lease.task_id).judgment_count == 2
    with pytest.raises(Conflict, match=errors.LEASE_LOST):
        judgment_submit(
            token=lease.token, annotator=dana, client_id=uuid.uuid4(), answer={"choice": "tie"}, now=late
        )
    assert Judgment.objects.filter(task_id=lease.task_id).count() == 2


def test_an_answer_to_a_task_filled_under_a_live_lease_is_refused_as_full(ab, annotators):
    """A task can fill while a lease on it is live only by other means (here, an import of
    judgments): the answer is refused as "full", not as a lost lease."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    task = Task.objects.get(pk=lease.task_id)
    for annotator in annotators[1:3]:
        Judgment.objects.create(
            task=task,
            annotator=annotator,
            client_id=uuid.uuid4(),
            answer={"choice": "left"},
            fetched_at=timezone.now(),
            answered_at=timezone.now(),
            source="import",
        )
    Task.objects.filter(pk=task.pk).update(judgment_count=2)
    with pytest.raises(Conflict, match=errors.TASK_FULL):
        judgment_submit(token=lease.token, annotator=dana, client_id=uuid.uuid4(), answer={"choice": "tie"})
    assert Judgment.objects.filter(task=task, annotator=dana).count() == 0


def test_a_bad_client_id_is_refused(ab, annotators):
    """The client_id must be a UUID."""
    lease = lease_for(ab, annotators[0])
    with pytest.raises(InvalidInput, match="client_id must be a UUID"):
        judgment_submit(token=lease.token, annotator=annotators[0], client_id="1", answer={"choice": "tie"})


# ---------------------------------------------------------------- time on screen


def submit_timed(lease, annotator, timing: Timing | None, *, at: timedelta, client_id=None):
    """Answer ``lease`` ``at`` after it was fetched, with the page's ``timing``."""
    return judgment_submit(
        token=lease.token,
        annotator=annotator,
        client_id=client_id or uuid.uuid4(),
        answer={"choice": "tie"},
        timing=timing,
        now=lease.shown_at + at,
    )


def test_it_keeps_when_the_task_was_displayed_and_how_long_it_was_on_screen(ab, annotators):
    """The page's durations, counted back from the server's clock, give displayed_at and on_screen_seconds."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    result = submit_timed(
        lease,
        dana,
        Timing(shown_for_ms=20_000, on_screen_ms=12_500, answered_ms_ago=0),
        at=timedelta(minutes=1),
    )
    judgment = Judgment.objects.get()
    assert judgment.fetched_at == lease.shown_at
    assert judgment.answered_at == lease.shown_at + timedelta(minutes=1)
    assert judgment.displayed_at == judgment.answered_at - timedelta(seconds=20)
    assert judgment.on_screen_seconds == 12.5
    assert (result.judgment.displayed_at, result.judgment.on_screen_seconds) == (judgment.displayed_at, 12.5)


def test_a_task_is_not_displayed_before_it_was_fetched(ab, annotators):
    """A page that claims more time than has passed since the fetch is held to the fetch time,
    and its time on screen to the time since then."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    submit_timed(
        lease,
        dana,
        Timing(shown_for_ms=90_000, on_screen_ms=80_000, answered_ms_ago=0),
        at=timedelta(seconds=60),
    )
    judgment = Judgment.objects.get()
    assert judgment.displayed_at == lease.shown_at
    assert judgment.on_screen_seconds == 60.0


def test_an_answer_claimed_before_the_fetch_is_on_screen_for_no_time(ab, annotators):
    """An answer the page dates before the fetch leaves the task displayed at the fetch, on screen 0 s."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    submit_timed(
        lease,
        dana,
        Timing(shown_for_ms=5_000, on_screen_ms=5_000, answered_ms_ago=120_000),
        at=timedelta(seconds=60),
    )
    judgment = Judgment.objects.get()
    assert (judgment.displayed_at, judgment.on_screen_seconds) == (lease.shown_at, 0.0)


def test_a_task_is_not_displayed_after_the_answer_arrived(ab, annotators):
    """Figures that would put the display in the future (a caller's negative durations, or a
    server whose clock is behind the one that leased) are held to the answer's arrival."""
    dana, eve = annotators[:2]
    lease = lease_for(ab, dana)
    submit_timed(
        lease,
        dana,
        Timing(shown_for_ms=-5_000, on_screen_ms=-1, answered_ms_ago=-1_000),
        at=timedelta(seconds=60),
    )
    judgment = Judgment.objects.get()
    assert (judgment.displayed_at, judgment.on_screen_seconds) == (judgment.answered_at, 0.0)
    behind = lease_for(ab, eve)
    submit_timed(
        behind,
        eve,
        Timing(shown_for_ms=1_000, on_screen_ms=1_000, answered_ms_ago=0),
        at=timedelta(seconds=-30),
    )
    judgment = Judgment.objects.get(annotator=eve)
    assert (judgment.displayed_at, judgment.on_screen_seconds) == (judgment.answered_at, 0.0)


def test_without_timing_both_times_stay_empty(ab, annotators):
    """API clients and imports send no timing: displayed_at and on_screen_seconds are NULL."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    result = submit_timed(lease, dana, None, at=timedelta(seconds=10))
    judgment = Judgment.objects.get()
    assert (judgment.displayed_at, judgment.on_screen_seconds) == (None, None)
    assert (result.judgment.displayed_at, result.judgment.on_screen_seconds) == (None, None)
    assert judgment.fetched_at == lease.shown_at


def test_a_resend_from_local_storage_dates_the_display_the_same(ab, annotators):
    """An answer whose first attempts never arrived comes later with a larger answered_ms_ago:
    the display is dated where the first attempt would have dated it."""
    dana, eve = annotators[:2]
    figures = {"shown_for_ms": 20_000, "on_screen_ms": 15_000}
    first = lease_for(ab, dana)
    submit_timed(first, dana, Timing(**figures, answered_ms_ago=0), at=timedelta(seconds=30))
    resent = lease_for(ab, eve)
    submit_timed(resent, eve, Timing(**figures, answered_ms_ago=300_000), at=timedelta(seconds=330))
    on_time, late = Judgment.objects.get(annotator=dana), Judgment.objects.get(annotator=eve)
    assert (
        on_time.displayed_at - first.shown_at == late.displayed_at - resent.shown_at == timedelta(seconds=10)
    )
    assert on_time.on_screen_seconds == late.on_screen_seconds == 15.0
    assert late.answered_at - late.displayed_at == timedelta(seconds=320)


def test_a_repeat_returns_the_first_judgment_with_its_times(ab, annotators):
    """A resend of an answer already recorded is a repeat: its figures change nothing."""
    dana = annotators[0]
    lease = lease_for(ab, dana)
    client_id = uuid.uuid4()
    first = submit_timed(
        lease,
        dana,
        Timing(shown_for_ms=8_000, on_screen_ms=6_000, answered_ms_ago=0),
        at=timedelta(seconds=10),
        client_id=client_id,
    )
    again = submit_timed(
        lease,
        dana,
        Timing(shown_for_ms=8_000, on_screen_ms=6_000, answered_ms_ago=4_000),
        at=timedelta(seconds=14),
        client_id=client_id,
    )
    assert (first.created, again.created) == (True, False)
    assert again.judgment.displayed_at == first.judgment.displayed_at == lease.shown_at + timedelta(seconds=2)
    assert again.judgment.on_screen_seconds == first.judgment.on_screen_seconds == 6.0
    judgment = Judgment.objects.get()
    assert (judgment.displayed_at, judgment.on_screen_seconds, judgment.answered_at) == (
        first.judgment.displayed_at,
        6.0,
        lease.shown_at + timedelta(seconds=10),
    )


@pytest.fixture
def api(ab, annotators):
    """Dana's API client, holding two leases on the A/B study (``api.tokens``)."""
    client = APIClient()
    client.force_authenticate(annotators[0])
    assignments = client.post(NEXT.format(ab.pk), {"count": 2}, format="json").json()["assignments"]
    client.tokens = [a["token"] for a in assignments]
    return client


def test_the_api_takes_the_page_timing(api):
    """The submit endpoint passes the page's figures on; a null timing is no timing."""
    timed, untimed = api.tokens
    body = {
        "client_id": str(uuid.uuid4()),
        "answer": {"choice": "left"},
        "timing": {"shown_for_ms": 0, "on_screen_ms": 0, "answered_ms_ago": 0},
    }
    assert api.post(SUBMIT.format(timed), body, format="json").status_code == 201
    body.update(client_id=str(uuid.uuid4()), timing=None)
    assert api.post(SUBMIT.format(untimed), body, format="json").status_code == 201
    judgment = Judgment.objects.get(task__leases__token=timed)
    assert (judgment.displayed_at, judgment.on_screen_seconds) == (judgment.answered_at, 0.0)
    judgment = Judgment.objects.get(task__leases__token=untimed)
    assert (judgment.displayed_at, judgment.on_screen_seconds) == (None, None)


@pytest.mark.parametrize(
    "timing, detail",
    [
        (
            {"shown_for_ms": 1_000, "on_screen_ms": 1_001, "answered_ms_ago": 0},
            {"on_screen_ms": [errors.ON_SCREEN_OVER_SHOWN]},
        ),
        (
            {"shown_for_ms": -1, "on_screen_ms": 0, "answered_ms_ago": 0},
            {"shown_for_ms": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            {"shown_for_ms": 1_000, "on_screen_ms": 0, "answered_ms_ago": MAX_TIMING_MS + 1},
            {"answered_ms_ago": [f"Ensure this value is less than or equal to {MAX_TIMING_MS}."]},
        ),
        (
            {"shown_for_ms": 1_000, "on_screen_ms": 0.5, "answered_ms_ago": 0},
            {"on_screen_ms": ["A valid integer is required."]},
        ),
        ({"shown_for_ms": 1_000, "on_screen_ms": 0}, {"answered_ms_ago": ["This field is required."]}),
        ("fast", {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}),
    ],
)
def test_bad_timing_is_refused_with_the_reason(api, timing, detail):
    """Timing is three whole, non-negative durations of at most 30 days, on screen no longer than shown."""
    body = {"client_id": str(uuid.uuid4()), "answer": {"choice": "left"}, "timing": timing}
    response = api.post(SUBMIT.format(api.tokens[0]), body, format="json")
    assert (response.status_code, response.json()["timing"]) == (400, detail)
    assert not Judgment.objects.exists()
