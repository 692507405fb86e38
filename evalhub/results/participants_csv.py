"""A study's crowd participants as CSV, one row per participant (annotate.crowd), for the
platform's payment and approval: their platform ids, when they started and completed,
tasks done, time on task, gold accuracy and status. Researchers only: it names the
platform's participant ids, which no annotator ever sees. Written through
evalhub.csv_safe."""

import io
from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from annotate.models import AnnotatorTally, Enrollment, Judgment, Lease, Study
from annotate.study_settings import config_group
from evalhub.csv_safe import csv_writer

COLUMNS = [
    "participant_id",
    "platform_study_id",
    "session_id",
    "started_at",
    "completed_at",
    "tasks_done",
    "time_on_task_seconds",
    "gold_answered",
    "gold_accuracy",
    "status",
]
COMPLETED, RETURNED, EXCLUDED, STARTED = "completed", "returned", "excluded", "started"


def participant_status(
    *,
    completed_at: datetime | None,
    marked: str,
    excluded: bool,
    quota_reached: bool,
    last_activity: datetime,
    lease_seconds: int,
    now: datetime,
) -> str:
    """excluded (from the study, or removed from it); completed; returned (marked so, or
    gone quiet for longer than a lease before their quota); else started."""
    if excluded:
        return EXCLUDED
    if completed_at is not None:
        return COMPLETED
    if marked == Enrollment.CrowdStatus.RETURNED:
        return RETURNED
    if not quota_reached and now - last_activity > timedelta(seconds=lease_seconds):
        return RETURNED
    return STARTED


def participants_rows(study: Study, now: datetime | None = None) -> list[dict]:
    """One dict per crowd participant of the study (COLUMNS), in order of arrival."""
    now = now or timezone.now()
    quota = config_group(study, "crowd")["crowd_quota_tasks"]
    enrollments = list(
        Enrollment.objects.filter(study=study, started_at__isnull=False)
        .select_related("annotator__crowd")
        .order_by("started_at", "pk")
    )
    judgments = {
        row["annotator"]: row
        for row in Judgment.objects.filter(task__study=study)
        .values("annotator")
        .annotate(
            valid=Count("pk", filter=Q(excluded=False)),
            seconds=Sum("on_screen_seconds"),
            last=Max("answered_at"),
        )
    }
    gold = defaultdict(lambda: [0, 0])  # annotator: [answered, correct]
    for annotator, answer, known in Judgment.objects.filter(
        task__study=study, task__is_gold=True
    ).values_list("annotator", "answer", "task__gold_answer"):
        gold[annotator][0] += 1
        gold[annotator][1] += answer == known
    shown = dict(
        Lease.objects.filter(task__study=study)
        .values("annotator")
        .annotate(last=Max("shown_at"))
        .values_list("annotator", "last")
    )
    excluded = set(
        AnnotatorTally.objects.filter(study=study, excluded_at__isnull=False).values_list(
            "annotator", flat=True
        )
    )
    rows = []
    for enrollment in enrollments:
        user_id = enrollment.annotator_id
        counts = judgments.get(user_id, {"valid": 0, "seconds": None, "last": None})
        answered, correct = gold[user_id] if user_id in gold else (0, 0)
        moments = [enrollment.started_at, counts["last"], shown.get(user_id)]
        rows.append(
            {
                "participant_id": enrollment.annotator.crowd.platform_id,
                "platform_study_id": enrollment.platform_study_id,
                "session_id": enrollment.platform_session_id,
                "started_at": enrollment.started_at.isoformat(),
                "completed_at": enrollment.completed_at.isoformat() if enrollment.completed_at else "",
                "tasks_done": counts["valid"],
                "time_on_task_seconds": round(counts["seconds"] or 0.0, 1),
                "gold_answered": answered,
                "gold_accuracy": round(correct / answered, 3) if answered else "",
                "status": participant_status(
                    completed_at=enrollment.completed_at,
                    marked=enrollment.crowd_status,
                    excluded=user_id in excluded or enrollment.status == Enrollment.Status.REMOVED,
                    quota_reached=bool(quota) and counts["valid"] >= quota,
                    last_activity=max(moment for moment in moments if moment is not None),
                    lease_seconds=study.lease_seconds,
                    now=now,
                ),
            }
        )
    return rows


def participants_csv(study: Study, now: datetime | None = None) -> str:
    """The study's crowd participants (participants_rows) as CSV text with a header."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(COLUMNS)
    writer.writerows([row[column] for column in COLUMNS] for row in participants_rows(study, now))
    return out.getvalue()
