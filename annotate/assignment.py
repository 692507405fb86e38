"""Handing tasks to annotators: leases, heartbeats, skips and reports.

Invariant, for every task at every moment: judgments + unexpired active leases ≤ N
(the study's overlap). A lease is created only while that holds, under a row lock on
the task (``SELECT … FOR UPDATE``; PostgreSQL skips rows another annotator is locking,
SQLite serializes writers with IMMEDIATE transactions), so no task is over-served.

Order: the most answered tasks first, so a study's items reach N before new ones open;
ties are broken by a random per-task key, so the order says nothing about prompt or model.

Exposure (annotate.exposure): the same statement passes over tasks whose images the
annotator met in a conflicting context, checks the picked one again after its lock, and
writes the images of the task it leases.

Access (annotate.enrollment): a study open to enrolled annotators only hands nothing to
anyone else, read by the same statement as the study's state. A removed annotator's
leases were skipped when they were removed, so their answers in flight are refused as
skipped tasks (TASK_SKIPPED); a lease taken in the instant the removal commits lives out
its ``lease_seconds`` like any other.

Gold items (annotate.services.task_set_gold) are answered by everyone served them, not
by N. Where the study's "quality" settings ask for it, an annotator first takes a
qualification quiz of ``quiz_size`` gold items and gets real tasks only once they pass it
(``quiz_pass_percent``; the result is kept on their tally, annotate.submission); after it,
gold items are mixed into their queue at ``gold_rate_percent`` of their tasks.

The statements every annotator request makes are written out in SQL (``annotate.queries``,
run by ``evalhub.sql``).
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotate import errors
from annotate.crowd import Completion, crowd_complete, crowd_completion
from annotate.errors import Conflict, Forbidden, NotFound
from annotate.exposure import ExposureRule, exposure_rule
from annotate.models import AnnotatorTally, ImageReport, Lease, Study, Task, TaskImage, new_token
from annotate.queries import (
    PROGRESS_SQL,
    RECORD_TASK_SQL,
    STUDY_SQL,
    STUDY_SQL_NO_PROGRESS,
    gold_pick_sql,
    lease_sql,
    pick_sql,
)
from annotate.study_settings import GOLD_RATE_PERCENT, QUIZ_SIZE
from evalhub import sql

MAX_BATCH = 3
# Tries per lease: one fails only while other transactions hold the candidates' locks or
# fill the picked task first, so a second try almost always succeeds.
ATTEMPTS = 8


@dataclass(frozen=True)
class Progress:
    done: int
    remaining: int


@dataclass(frozen=True)
class Assignments:
    leases: list[Lease]
    progress: Progress | None  # None when not asked for
    completion: Completion | None = None  # a crowd participant's, once their quota is spent


def _check_open(status: str) -> None:
    """Raise the annotator-facing error for a study that hands out no work."""
    if status == Study.Status.PAUSED:
        raise Conflict(errors.STUDY_PAUSED)
    if status == Study.Status.CLOSED:
        raise Conflict(errors.STUDY_CLOSED)


def assignments_next(
    *, study_id: int, annotator, count: int = 1, with_progress: bool = True, now: datetime | None = None
) -> Assignments:
    """Up to ``count`` tasks leased to ``annotator`` (the ones already held, then new ones),
    and, unless ``with_progress`` is off, the annotator's progress in the study (the
    page asks for it only when no answer of its own is about to report it).

    Refused (Forbidden) to an annotator a study open to enrolled ones only has not
    enrolled, or has removed: their leases were skipped at removal, so an answer they
    still send is refused as a skipped task (TASK_SKIPPED), which the page reports."""
    now = now or timezone.now()
    count = max(1, min(count, MAX_BATCH))
    rows = sql.fetch_all(
        STUDY_SQL if with_progress else STUDY_SQL_NO_PROGRESS,
        {"study": study_id, "me": annotator.pk, "now": _at(now), "limit": count},
    )
    if not rows:
        raise NotFound(errors.UNKNOWN_STUDY)
    status, kind, exposure, overlap, lease_seconds, excluded, allowed, started = rows[0][:8]
    config, gold_answered, _, quiz_state, answered, done, open_tasks, closed = rows[0][8:16]
    if not allowed:
        raise Forbidden(errors.NOT_ENROLLED)
    _check_open(status)
    if excluded:
        raise Forbidden(errors.EXCLUDED)
    if quiz_state == AnnotatorTally.QuizState.FAILED:
        raise Forbidden(errors.QUIZ_FAILED)
    # A new lease changes neither count: "closed" counts answered and skipped tasks only.
    progress = Progress(done=done, remaining=open_tasks - closed) if with_progress else None
    held = [_lease_from_row(row[16:], annotator) for row in rows if row[16] is not None]
    if started is not None:  # a crowd participant (annotate.crowd): their quota first
        crowd = crowd_completion(
            study_id=study_id, annotator=annotator, started_at=sql.aware(started), done=done, now=now
        )
        if crowd.completion is not None:
            return Assignments(leases=[], progress=progress, completion=crowd.completion)
        if crowd.tasks_left is not None:
            count = min(count, crowd.tasks_left)
            held = held[:count]
    rule = exposure_rule(kind, exposure)
    plan = GoldPlan.of(
        sql.json_value(Study, "config", config), gold_answered, quiz_state, answered, len(held)
    )
    while len(held) < count:
        lease = None
        if plan.quiz:  # gold items only, as many as the quiz has left
            if plan.quiz_left <= 0:
                break
            lease = _lease_one(study_id, overlap, lease_seconds, rule, annotator, now, gold=True)
            if lease is None and held:
                break  # the quiz's result comes with the answers to the gold items held
            if lease is None:
                plan = replace(plan, quiz=False)  # no gold item left: see GoldPlan
        elif plan.gold_due:
            lease = _lease_one(study_id, overlap, lease_seconds, rule, annotator, now, gold=True)
        gold = lease is not None
        if lease is None:
            lease = _lease_one(study_id, overlap, lease_seconds, rule, annotator, now)
        if lease is None:
            break
        held.append(lease)
        plan = plan.served(gold=gold)
    if started is not None and not held and _nothing_left(progress, study_id, annotator):
        # Done before the quota: every task open to them is answered, skipped or full.
        # Tasks that others hold for now are not "nothing left".
        return Assignments(
            leases=[],
            progress=progress,
            completion=crowd_complete(study_id=study_id, annotator=annotator, now=now),
        )
    return Assignments(leases=held, progress=progress)


@dataclass(frozen=True)
class GoldPlan:
    """Whether the annotator's next lease is a gold item, from the study's "quality"
    settings and their tally.

    ``quiz``: the qualification quiz is on and not yet taken to its end, so only gold items
    are served, ``quiz_left`` more of them (the quiz's size less the gold items answered and
    the leases held). A quiz that cannot be completed, because no gold item is left for the
    annotator and they hold none, is given up: the annotator is treated as passed if they
    answered some of it, and the quiz is skipped if they answered none, so either way they
    go on to real tasks (the tally keeps no result). After the quiz, a gold item is
    ``gold_due`` while gold items are fewer than ``gold_rate_percent`` of the annotator's
    tasks counting the next one; the ordinary pick follows when none is left."""

    quiz: bool
    quiz_left: int
    rate: int
    gold: int  # gold items answered, and leased by this request
    tasks: int  # tasks answered, and leased by this request

    @classmethod
    def of(cls, config: dict, gold_answered: int, quiz_state: str, answered: int, held: int) -> "GoldPlan":
        quality = config.get("quality", {})
        size = quality.get(QUIZ_SIZE.name, QUIZ_SIZE.default)
        quiz = bool(size) and not quiz_state and gold_answered < size
        return cls(
            quiz=quiz,
            quiz_left=size - gold_answered - held,
            rate=quality.get(GOLD_RATE_PERCENT.name, GOLD_RATE_PERCENT.default),
            gold=gold_answered,
            tasks=answered,
        )

    @property
    def gold_due(self) -> bool:
        return self.rate > 0 and self.gold * 100 < self.rate * (self.tasks + 1)

    def served(self, *, gold: bool) -> "GoldPlan":
        return replace(self, quiz_left=self.quiz_left - gold, gold=self.gold + gold, tasks=self.tasks + 1)


def _nothing_left(progress: Progress | None, study_id: int, annotator) -> bool:
    progress = progress or annotator_progress(study_id=study_id, annotator=annotator)
    return progress.remaining <= 0


def _lease_one(
    study_id: int,
    overlap: int,
    lease_seconds: int,
    rule: ExposureRule,
    annotator,
    now: datetime,
    *,
    gold: bool = False,
) -> Lease | None:
    """A new lease on the next task for the annotator, or with ``gold`` on a gold item
    (GOLD_PICK_SQL); None when there is none."""
    params = {
        "study": study_id,
        "me": annotator.pk,
        "n": overlap,
        "now": _at(now),
        "expires": _at(now + timedelta(seconds=lease_seconds)),
        "token": new_token(),
        "conflicts": rule.conflicts,
        "records": rule.records,
    }
    barred, records = rule.conflicts is not None, rule.records is not None
    statement = lease_sql(connection.vendor, barred, records, gold)
    pick = gold_pick_sql(barred) if gold else pick_sql(barred)
    for _ in range(ATTEMPTS):
        with sql.one_statement_transaction():
            row = sql.fetch_one(statement, params)
            if row is not None and records and connection.vendor != "postgresql":
                sql.execute(RECORD_TASK_SQL, {**params, "task": row[2]})
        if row is not None:
            return _lease_from_row(row, annotator)
        # Nothing leased: no task is left for this annotator, or (PostgreSQL) the picked
        # one filled up or became barred before its lock was granted, or every candidate
        # is locked by a transaction in flight; only the first ends the search.
        if sql.fetch_one(pick, params) is None:
            return None
    return None


def _lease_from_row(row: tuple, annotator) -> Lease:
    lease_id, token, task_id, state, shown_at, expires_at = row
    return Lease(
        id=lease_id,
        token=token,
        task_id=task_id,
        annotator=annotator,
        state=state,
        shown_at=sql.aware(shown_at),
        expires_at=sql.aware(expires_at),
    )


def _at(moment: datetime):
    return sql.db_value(Lease, "expires_at", moment)


def task_active_leases(task: Task, now: datetime, besides) -> int:
    """Unexpired active leases on ``task`` held by annotators other than ``besides``."""
    return (
        Lease.objects.filter(task=task, state=Lease.State.ACTIVE, expires_at__gt=now)
        .exclude(annotator=besides)
        .count()
    )


def lease_for(*, token: str, annotator) -> Lease:
    """The annotator's own lease with this token (anyone else's is "not found")."""
    lease = (
        Lease.objects.select_related("task__study", "task__prompt")
        .filter(token=token, annotator=annotator)
        .first()
    )
    if lease is None:
        raise NotFound(errors.UNKNOWN_ASSIGNMENT)
    return lease


def lease_heartbeat(*, token: str, annotator, now: datetime | None = None) -> Lease:
    """Extend a lease while its page is open. An expired lease is revived only if the
    task still has room for it."""
    now = now or timezone.now()
    lease = lease_for(token=token, annotator=annotator)
    if lease.state != Lease.State.ACTIVE:
        raise Conflict(errors.ALREADY_ANSWERED if lease.state == Lease.State.DONE else errors.TASK_SKIPPED)
    study = lease.task.study
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=lease.task_id)
        if (
            lease.expires_at <= now
            and task.judgment_count + task_active_leases(task, now, annotator) >= study.overlap
        ):
            raise Conflict(errors.LEASE_LOST)
        lease.expires_at = now + timedelta(seconds=study.lease_seconds)
        lease.save(update_fields=["expires_at"])
    return lease


def lease_skip(*, token: str, annotator) -> Lease:
    """Give the task back to the pool; it is not served to this annotator again."""
    lease = lease_for(token=token, annotator=annotator)
    if lease.state == Lease.State.DONE:
        raise Conflict(errors.ALREADY_ANSWERED)
    Lease.objects.filter(pk=lease.pk, state=Lease.State.ACTIVE).update(state=Lease.State.SKIPPED)
    lease.state = Lease.State.SKIPPED
    return lease


@dataclass(frozen=True)
class Report:
    report: ImageReport
    position: int  # the display position of the reported image in the task
    created: bool  # False: the annotator had already reported this task; that report stands


def lease_report_image(*, token: str, annotator, position: int, reason: str = "") -> Report:
    """Record a broken image at ``position`` of the task, and skip the task.

    One report per annotator and task (a unique constraint): a repeat, at any position,
    records nothing and returns the first report, so reports count tasks an annotator
    found broken, not clicks."""
    lease = lease_for(token=token, annotator=annotator)
    first = _report_of(lease, annotator)
    if first is not None:
        return first
    task_image = TaskImage.objects.filter(task_id=lease.task_id, position=position).first()
    if task_image is None:
        raise NotFound(errors.NO_IMAGE_AT.format(position=position))
    try:
        with transaction.atomic():
            report = ImageReport.objects.create(
                task_id=lease.task_id, image_id=task_image.image_id, annotator=annotator, reason=reason[:500]
            )
            if lease.state == Lease.State.ACTIVE:
                lease_skip(token=token, annotator=annotator)
    except IntegrityError:
        # A concurrent repeat won the race: its report stands.
        first = _report_of(lease, annotator)
        if first is None:
            raise
        return first
    return Report(report=report, position=position, created=True)


def _report_of(lease: Lease, annotator) -> Report | None:
    """The annotator's report on the lease's task, if they made one."""
    report = ImageReport.objects.filter(task_id=lease.task_id, annotator=annotator).first()
    if report is None:
        return None
    position = (
        TaskImage.objects.filter(task_id=lease.task_id, image_id=report.image_id)
        .values_list("position", flat=True)
        .first()
    )
    return Report(report=report, position=position, created=False)


def annotator_progress(*, study_id: int, annotator) -> Progress:
    """Tasks this annotator answered, and tasks still open to them, in one statement."""
    row = sql.fetch_one(PROGRESS_SQL, {"study": study_id, "me": annotator.pk})
    if row is None:
        raise NotFound(errors.UNKNOWN_STUDY)
    done, open_tasks, closed = row
    return Progress(done=done, remaining=open_tasks - closed)
