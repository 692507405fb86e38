"""Which judgments a table counts (SPEC "Statistics"): "decided" means an item with its N
judgments, so every table, export and API reads only the judgments of complete tasks
unless it is asked for the running (provisional) picture."""

from django.db.models import Count, Q, QuerySet

from annotate.models import Judgment, Study


def study_judgments(study: Study, *, include_incomplete: bool = False) -> QuerySet[Judgment]:
    """The study's judgments on tasks with at least N judgments, or on every task when
    ``include_incomplete`` (a provisional table, labelled as such wherever it is shown).
    Never those of an annotator excluded from the study (annotate.workforce): a task's count
    leaves them out too, so "N judgments" means N valid ones. Nor those on gold items: they test
    the annotators, everyone served one answers it, and they are no item of the results."""
    judgments = Judgment.objects.filter(task__study=study, task__is_gold=False, excluded=False)
    if not include_incomplete:
        judgments = judgments.filter(task__judgment_count__gte=study.overlap)
    return judgments


def study_task_counts(study: Study) -> dict[str, dict[str, int]]:
    """Per criterion ("" for kinds without one): ``items`` (tasks), ``complete`` (with N
    judgments), ``incomplete`` (fewer, none included) and ``started`` (fewer, but some).
    Gold items are left out, as in ``study_judgments``."""
    fewer = Q(judgment_count__lt=study.overlap)
    rows = (
        study.tasks.filter(is_gold=False)
        .order_by()
        .values("criterion")
        .annotate(
            items=Count("pk"),
            incomplete=Count("pk", filter=fewer),
            started=Count("pk", filter=fewer & Q(judgment_count__gt=0)),
        )
    )
    return {
        row["criterion"]: {
            "items": row["items"],
            "complete": row["items"] - row["incomplete"],
            "incomplete": row["incomplete"],
            "started": row["started"],
        }
        for row in rows
    }
