"""Validation of an annotator's answer for each task kind, into the stored form.

- best/worst: ``{"positive": p, "negative": q}``, display positions, p ≠ q;
- A/B: ``{"choice": "left" | "tie" | "right" | "reject"}``;
- alignment: ``{"answers": {"<question id>": true/false}}`` covering every question of the
  prompt; "yes"/"no" are accepted for true/false.
"""

from annotate import errors
from annotate.errors import InvalidInput
from annotate.models import Study, Task

AB_CHOICES = ("left", "tie", "right", "reject")
_YES_NO = {"yes": True, "no": False, "true": True, "false": False}


def answer_clean(task: Task, answer: object) -> dict:
    """``answer`` to ``task`` in stored form, or ``InvalidInput`` saying what is wrong."""
    kind = task.study.kind
    return answer_check(
        kind,
        answer,
        image_count=task.task_images.count() if kind == Study.Kind.BEST_WORST else 0,
        question_ids=(
            frozenset(task.prompt.questions.values_list("pk", flat=True))
            if kind == Study.Kind.ALIGNMENT
            else frozenset()
        ),
    )


def answer_check(kind: str, answer: object, *, image_count: int, question_ids: frozenset[int]) -> dict:
    """The same check from what it needs: the task's kind, its number of images
    (best/worst) and its questions (alignment)."""
    if not isinstance(answer, dict):
        raise InvalidInput(errors.ANSWER_NOT_OBJECT)
    if kind == Study.Kind.BEST_WORST:
        return _best_worst(answer, image_count)
    if kind == Study.Kind.AB:
        return _ab(answer)
    return _alignment(answer, question_ids)


def _fields(answer: dict, kind: str, fields: tuple[str, ...]) -> None:
    if set(answer) != set(fields):
        raise InvalidInput(errors.ANSWER_FIELDS.format(kind=kind, fields=", ".join(fields)))


def _best_worst(answer: dict, image_count: int) -> dict:
    _fields(answer, "best/worst", ("positive", "negative"))
    for field in ("positive", "negative"):
        value = answer[field]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < image_count:
            raise InvalidInput(errors.BAD_POSITION.format(field=field, last=image_count - 1))
    if answer["positive"] == answer["negative"]:
        raise InvalidInput(errors.SAME_POSITIVE_NEGATIVE)
    return {"positive": answer["positive"], "negative": answer["negative"]}


def _ab(answer: dict) -> dict:
    _fields(answer, "A/B", ("choice",))
    if answer["choice"] not in AB_CHOICES:
        raise InvalidInput(errors.BAD_CHOICE.format(choices=", ".join(AB_CHOICES)))
    return {"choice": answer["choice"]}


def _alignment(answer: dict, question_ids: frozenset[int]) -> dict:
    _fields(answer, "text-alignment", ("answers",))
    raw = answer["answers"]
    if not isinstance(raw, dict):
        raise InvalidInput(errors.ANSWER_FIELDS.format(kind="text-alignment", fields="answers"))
    given = {}
    for key, value in raw.items():
        try:
            question_id = int(key)
        except (TypeError, ValueError):
            raise InvalidInput(errors.UNKNOWN_QUESTIONS.format(ids=key)) from None
        if isinstance(value, str):
            normalized = _YES_NO.get(value.strip().lower())
        else:
            normalized = value if isinstance(value, bool) else None
        if normalized is None:
            raise InvalidInput(errors.BAD_YES_NO.format(question=question_id))
        given[question_id] = normalized
    unknown = sorted(set(given) - question_ids)
    if unknown:
        raise InvalidInput(errors.UNKNOWN_QUESTIONS.format(ids=", ".join(map(str, unknown))))
    missing = sorted(question_ids - set(given))
    if missing:
        raise InvalidInput(errors.MISSING_QUESTIONS.format(ids=", ".join(map(str, missing))))
    return {"answers": {str(qid): given[qid] for qid in sorted(given)}}
