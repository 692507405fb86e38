"""Handing tasks to annotators: leases, heartbeats, skips and reports.

Invariant, for every task at every moment: judgments + unexpired active leases ≤ N
(the study's overlap). A lease is created only while that holds, under a row lock on
the task (``SELECT … FOR UPDATE``; PostgreSQL skips rows another annotator is locking,
SQLite serializes writers with IMMEDIATE transactions), so no task is over-served.

Order: tasks closest to N first, so a study's items reach N before new ones open; ties
are broken by a random per-task key, so the order says nothing about prompt or model.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Exists, F, Func, OuterRef, Q, Subquery
from django.utils import timezone

from annotate import errors
from annotate.errors import Conflict, NotFound
from annotate.models import ImageReport, Judgment, Lease, Study, Task, TaskImage

MAX_BATCH = 3
CANDIDATES = 8  # tasks looked at per lease; more only matters under heavy contention


@dataclass(frozen=True)
class Progress:
    done: int
    remaining: int


def study_check_open(study: Study) -> None:
    """Raise the annotator-facing error for a study that hands out no work."""
    if study.status == Study.Status.PAUSED:
        raise Conflict(errors.STUDY_PAUSED)
    if study.status == Study.Status.CLOSED:
        raise Conflict(errors.STUDY_CLOSED)


def assignments_next(*, study: Study, annotator, count: int = 1, now: datetime | None = None) -> list[Lease]:
    """Up to ``count`` tasks leased to ``annotator``: the ones already held, then new ones."""
    study_check_open(study)
    now = now or timezone.now()
    count = max(1, min(count, MAX_BATCH))
    held = list(
        Lease.objects.filter(
            task__study=study, annotator=annotator, state=Lease.State.ACTIVE, expires_at__gt=now
        ).order_by("shown_at", "pk")[:count]
    )
    while len(held) < count:
        lease = _lease_one(study, annotator, now)
        if lease is None:
            break
        held.append(lease)
    return held


def _lease_one(study: Study, annotator, now: datetime) -> Lease | None:
    mine_closed = Lease.objects.filter(task=OuterRef("pk"), annotator=annotator).exclude(
        state=Lease.State.ACTIVE, expires_at__lte=now
    )
    active = Count("leases", filter=Q(leases__state=Lease.State.ACTIVE, leases__expires_at__gt=now))
    candidates = list(
        Task.objects.filter(study=study, judgment_count__lt=study.overlap)
        .exclude(Exists(mine_closed))
        .annotate(fill=F("judgment_count") + active)
        .filter(fill__lt=study.overlap)
        .order_by("-fill", "order_key")
        .values_list("pk", flat=True)[:CANDIDATES]
    )
    for task_id in candidates:
        with transaction.atomic():
            task = _lock_task(task_id)
            if (
                task is None
                or task.judgment_count + task_active_leases(task, now, annotator) >= study.overlap
            ):
                continue
            expires_at = now + timedelta(seconds=study.lease_seconds)
            # Only an expired lease of ours can exist here: the candidates exclude the rest.
            lease = Lease.objects.filter(task=task, annotator=annotator).first()
            if lease is None:
                return Lease.objects.create(
                    task=task, annotator=annotator, shown_at=now, expires_at=expires_at
                )
            lease.state, lease.expires_at = Lease.State.ACTIVE, expires_at
            lease.save(update_fields=["state", "expires_at"])
            return lease
    return None


def _lock_task(task_id: int) -> Task | None:
    """The task row, locked until the transaction ends; None if another transaction
    holds it (PostgreSQL), so the caller moves on to the next candidate."""
    skip = connection.features.has_select_for_update_skip_locked
    return Task.objects.select_for_update(skip_locked=skip).filter(pk=task_id).first()


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


def lease_report_image(*, token: str, annotator, position: int, reason: str = "") -> ImageReport:
    """Record a broken image at ``position`` of the task, and skip the task."""
    lease = lease_for(token=token, annotator=annotator)
    task_image = TaskImage.objects.filter(task_id=lease.task_id, position=position).first()
    if task_image is None:
        raise NotFound(f"no image at position {position}")
    with transaction.atomic():
        report = ImageReport.objects.create(
            task_id=lease.task_id, image_id=task_image.image_id, annotator=annotator, reason=reason[:500]
        )
        if lease.state == Lease.State.ACTIVE:
            lease_skip(token=token, annotator=annotator)
    return report


def annotator_progress(*, study: Study, annotator) -> Progress:
    """Tasks this annotator answered, and tasks still open to them, in one query.

    Remaining = open tasks minus the open ones this annotator answered or skipped:
    index lookups, cheaper than an anti-join over every task on each request.
    """
    open_tasks = Task.objects.filter(study=study, judgment_count__lt=study.overlap)
    counts = (
        Study.objects.filter(pk=study.pk)
        .annotate(
            done=_count(Judgment.objects.filter(task__study=study, annotator=annotator)),
            open=_count(open_tasks),
            closed=_count(
                Lease.objects.filter(task__in=open_tasks, annotator=annotator).exclude(
                    state=Lease.State.ACTIVE
                )
            ),
        )
        .values("done", "open", "closed")
        .get()
    )
    return Progress(done=counts["done"], remaining=counts["open"] - counts["closed"])


def _count(queryset) -> Subquery:
    """``SELECT COUNT(*)`` of ``queryset`` as a scalar subquery (a bare Func adds no GROUP BY)."""
    return Subquery(queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"))
