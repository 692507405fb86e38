"""Recording a judgment: idempotent, never over N, never twice per annotator.

The page sends a ``client_id`` (a UUID it makes once per answer) with every attempt, so
a double click, a retry after a network drop or a resent answer from local storage is
recognised and answered with the judgment already recorded. Under the task's row lock
the judgment count is checked against N, and unique constraints on (task, annotator)
and (annotator, client_id) back both rules in the database itself.

Submitting is on every annotator's hot path, so its statements are written out in SQL
(``annotate.queries``, run by ``evalhub.sql``): in one transaction, the lease read, the
task's count raised (which takes the task's row lock), a fresh read once the lock is
held, then the judgment, the lease and the annotator's tally; a refused answer rolls the
count back.

The page also reports how long the task was on screen (``Timing``), as durations on its
own clock: the judgment keeps when the task became visible and its time on screen, counted
back from the server's clock, beside the time it was fetched (``fetched_at``: when the
lease was made).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate import errors
from annotate.answers import answer_check
from annotate.assignment import Progress, annotator_progress
from annotate.errors import Conflict, Forbidden, InvalidInput, NotFound
from annotate.models import AnnotatorTally, Judgment, Lease, Study, Task
from annotate.queries import (
    COUNT_SQL,
    DONE_FILLED_SQL,
    DONE_SQL,
    FILLED_SQL,
    FRESH_SQL,
    INSERT_JUDGMENT_SQL,
    LEASE_READ_SQL,
    QUESTION_IDS_SQL,
    QUIZ_STATE_SQL,
    TALLY_SQL,
)
from annotate.study_settings import QUIZ_PASS_PERCENT, QUIZ_SIZE
from annotate.workforce import quality_rule_check
from evalhub import sql


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool
    progress: Progress
    gold: bool = False  # the task is a gold item


# Each figure of a Timing at most 30 days: a task on screen longer, or an answer kept in
# local storage longer, is not measured.
MAX_TIMING_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Timing:
    """What the page measured for one answer, in milliseconds of its own clock (never a
    time of day: the annotator's clock may be off)."""

    shown_for_ms: int  # from the moment the task became visible to the answer
    on_screen_ms: int  # the part of it with the tab visible and the window focused
    answered_ms_ago: int  # from the answer to this attempt: 0 at first, more on a resend


def timing_times(
    timing: Timing | None, *, fetched_at: datetime, now: datetime
) -> tuple[datetime | None, float | None]:
    """``(displayed_at, on_screen_seconds)``: the page's durations counted back from ``now``,
    the task visible no earlier than it was fetched (``fetched_at``) and no later than ``now``,
    and on screen no longer than from then to the answer. Without timing, both None."""
    if timing is None:
        return None, None
    displayed = _within(now - _ms(timing.answered_ms_ago + timing.shown_for_ms), fetched_at, now)
    answered = _within(now - _ms(timing.answered_ms_ago), displayed, now)
    seconds = min(max(timing.on_screen_ms, 0) / 1000, (answered - displayed).total_seconds())
    return displayed, seconds


def _ms(value: int) -> timedelta:
    return timedelta(milliseconds=value)


def _within(moment: datetime, earliest: datetime, latest: datetime) -> datetime:
    return min(max(moment, earliest), latest)


def judgment_submit(
    *,
    token: str,
    annotator,
    client_id: str | uuid.UUID,
    answer: object,
    timing: Timing | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Record ``answer`` for the task leased under ``token``, with the page's ``timing`` where
    it sent one; a repeat is not a new judgment, and returns the first one unchanged."""
    now = now or timezone.now()
    client_id = _uuid(client_id)
    params = {
        "token": token,
        "me": annotator.pk,
        "client": sql.db_value(Judgment, "client_id", client_id),
        "now": sql.db_value(Lease, "expires_at", now),
    }
    try:
        with transaction.atomic():
            result = _submit(params, answer, timing, annotator, client_id, now)
    except Forbidden:
        # Excluded while this answer was on its way: the lease gives its slot back now
        # rather than when it expires, so the reopened task waits for nobody.
        Lease.objects.filter(token=token, annotator=annotator, state=Lease.State.ACTIVE).update(
            state=Lease.State.SKIPPED
        )
        raise
    except _Repeat as repeat:
        return _repeat(
            repeat.judgment_id, repeat.judgment_task_id, task_id=repeat.task_id, annotator=annotator
        )
    except IntegrityError:
        # Either a concurrent attempt with the same client_id won the race (the same
        # answer), or a judgment for this task and annotator came from elsewhere (an
        # import): the database's unique constraints decide.
        repeat = Judgment.objects.filter(annotator=annotator, client_id=client_id).first()
        if repeat is None:
            raise Conflict(errors.ALREADY_ANSWERED) from None
        task_id = Lease.objects.values_list("task_id", flat=True).get(token=token)
        return _repeat(repeat.pk, repeat.task_id, task_id=task_id, annotator=annotator)
    if result.gold:
        # A gold answer moves the annotator's accuracy: the study's rule may exclude them.
        quality_rule_check(study_id=params["study"], annotator=annotator)
    return result


def _submit(
    params: dict, answer: object, timing: Timing | None, annotator, client_id: uuid.UUID, now: datetime
) -> SubmitResult:
    row = sql.fetch_one(LEASE_READ_SQL, params)
    if row is None:
        raise NotFound(errors.UNKNOWN_ASSIGNMENT)
    (
        lease_id,
        task_id,
        shown_at,
        study_id,
        kind,
        status,
        prompt_id,
        gold,
        gold_answer,
        config,
        image_count,
        *repeat,
    ) = row
    if repeat[0] is not None:
        raise _Repeat(*repeat, task_id)
    if status == Study.Status.CLOSED:
        raise Conflict(errors.STUDY_CLOSED)
    clean = answer_check(
        kind,
        answer,
        image_count=image_count,
        question_ids=(
            frozenset(qid for (qid,) in sql.fetch_all(QUESTION_IDS_SQL, {"prompt": prompt_id}))
            if kind == Study.Kind.ALIGNMENT
            else frozenset()
        ),
    )
    params.update(lease=lease_id, task=task_id, study=study_id)
    # Counting this answer first takes the task's row lock with the write itself: other
    # submissions to the task wait here until this transaction ends.
    sql.execute(COUNT_SQL, params)
    (counted, overlap, state, expires_at, *repeat, others_active, left_model_id, open_tasks, closed) = (
        sql.fetch_one(FRESH_SQL, params)
    )
    taken = counted - 1
    if repeat[0] is not None:
        raise _Repeat(*repeat, task_id)
    if state == Lease.State.DONE:
        raise Conflict(errors.ALREADY_ANSWERED)
    if state == Lease.State.SKIPPED:
        raise Conflict(errors.TASK_SKIPPED)
    expired = sql.aware(expires_at) <= now
    if expired:
        # The slot this lease reserved may have gone to someone else meanwhile.
        taken += others_active
    if taken >= overlap and not gold:  # a gold item is answered by everyone served it
        raise Conflict(errors.LEASE_LOST if expired else errors.TASK_FULL)
    left_model_id = left_model_id if kind == Study.Kind.AB else None
    fetched_at = sql.aware(shown_at)
    displayed_at, on_screen_seconds = timing_times(timing, fetched_at=fetched_at, now=now)
    (judgment_id,) = sql.fetch_one(
        INSERT_JUDGMENT_SQL,
        {
            **params,
            "answer": sql.db_value(Judgment, "answer", clean),
            "left": left_model_id,
            "fetched": shown_at,
            "displayed": sql.db_value(Judgment, "displayed_at", displayed_at),
            "on_screen": on_screen_seconds,
            "answered": params["now"],
        },
    )
    if counted == overlap:
        sql.execute(DONE_FILLED_SQL, params)
        sql.execute(FILLED_SQL, params)
    else:
        sql.execute(DONE_SQL, params)
    correct = gold and clean == sql.json_value(Task, "gold_answer", gold_answer)
    done, excluded_at, gold_answered, gold_correct, quiz_state = sql.fetch_one(
        TALLY_SQL, {**params, "gold": int(gold), "correct": int(correct)}
    )
    if excluded_at is not None:
        raise Forbidden(errors.EXCLUDED)  # leaving the transaction undoes this answer
    if gold and not quiz_state:
        _quiz_result(params, sql.json_value(Study, "config", config), gold_answered, gold_correct)
    judgment = Judgment(
        id=judgment_id,
        task_id=task_id,
        annotator=annotator,
        client_id=client_id,
        answer=clean,
        left_model_id=left_model_id,
        fetched_at=fetched_at,
        displayed_at=displayed_at,
        on_screen_seconds=on_screen_seconds,
        answered_at=now,
    )
    # The counts were read before this answer was written: it moves its task out of the
    # annotator's remaining ones, because the task is now full or closed to them.
    progress = Progress(done=done, remaining=open_tasks - closed - 1)
    return SubmitResult(judgment=judgment, created=True, progress=progress, gold=gold)


def _quiz_result(params: dict, config: dict, gold_answered: int, gold_correct: int) -> None:
    """Record the qualification quiz's result at its last gold answer (the ``quiz_size``-th),
    where the study has a quiz: passed with at least ``quiz_pass_percent`` of them right."""
    quality = config.get("quality", {})
    size = quality.get(QUIZ_SIZE.name, QUIZ_SIZE.default)
    if not size or gold_answered != size:
        return
    passed = gold_correct * 100 >= quality.get(QUIZ_PASS_PERCENT.name, QUIZ_PASS_PERCENT.default) * size
    state = AnnotatorTally.QuizState.PASSED if passed else AnnotatorTally.QuizState.FAILED
    sql.execute(QUIZ_STATE_SQL, {**params, "quiz": state.value})


class _Repeat(Exception):
    """A judgment already recorded under this client_id: leave the transaction (undoing the
    count if it was raised), then answer with that judgment."""

    def __init__(self, judgment_id: int, judgment_task_id: int, task_id: int):
        super().__init__(judgment_id)
        self.judgment_id, self.judgment_task_id, self.task_id = judgment_id, judgment_task_id, task_id


def _repeat(judgment_id: int, judgment_task_id: int, *, task_id: int, annotator) -> SubmitResult:
    """The judgment already recorded under this client_id, if it answers this task."""
    if judgment_task_id != task_id:
        raise Conflict(errors.CLIENT_ID_REUSED)
    judgment = Judgment.objects.select_related("task").get(pk=judgment_id)
    progress = annotator_progress(study_id=judgment.task.study_id, annotator=annotator)
    return SubmitResult(judgment=judgment, created=False, progress=progress)


def _uuid(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("client_id must be a UUID") from None
