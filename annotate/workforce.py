"""Who still works on a study: excluding an annotator (by a researcher, or by the study's
quality rule on gold accuracy) and reinstating one, each logged with its reason
(``WorkforceEvent``).

An exclusion keeps the annotator's judgments, flagged ``excluded`` (the raw export shows
them), but takes them out of every table and out of their tasks' counts. So each task
they answered that was full opens again and is handed out until it has N valid
judgments; the annotator is handed nothing more, and their answers in flight are
refused. Reopened tasks go through the ordinary lease statement, so the exposure rules
decide who may get them, as for any task (annotate.exposure).

Ordering against answers in flight: a submission writes the annotator's tally row last,
under that row's lock, and reads the exclusion back from its own write
(annotate.queries.TALLY_SQL). An exclusion takes the same row's lock first. If the
exclusion commits first, the answer is refused and rolled back; if the answer commits
first, the exclusion, waiting on the lock, then finds and excludes it. Either way no
judgment of an excluded annotator counts. On SQLite writers run one at a time anyway.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotate import errors
from annotate.errors import Conflict, InvalidInput
from annotate.models import AnnotatorTally, Judgment, Lease, Study, Task, WorkforceEvent
from annotate.study_settings import QUALITY_MIN_GOLD, config_group

REASON_LENGTH = WorkforceEvent._meta.get_field("reason").max_length
RULE_REASON = "gold accuracy {correct}/{answered} ({percent:.0f} %) is below the study's {threshold} %"


def study_quality(study: Study) -> dict:
    """The study's quality rule: its settings, the declared defaults where a study made
    before the rule existed has none."""
    return config_group(study, "quality")


def reason_clean(text: str, max_length: int = REASON_LENGTH) -> str:
    """The reason a researcher gives for acting on an annotator (here, and a removal in
    annotate.enrollment): on one line, cut to its column, never empty."""
    text = " ".join(str(text).split())
    if not text:
        raise InvalidInput(errors.REASON_EMPTY)
    return text[:max_length]


def _tally_locked(study: Study, annotator) -> AnnotatorTally:
    """The annotator's row in the study, created if they have none, under its row lock."""
    AnnotatorTally.objects.get_or_create(study=study, annotator=annotator)
    return AnnotatorTally.objects.select_for_update().get(study=study, annotator=annotator)


@transaction.atomic
def annotator_exclude(*, study: Study, annotator, reason: str, by=None, now: datetime | None = None):
    """Exclude ``annotator`` from ``study`` (``by``: the researcher; None: the quality rule)."""
    reason = reason_clean(reason)
    tally = _tally_locked(study, annotator)
    if tally.excluded_at is not None:
        raise Conflict(errors.ALREADY_EXCLUDED.format(annotator=annotator.username))
    tally.excluded_at = now or timezone.now()
    tally.excluded_reason = reason
    tally.save(update_fields=["excluded_at", "excluded_reason"])

    overlap = Study.objects.values_list("overlap", flat=True).get(pk=study.pk)
    judgments = Judgment.objects.filter(task__study=study, annotator=annotator, excluded=False)
    task_ids = sorted(judgments.values_list("task_id", flat=True))
    counts = _counts_locked(task_ids)
    excluded = judgments.update(excluded=True)
    Task.objects.filter(pk__in=task_ids).update(judgment_count=F("judgment_count") - 1)
    reopened = [pk for pk, count in counts.items() if count >= overlap and count - 1 < overlap]
    _opened(study, reopened, +1)
    # Their leases give their slots back, except one an answer in flight holds: that answer
    # is refused when it reaches the tally row, and its lease expires.
    held = Lease.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        annotator=annotator, task__study=study, state=Lease.State.ACTIVE
    )
    Lease.objects.filter(pk__in=list(held.values_list("pk", flat=True))).update(state=Lease.State.SKIPPED)
    return WorkforceEvent.objects.create(
        study=study,
        annotator=annotator,
        action=WorkforceEvent.Action.EXCLUDED,
        reason=reason,
        by=by,
        judgments=excluded,
        tasks_reopened=len(reopened),
    )


