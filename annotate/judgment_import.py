"""Import judgments collected elsewhere (a vendor's CSV) into an existing study.

Columns: ``study`` (name), ``task_key``, ``annotator`` (a username; a missing one is
created as an annotator without a password), ``answer``, and optionally ``answered_at``
(ISO 8601). ``answer`` is the API's answer as JSON, or a shorthand: ``left`` / ``tie`` /
``right`` / ``reject`` for A/B (sides as stored on the task), ``2,4`` (positive,
negative positions) for best/worst. Every row is validated like a submission from the
page; the first bad row stops the import, naming its line, and nothing is kept.
"""

import csv
import io
import json
import uuid
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotate.answers import answer_clean
from annotate.errors import InvalidInput
from annotate.models import Judgment, Lease, Study, Task, TaskImage
from annotate.services import study_recount
from evalhub.accounts.roles import ANNOTATORS, user_grant_role
from evalhub.catalog.errors import ImportRejected

REQUIRED = ("study", "task_key", "annotator", "answer")
OPTIONAL = ("answered_at",)


def judgments_import(*, text: str) -> int:
    """Validate and store every row, all or nothing; returns the number imported."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportRejected(f"missing column(s) {', '.join(missing)}", line=1)
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise ImportRejected(f"unknown column(s) {', '.join(unknown)}", line=1)
    studies: dict[str, Study] = {}
    seen: dict[tuple[int, str], int] = {}
    added: dict[int, int] = {}
    judgments = []
    with transaction.atomic():
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            study = studies.get(row["study"]) or Study.objects.filter(name=row["study"]).first()
            if study is None:
                raise ImportRejected(f"no study named {row['study']!r}", line=line)
            studies[study.name] = study
            task = (
                Task.objects.select_for_update()
                .select_related("study", "prompt")
                .filter(study=study, key=row["task_key"])
                .first()
            )
            if task is None:
                raise ImportRejected(f"no task {row['task_key']!r} in study {study.name!r}", line=line)
            if not row["annotator"]:
                raise ImportRejected("field 'annotator' is empty", line=line)
            key = (task.pk, row["annotator"])
            if key in seen:
                raise ImportRejected(
                    f"annotator {row['annotator']!r} already answers this task on line {seen[key]}", line=line
                )
            seen[key] = line
            try:
                answer = answer_clean(task, _answer(row["answer"], study.kind))
            except InvalidInput as exc:
                raise ImportRejected(exc.message, line=line) from None
            annotator = _annotator(row["annotator"])
            if Judgment.objects.filter(task=task, annotator=annotator).exists():
                raise ImportRejected(
                    f"annotator {annotator.username!r} already answered this task", line=line
                )
            added[task.pk] = added.get(task.pk, 0) + 1
            if task.judgment_count + added[task.pk] > study.overlap:
                raise ImportRejected(
                    f"task {task.key!r} would have more than N = {study.overlap} judgments", line=line
                )
            when = _when(row.get("answered_at", ""), line)
            left = None
            if study.kind == Study.Kind.AB:
                left = (
                    TaskImage.objects.filter(task=task, position=0)
                    .values_list("image__model_version_id", flat=True)
                    .get()
                )
            judgments.append(
                Judgment(
                    task=task,
                    annotator=annotator,
                    client_id=uuid.uuid4(),
                    answer=answer,
                    left_model_id=left,
                    fetched_at=when,
                    answered_at=when,
                    source="import",
                )
            )
        if not judgments:
            raise ImportRejected("the file has no rows")
        Judgment.objects.bulk_create(judgments)
        # A done lease records that the annotator has seen the task, as one from the page
        # does: the queue does not hand it to them again and their progress counts it (a
        # lease they held on it is closed).
        Lease.objects.bulk_create(
            (
                Lease(
                    task=judgment.task,
                    annotator=judgment.annotator,
                    state=Lease.State.DONE,
                    shown_at=judgment.fetched_at,
                    expires_at=judgment.answered_at,
                )
                for judgment in judgments
            ),
            update_conflicts=True,
            unique_fields=["task", "annotator"],
            update_fields=["state"],
        )
        for task_id, count in added.items():
            Task.objects.filter(pk=task_id).update(judgment_count=F("judgment_count") + count)
        for study in studies.values():
            study_recount(study_id=study.pk)
    return len(judgments)


def _answer(raw: str, kind: str):
    if raw.startswith("{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"answer is not valid JSON ({exc.msg})") from None
    if kind == Study.Kind.AB:
        return {"choice": raw}
    if kind == Study.Kind.BEST_WORST and "," in raw:
        positive, _, negative = raw.partition(",")
        if positive.strip().isdigit() and negative.strip().isdigit():
            return {"positive": int(positive), "negative": int(negative)}
    raise InvalidInput(f"answer {raw!r} is not a valid {kind} answer")


def _annotator(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_user(username=username)
        user.set_unusable_password()
        user.save()
        user_grant_role(user=user, role=ANNOTATORS)
    return user


def _when(raw: str, line: int) -> datetime:
    if not raw:
        return timezone.now()
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ImportRejected(f"answered_at {raw!r} is not an ISO 8601 time", line=line) from None
    return value if timezone.is_aware(value) else timezone.make_aware(value)
