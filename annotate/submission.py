"""Recording a judgment: idempotent, never over N, never twice per annotator.

The page sends a ``client_id`` (a UUID it makes once per answer) with every attempt, so
a double click, a retry after a network drop or a resent answer from local storage is
recognised and answered with the judgment already recorded. Under the task's row lock
the judgment count is checked against N, and unique constraints on (task, annotator)
and (annotator, client_id) back both rules in the database itself.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotate import errors
from annotate.answers import answer_clean
from annotate.assignment import lease_for, task_active_leases
from annotate.errors import Conflict, InvalidInput
from annotate.models import Judgment, Lease, Study, Task, TaskImage


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool


def judgment_submit(
    *, token: str, annotator, client_id: str | uuid.UUID, answer: object, now: datetime | None = None
) -> SubmitResult:
    """Record ``answer`` for the task leased under ``token``; a repeat is not a new judgment."""
    now = now or timezone.now()
    client_id = _uuid(client_id)
    lease = lease_for(token=token, annotator=annotator)
    repeat = _repeat(annotator, client_id, lease)
    if repeat is not None:
        return repeat
    study = lease.task.study
    if study.status == Study.Status.CLOSED:
        raise Conflict(errors.STUDY_CLOSED)
    clean = answer_clean(lease.task, answer)
    try:
        with transaction.atomic():
            return _record(lease, study, annotator, client_id, clean, now)
    except IntegrityError:
        # Either a concurrent attempt with the same client_id won the race (the same
        # answer), or a judgment for this task and annotator came from elsewhere (an
        # import): the database's unique constraints decide.
        repeat = _repeat(annotator, client_id, lease)
        if repeat is None:
            raise Conflict(errors.ALREADY_ANSWERED) from None
        return repeat


def _record(lease: Lease, study: Study, annotator, client_id, clean: dict, now: datetime) -> SubmitResult:
    task = Task.objects.select_for_update().get(pk=lease.task_id)
    repeat = _repeat(annotator, client_id, lease)
    if repeat is not None:
        return repeat
    lease.refresh_from_db(fields=["state", "expires_at"])
    if lease.state == Lease.State.DONE:
        raise Conflict(errors.ALREADY_ANSWERED)
    if lease.state == Lease.State.SKIPPED:
        raise Conflict(errors.TASK_SKIPPED)
    taken = task.judgment_count
    if lease.expires_at <= now:
        # The slot this lease reserved may have gone to someone else meanwhile.
        taken += task_active_leases(task, now, annotator)
    if taken >= study.overlap:
        raise Conflict(errors.TASK_FULL)
    judgment = Judgment.objects.create(
        task=task,
        annotator=annotator,
        client_id=client_id,
        answer=clean,
        left_model_id=_left_model_id(task) if study.kind == Study.Kind.AB else None,
        shown_at=lease.shown_at,
        answered_at=now,
    )
    Task.objects.filter(pk=task.pk).update(judgment_count=F("judgment_count") + 1)
    Lease.objects.filter(pk=lease.pk).update(state=Lease.State.DONE)
    return SubmitResult(judgment=judgment, created=True)


def _repeat(annotator, client_id: uuid.UUID, lease: Lease) -> SubmitResult | None:
    judgment = Judgment.objects.filter(annotator=annotator, client_id=client_id).first()
    if judgment is None:
        return None
    if judgment.task_id != lease.task_id:
        raise Conflict(errors.CLIENT_ID_REUSED)
    return SubmitResult(judgment=judgment, created=False)


def _left_model_id(task: Task) -> int:
    return (
        TaskImage.objects.filter(task=task, position=0)
        .values_list("image__model_version_id", flat=True)
        .get()
    )


def _uuid(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("client_id must be a UUID") from None
