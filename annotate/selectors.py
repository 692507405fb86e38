"""Reads for the annotation pages and API.

``assignment_payload`` is everything an annotator learns about a task: it is built from
an allow-list of fields, never from a model, a catalog id or a task id.
"""

from django.db.models import Count, Prefetch, Q, QuerySet
from django.urls import reverse

from annotate.answers import AB_CHOICES
from annotate.assignment import Progress, annotator_progress
from annotate.models import Judgment, Lease, Study, TaskImage
from evalhub.catalog.models import AlignmentQuestion


def leases_with_content(leases: list[Lease]) -> list[Lease]:
    """The leases again, with what their payloads need in three queries."""
    return list(
        Lease.objects.filter(pk__in=[lease.pk for lease in leases])
        .select_related("task__study", "task__prompt")
        .prefetch_related(
            Prefetch(
                "task__task_images", queryset=TaskImage.objects.select_related("image").order_by("position")
            ),
            Prefetch("task__prompt__questions", queryset=AlignmentQuestion.objects.order_by("position")),
        )
        .order_by("shown_at", "pk")
    )


def assignment_payload(lease: Lease) -> dict:
    task = lease.task
    kind = task.study.kind
    return {
        "token": lease.token,
        "kind": kind,
        "criterion": task.criterion or None,
        "prompt": None if kind == Study.Kind.AB else task.prompt.text,
        "images": [
            {
                "position": ti.position,
                "url": reverse("annotate:image", args=[lease.token, ti.position]),
                "width": ti.image.width,
                "height": ti.image.height,
            }
            for ti in task.task_images.all()
        ],
        "questions": (
            [{"id": q.pk, "text": q.text} for q in task.prompt.questions.all()]
            if kind == Study.Kind.ALIGNMENT
            else []
        ),
        "choices": list(AB_CHOICES) if kind == Study.Kind.AB else [],
        "expires_at": lease.expires_at,
    }


def progress_payload(progress: Progress) -> dict:
    return {"done": progress.done, "remaining": progress.remaining}


def studies_open_for(annotator) -> list[dict]:
    """Open studies with this annotator's progress, newest first."""
    return [
        {
            "id": study.pk,
            "name": study.name,
            "kind": study.kind,
            "guidelines": study.guidelines,
            **progress_payload(annotator_progress(study=study, annotator=annotator)),
        }
        for study in Study.objects.filter(status=Study.Status.OPEN).order_by("-created_at")
    ]


def study_list() -> QuerySet[Study]:
    """Studies with their task, judgment and completed-task counts."""
    return Study.objects.select_related("prompt_set").annotate(
        task_count=Count("tasks", distinct=True),
        judgment_total=Count("tasks__judgments", distinct=True),
    )


def study_progress(study: Study) -> dict:
    """How far a study is: tasks at N, judgments of N × tasks, annotators, reports."""
    tasks = study.tasks.aggregate(
        total=Count("pk"),
        complete=Count("pk", filter=Q(judgment_count__gte=study.overlap)),
        gold=Count("pk", filter=Q(is_gold=True)),
    )
    judgments = Judgment.objects.filter(task__study=study)
    return {
        "tasks": tasks["total"],
        "tasks_complete": tasks["complete"],
        "gold_tasks": tasks["gold"],
        "judgments": judgments.count(),
        "judgments_needed": tasks["total"] * study.overlap,
        "annotators": judgments.values("annotator").distinct().count(),
        "reports": study.tasks.filter(reports__isnull=False).count(),
    }


def study_annotators(study: Study) -> list[dict]:
    """Per annotator: judgments, and accuracy on gold tasks where any were answered."""
    rows = (
        Judgment.objects.filter(task__study=study)
        .values("annotator__username")
        .annotate(judgments=Count("pk"), gold_answered=Count("pk", filter=Q(task__is_gold=True)))
        .order_by("annotator__username")
    )
    gold = {
        (j.annotator.username, j.task_id): j.answer == j.task.gold_answer
        for j in Judgment.objects.filter(task__study=study, task__is_gold=True).select_related(
            "annotator", "task"
        )
    }
    result = []
    for row in rows:
        correct = [ok for (user, _), ok in gold.items() if user == row["annotator__username"]]
        result.append(
            {
                "username": row["annotator__username"],
                "judgments": row["judgments"],
                "gold_answered": row["gold_answered"],
                "gold_accuracy": sum(correct) / len(correct) if correct else None,
            }
        )
    return result
