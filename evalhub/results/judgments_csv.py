"""Raw judgments as CSV, one row per judgment, models resolved: what anyone needs to
recompute a study's tables. Researchers only: it names the models. Cells that a
spreadsheet would read as a formula (a prompt, study or annotator name starting with ``=``)
are written as text (evalhub.csv_safe)."""

import io
import json

from django.db.models import F, OuterRef, Subquery

from annotate.models import Judgment, Study, TaskImage
from evalhub.csv_safe import csv_writer

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


def judgments_csv(study: Study) -> str:
    """The study's judgments, oldest first."""
    names = dict(study.study_models.values_list("model_version_id", "model_version__name"))
    first_image_model = TaskImage.objects.filter(task=OuterRef("task_id"), position=0).values(
        "image__model_version_id"
    )[:1]
    rows = (
        Judgment.objects.filter(task__study=study)
        .order_by("answered_at", "pk")
        .values(
            "answer",
            "left_model_id",
            "fetched_at",
            "displayed_at",
            "on_screen_seconds",
            "answered_at",
            "source",
            "excluded",
        )
        .annotate(
            task_key=F("task__key"),
            prompt=F("task__prompt__text"),
            criterion=F("task__criterion"),
            annotator_name=F("annotator__username"),
            first_model=Subquery(first_image_model),
            gold=F("task__is_gold"),
        )
    )
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows.iterator(chunk_size=5000):
        left = right = choice = winner = ""
        if study.kind == Study.Kind.AB:
            left = names.get(row["left_model_id"], "")
            right = next((name for pk, name in names.items() if pk != row["left_model_id"]), "")
            choice = row["answer"].get("choice", "")
            winner = {"left": left, "right": right}.get(choice, choice)
        writer.writerow(
            [
                study.name,
                study.kind,
                row["task_key"],
                row["prompt"],
                row["criterion"],
                row["annotator_name"],
                json.dumps(row["answer"], sort_keys=True),
                names.get(row["first_model"], ""),
                left,
                right,
                choice,
                winner,
                row["fetched_at"].isoformat(),
                row["displayed_at"].isoformat() if row["displayed_at"] else "",
                "" if row["on_screen_seconds"] is None else f"{row['on_screen_seconds']:.3f}",
                row["answered_at"].isoformat(),
                row["source"],
                row["gold"],
                row["excluded"],
            ]
        )
    return out.getvalue()
