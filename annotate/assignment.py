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

The statements every annotator request makes are written out in SQL (``evalhub.sql``).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from annotate import errors
from annotate.errors import Conflict, NotFound
from annotate.exposure import BARRED_FRESH_SQL, BARRED_SQL, RECORD_SQL, ExposureRule, exposure_rule
from annotate.models import ImageReport, Lease, Study, Task, TaskImage, new_token
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
    page asks for it only when no answer of its own is about to report it)."""
    now = now or timezone.now()
    count = max(1, min(count, MAX_BATCH))
    rows = sql.fetch_all(
        STUDY_SQL if with_progress else STUDY_SQL_NO_PROGRESS,
        {"study": study_id, "me": annotator.pk, "now": _at(now), "limit": count},
    )
    if not rows:
        raise NotFound(errors.UNKNOWN_STUDY)
    status, kind, exposure, overlap, lease_seconds, done, open_tasks, closed = rows[0][:8]
    _check_open(status)
    held = [_lease_from_row(row[8:], annotator) for row in rows if row[8] is not None]
    rule = exposure_rule(kind, exposure)
    while len(held) < count:
        lease = _lease_one(study_id, overlap, lease_seconds, rule, annotator, now)
        if lease is None:
            break
        held.append(lease)
    # A new lease changes neither count: "closed" counts answered and skipped tasks only.
    progress = Progress(done=done, remaining=open_tasks - closed) if with_progress else None
    return Assignments(leases=held, progress=progress)


# Tasks this annotator answered (their tally), open tasks (the study's count), and the open
# ones this annotator answered or skipped (remaining = open - closed). Each is read by key
# or, for the last, through the annotator's leases on tasks not yet full (a partial index):
# nothing here reads the study's tasks or the annotator's answers on full tasks. The task
# is still checked open, so a lease the flag has not caught up with is not counted.
DONE_COLUMN = """
  COALESCE((SELECT a.judgments FROM annotate_annotatortally a
            WHERE a.study_id = s.id AND a.annotator_id = %(me)s), 0)"""
OPEN_COLUMNS = """
  s.open_tasks,
  (SELECT COUNT(*) FROM annotate_lease l
   WHERE l.annotator_id = %(me)s AND NOT l.task_filled AND l.state <> 'active'
     AND (SELECT t.study_id = s.id AND t.judgment_count < s.overlap
          FROM annotate_task t WHERE t.id = l.task_id))"""
PROGRESS_COLUMNS = f"{DONE_COLUMN},{OPEN_COLUMNS}"

# The study's state, the annotator's progress and the leases they hold, in one read. A full
# task has no room for an answer, so "NOT task_filled" leaves out no lease that could
# still be answered (a submission fills a task only once no other lease is live on it; an
# import may fill a held one): it lets the read use the partial index.
_STUDY = """
SELECT s.status, s.kind, s.exposure, s.overlap, s.lease_seconds, {progress},
  h.id, h.token, h.task_id, h.state, h.shown_at, h.expires_at
FROM annotate_study s LEFT JOIN (
  SELECT l.id, l.token, l.task_id, l.state, l.shown_at, l.expires_at
  FROM annotate_lease l JOIN annotate_task t ON t.id = l.task_id
  WHERE l.annotator_id = %(me)s AND NOT l.task_filled AND l.state = 'active'
    AND l.expires_at > %(now)s AND t.study_id = %(study)s
  ORDER BY l.shown_at, l.id
  LIMIT %(limit)s
) h ON TRUE
WHERE s.id = %(study)s
ORDER BY h.shown_at, h.id
"""
STUDY_SQL = _STUDY.format(progress=PROGRESS_COLUMNS)
STUDY_SQL_NO_PROGRESS = _STUDY.format(progress="NULL, NULL, NULL")


# The next task for an annotator: one that still has room by this statement's view, that
# they have not answered, skipped or already hold (an expired lease of theirs may be
# renewed) and that exposure control does not bar them from, the most answered first
# (breadth first), then by the random key. Walks the queue index, so it costs the tasks
# passed over, not the size of the study. The tasks to pass over are read first, once,
# from the annotator's leases on tasks not yet full (the partial index: a lease on an open
# task is never marked full), and tested per task before anything else: while fewer than
# N annotators are at work, those are all the open tasks the annotator answered, at the
# head of the queue.
PICK_SQL = """
SELECT t.id, t.judgment_count FROM annotate_task t
WHERE t.study_id = %(study)s AND t.judgment_count < %(n)s
  AND t.id NOT IN (
    SELECT m.task_id FROM annotate_lease m
    WHERE m.annotator_id = %(me)s AND NOT m.task_filled
      AND NOT (m.state = 'active' AND m.expires_at <= %(now)s)){barred}
  AND t.judgment_count + (
    SELECT COUNT(*) FROM annotate_lease o
    WHERE o.task_id = t.id AND o.state = 'active' AND o.expires_at > %(now)s) < %(n)s
