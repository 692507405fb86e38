"""Reads for the annotation pages and API.

``assignment_payloads`` is everything an annotator learns about a task: it is built from
an allow-list of fields, never from a model, a catalog id or a task id.
"""

from functools import cache

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.urls import reverse

from annotate.answers import AB_CHOICES
from annotate.assignment import Progress, annotator_progress
from annotate.models import (
    CrowdParticipant,
    Enrollment,
    ImageReport,
    Invitation,
    Judgment,
    Lease,
    Study,
    Task,
)
from annotate.queries import PAYLOAD_QUESTIONS_SQL, PAYLOAD_SQL
from evalhub import sql


def assignment_payloads(leases: list[Lease]) -> list[dict]:
    """What the annotator gets for each lease, in the order they were shown: built from an
    allow-list of fields, in one statement (two for text alignment)."""
    if not leases:
        return []
    params = {f"l{i}": lease.pk for i, lease in enumerate(leases)}
    payloads: dict[str, dict] = {}
    prompt_of: dict[str, int] = {}
    for token, expires_at, kind, criterion, prompt, prompt_id, position, width, height in sql.fetch_all(
        PAYLOAD_SQL.format(leases=_placeholders(params)), params
    ):
        if token not in payloads:
            prompt_of[token] = prompt_id
            payloads[token] = {
                "token": token,
                "kind": kind,
                "criterion": criterion or None,
                "prompt": None if kind == Study.Kind.AB else prompt,
                "images": [],
                "questions": [],
                "choices": list(AB_CHOICES) if kind == Study.Kind.AB else [],
                "expires_at": sql.aware(expires_at),
            }
        payloads[token]["images"].append(
            {
                "position": position,
                "url": _image_url(token, position),
                "width": width,
                "height": height,
            }
        )
    aligned = [token for token, payload in payloads.items() if payload["kind"] == Study.Kind.ALIGNMENT]
    if aligned:
        questions = _questions({prompt_of[token] for token in aligned})
        for token in aligned:
            payloads[token]["questions"] = questions.get(prompt_of[token], [])
    return list(payloads.values())


def _questions(prompt_ids: set[int]) -> dict[int, list[dict]]:
    params = {f"p{i}": prompt_id for i, prompt_id in enumerate(sorted(prompt_ids))}
    questions: dict[int, list[dict]] = {}
    for prompt_id, question_id, text in sql.fetch_all(
        PAYLOAD_QUESTIONS_SQL.format(prompts=_placeholders(params)), params
    ):
        questions.setdefault(prompt_id, []).append({"id": question_id, "text": text})
    return questions


def _image_url(token: str, position: int) -> str:
    """``reverse("annotate:image", args=[token, position])``, from one reverse per process:
    reversing costs more than the rest of a payload. The reversed stand-ins cut the URL
    into its fixed parts once; the token and the position are put between them, never
    searched for (a hex token may contain any digits)."""
    before, between, after = _image_url_parts()
    return f"{before}{token}{between}{position}{after}"


@cache
def _image_url_parts() -> tuple[str, str, str]:
    stand_in_token, stand_in_position = "TOKEN", 987654321
    url = reverse("annotate:image", args=[stand_in_token, stand_in_position])
    before, rest = url.split(stand_in_token)
    between, after = rest.split(str(stand_in_position))
    return before, between, after


def _placeholders(params: dict) -> str:
    return ", ".join(f"%({name})s" for name in params)


def progress_payload(progress: Progress) -> dict:
    return {"done": progress.done, "remaining": progress.remaining}


def studies_allowed_to(annotator) -> QuerySet[Study]:
    """The studies ``annotator`` may work on: those open to every annotator, and those they
    are enrolled in (annotate.enrollment), whatever their status. A crowd participant
    (annotate.crowd) works on the studies they arrived at, where they are enrolled."""
    enrolled = Enrollment.objects.filter(
        study=OuterRef("pk"), annotator=annotator, status=Enrollment.Status.ENROLLED
    )
    crowd = CrowdParticipant.objects.filter(user=annotator)
    return Study.objects.filter((Q(access=Study.Access.OPEN) & ~Exists(crowd)) | Exists(enrolled))


def studies_open_for(annotator) -> list[dict]:
    """Open studies this annotator may work on, with their progress, newest first: their
    annotator-facing title, never the researchers' name."""
    return [
        {
            "id": study.pk,
            "title": study.title,
            "kind": study.kind,
            "guidelines": study.guidelines,
            **progress_payload(annotator_progress(study_id=study.pk, annotator=annotator)),
        }
        for study in studies_allowed_to(annotator).filter(status=Study.Status.OPEN).order_by("-created_at")
    ]


def invitations_list() -> QuerySet[Invitation]:
    """Invitations, newest first, with their studies and maker: two queries."""
    return Invitation.objects.select_related("created_by").prefetch_related("studies")


def study_list() -> QuerySet[Study]:
    """Studies with their task, judgment and completed-task counts."""
    return Study.objects.select_related("prompt_set").annotate(
        task_count=Count("tasks", distinct=True),
        judgment_total=Count("tasks__judgments", distinct=True),
    )


def study_progress(study: Study) -> dict:
    """How far a study is: tasks at N, judgments of N × tasks, annotators, reports."""
    return studies_progress([study])[study.pk]


def studies_progress(studies: list[Study]) -> dict[int, dict]:
    """``study_progress`` of each study, by id: three queries whatever their number."""
    ids = [study.pk for study in studies]
    tasks = {
        row["study"]: row
        for row in Task.objects.filter(study__in=ids)
        .values("study")
        .annotate(
            total=Count("pk"),
            complete=Count("pk", filter=Q(judgment_count__gte=F("study__overlap"))),
            gold=Count("pk", filter=Q(is_gold=True)),
        )
        .order_by()
    }
    judgments = {
        row["task__study"]: row
        for row in Judgment.objects.filter(task__study__in=ids, excluded=False)
        .values("task__study")
        .annotate(total=Count("pk"), annotators=Count("annotator", distinct=True))
        .order_by()
    }
    reports = dict(
        ImageReport.objects.filter(task__study__in=ids)
        .values("task__study")
        .annotate(total=Count("pk"))
        .order_by()
        .values_list("task__study", "total")
    )
    progress = {}
    for study in studies:
        task_counts = tasks.get(study.pk, {"total": 0, "complete": 0, "gold": 0})
        judgment_counts = judgments.get(study.pk, {"total": 0, "annotators": 0})
        progress[study.pk] = {
            "tasks": task_counts["total"],
            "tasks_complete": task_counts["complete"],
            "gold_tasks": task_counts["gold"],
            "judgments": judgment_counts["total"],
            "judgments_needed": task_counts["total"] * study.overlap,
            "annotators": judgment_counts["annotators"],
            "reports": reports.get(study.pk, 0),
        }
    return progress


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