@transaction.atomic
def annotator_reinstate(*, study: Study, annotator, reason: str, by=None) -> WorkforceEvent:
    """Let an excluded annotator work again. Their judgments count again on the tasks that
    still have room for them; a task that others filled meanwhile keeps those N, and this
    annotator's judgment there stays out (flagged excluded, with the reason logged)."""
    reason = reason_clean(reason)
    tally = _tally_locked(study, annotator)
    if tally.excluded_at is None:
        raise Conflict(errors.NOT_EXCLUDED.format(annotator=annotator.username))
    tally.excluded_at = None
    tally.excluded_reason = ""
    tally.save(update_fields=["excluded_at", "excluded_reason"])

    overlap = Study.objects.values_list("overlap", flat=True).get(pk=study.pk)
    judgments = Judgment.objects.filter(task__study=study, annotator=annotator, excluded=True)
    task_ids = sorted(judgments.values_list("task_id", flat=True))
    counts = _counts_locked(task_ids)
    room = [pk for pk, count in counts.items() if count < overlap]
    restored = judgments.filter(task_id__in=room).update(excluded=False)
    Task.objects.filter(pk__in=room).update(judgment_count=F("judgment_count") + 1)
    _opened(study, [pk for pk in room if counts[pk] + 1 >= overlap], -1)
    return WorkforceEvent.objects.create(
        study=study,
        annotator=annotator,
        action=WorkforceEvent.Action.REINSTATED,
        reason=reason,
        by=by,
        judgments=restored,
    )


def _counts_locked(task_ids: list[int]) -> dict[int, int]:
    """The tasks' counts, under their row locks, taken in id order as every writer that
    locks several tasks must, to wait for others rather than deadlock with them."""
    tasks = Task.objects.select_for_update().filter(pk__in=task_ids).order_by("pk")
    return dict(tasks.values_list("pk", "judgment_count"))


def _opened(study: Study, task_ids: list[int], change: int) -> None:
    """Tasks that opened (+1) or filled (-1): their leases join or leave the annotators'
    open ones (``Lease.task_filled``), and the study's count of open tasks follows."""
    if not task_ids:
        return
    Lease.objects.filter(task_id__in=task_ids).update(task_filled=change < 0)
    Study.objects.filter(pk=study.pk).update(open_tasks=F("open_tasks") + change * len(task_ids))


@dataclass(frozen=True)
class GoldScore:
    answered: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


def gold_score(study: Study, annotator) -> GoldScore:
    """The annotator's answers on the study's gold items, and how many match the known answer."""
    answers = Judgment.objects.filter(task__study=study, task__is_gold=True, annotator=annotator).values_list(
        "answer", "task__gold_answer"
    )
    return GoldScore(answered=len(answers), correct=sum(answer == gold for answer, gold in answers))


def quality_rule_check(*, study_id: int, annotator) -> WorkforceEvent | None:
    """After a gold answer: exclude the annotator if the study's rule says so (accuracy
    below the threshold over at least ``quality_min_gold`` gold answers). Where the rule
    only flags, the workforce page shows it (evalhub.results.workforce_flags)."""
    study = Study.objects.get(pk=study_id)
    rule = study_quality(study)
    if rule["quality_action"] != "exclude":
        return None
    score = gold_score(study, annotator)
    threshold = rule["quality_gold_accuracy"]
    if score.answered < rule[QUALITY_MIN_GOLD.name] or score.correct * 100 >= threshold * score.answered:
        return None
    reason = RULE_REASON.format(
        correct=score.correct, answered=score.answered, percent=score.accuracy * 100, threshold=threshold
    )
    try:
        return annotator_exclude(study=study, annotator=annotator, reason=reason)
    except Conflict:  # excluded meanwhile, by hand or by a concurrent answer's check
        return None