ORDER BY t.judgment_count DESC, t.order_key
LIMIT 1"""

# Pick, lock and lease in one statement. The lease is written only if the picked task
# still has room counted afresh, and (PostgreSQL) exposure control still lets the
# annotator take it: the pick's view may predate a lease committed just before the row
# lock was granted, so both are checked again by VOLATILE functions whose queries see
# everything committed (migrations 0003 and 0007). SQLite runs the statement under its
# write lock, so the pick's own view is current. An expired lease of the annotator's own
# is renewed in place (same token). The task's images are written as seen, in the same
# statement on PostgreSQL and in the same transaction on SQLite.
LEASE_SQL = """
INSERT INTO annotate_lease (token, task_id, annotator_id, state, shown_at, expires_at)
SELECT %(token)s, pick.id, %(me)s, 'active', %(now)s, %(expires)s FROM pick
WHERE pick.judgment_count + {live_leases} < %(n)s{barred}
ON CONFLICT (task_id, annotator_id) DO UPDATE SET expires_at = excluded.expires_at
  WHERE annotate_lease.state = 'active'
RETURNING id, token, task_id, state, shown_at, expires_at"""
LIVE_LEASES_INLINE = """(
    SELECT COUNT(*) FROM annotate_lease o
    WHERE o.task_id = pick.id AND o.state = 'active' AND o.expires_at > %(now)s
      AND o.annotator_id <> %(me)s)"""
LIVE_LEASES_FRESH = "annotate_live_leases(pick.id, %(me)s, %(now)s)"
LEASED_COLUMNS = "id, token, task_id, state, shown_at, expires_at"


@cache
def pick_sql(barred: bool) -> str:
    return PICK_SQL.format(barred="\n  AND NOT " + BARRED_SQL.format(task="t.id") if barred else "")


@cache
def _lease_sql(vendor: str, barred: bool, records: bool) -> str:
    """The lease statement for the database and the study's exposure rule."""
    pick = pick_sql(barred)
    if vendor != "postgresql":
        return f"WITH pick AS ({pick})" + LEASE_SQL.format(live_leases=LIVE_LEASES_INLINE, barred="")
    lease = LEASE_SQL.format(
        live_leases=LIVE_LEASES_FRESH,
        barred="\n  AND NOT " + BARRED_FRESH_SQL.format(task="pick.id") if barred else "",
    )
    seen = f",\nseen AS ({RECORD_SQL.format(task='IN (SELECT task_id FROM lease)')})" if records else ""
    return (
        f"WITH pick AS ({pick} FOR UPDATE SKIP LOCKED),\nlease AS ({lease}){seen}\n"
        f"SELECT {LEASED_COLUMNS} FROM lease"
    )


# SQLite: the leased task's images, written in the lease's transaction.
RECORD_TASK_SQL = RECORD_SQL.format(task="= %(task)s")


def _lease_one(
    study_id: int, overlap: int, lease_seconds: int, rule: ExposureRule, annotator, now: datetime
) -> Lease | None:
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
    statement = _lease_sql(connection.vendor, barred, records)
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
        if sql.fetch_one(pick_sql(barred), params) is None:
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


def annotator_progress(*, study_id: int, annotator) -> Progress:
    """Tasks this annotator answered, and tasks still open to them, in one statement."""
    row = sql.fetch_one(
        f"SELECT {PROGRESS_COLUMNS} FROM annotate_study s WHERE s.id = %(study)s",
        {"study": study_id, "me": annotator.pk},
    )
    if row is None:
        raise NotFound(errors.UNKNOWN_STUDY)
    done, open_tasks, closed = row
    return Progress(done=done, remaining=open_tasks - closed)
