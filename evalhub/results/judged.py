"""Which judgments a table counts (SPEC "Statistics"): "decided" means an item with its N
judgments, so every table, export and API reads only the judgments of complete tasks
unless it is asked for the running (provisional) picture."""

from django.db.models import QuerySet

from annotate.models import Judgment, Study


def study_judgments(study: Study, *, include_incomplete: bool = False) -> QuerySet[Judgment]:
    """The study's judgments on tasks with at least N judgments, or on every task when
    ``include_incomplete`` (a provisional table, labelled as such wherever it is shown)."""
    judgments = Judgment.objects.filter(task__study=study)
    if not include_incomplete:
        judgments = judgments.filter(task__judgment_count__gte=study.overlap)
    return judgments
