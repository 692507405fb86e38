"""The raw judgments of a study, one row per judgment with its models resolved: what anyone
needs to recompute the study's tables. The CSV (judgments_csv) and the Parquet file
(judgments_parquet) both write these rows, so the two hold the same rows and columns.

The rows come from one query (the task, prompt and annotator by joins, the model of the
task's first image by a subquery: no query per row) read with
``QuerySet.iterator(chunk_size=…)``: on PostgreSQL a server-side cursor, on SQLite
``fetchmany``, so neither the database driver nor Python ever holds the whole study (Django
5.2, "QuerySet.iterator"; behind a transaction pooler set DISABLE_SERVER_SIDE_CURSORS and
the driver fetches everything at once). A second, small query reads the study's model
names."""

import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import OuterRef, Subquery

from annotate.models import Judgment, Study, TaskImage

COLUMNS = [
    "study",
    "kind",
    "task_key",
    "prompt",
    "criterion",
    "annotator",
    "answer",
    "image_model",
    "left_model",
    "right_model",
    "choice",
    "winner_model",
    "fetched_at",
    "displayed_at",
    "on_screen_seconds",
    "answered_at",
    "source",
    "gold",
    "excluded",
]
CHUNK_ROWS = 5000  # rows per fetch from the database

JudgmentRow = tuple[
    str, str, str, str, str, str, str,  # study … answer (the answer as JSON, keys sorted)
    str | None, str | None, str | None, str | None, str | None,  # image_model … winner_model
    datetime, datetime | None, float | None, datetime,  # fetched_at … answered_at
    str, bool, bool,  # source, gold, excluded
]  # fmt: skip


def judgment_rows(study: Study, *, chunk_size: int = CHUNK_ROWS) -> Iterator[JudgmentRow]:
    """The study's judgments, oldest first, as tuples in ``COLUMNS`` order. ``None`` where a
    value is absent: no page figures (``displayed_at``, ``on_screen_seconds``), a model with
    no name in the study, the sides and the choice of a study that is not A/B."""
    names = dict(study.study_models.values_list("model_version_id", "model_version__name"))
    first_image_model = TaskImage.objects.filter(task=OuterRef("task_id"), position=0).values(
        "image__model_version_id"
    )[:1]
    rows = (
        Judgment.objects.filter(task__study=study)
        .order_by("answered_at", "pk")
        .annotate(first_model=Subquery(first_image_model))
        .values_list(
            "task__key",
            "task__prompt__text",
            "task__criterion",
            "annotator__username",
            "answer",
            "left_model_id",
            "first_model",
            "fetched_at",
            "displayed_at",
            "on_screen_seconds",
            "answered_at",
            "source",
            "task__is_gold",
            "excluded",
        )
    )
    study_name, kind, ab = study.name, str(study.kind), study.kind == Study.Kind.AB
    for (
        task_key, prompt, criterion, annotator, answer, left_id, first_model,
        fetched_at, displayed_at, seconds, answered_at, source, gold, excluded,
    ) in rows.iterator(chunk_size=chunk_size):  # fmt: skip
        left = right = choice = winner = None
        if ab:
            left = names.get(left_id)
            right = next((name for pk, name in names.items() if pk != left_id), None)
            choice = answer.get("choice")
            if choice is not None and not isinstance(choice, str):
                choice = str(choice)  # as the CSV writes it
            winner = {"left": left, "right": right}.get(choice, choice)
        yield (
            study_name,
            kind,
            task_key,
            prompt,
            criterion,
            annotator,
            json.dumps(answer, sort_keys=True),
            names.get(first_model),
            left,
            right,
            choice,
            winner,
            fetched_at,
            displayed_at,
            seconds,
            answered_at,
            source,
            gold,
            excluded,
        )
