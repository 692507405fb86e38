"""What a study's workforce page (``evalhub.results.views.workforce``) and its API
(``evalhub.results.api``) show: one row per annotator with a part in the study — their
judgments, time on screen, gold accuracy, agreement with the majority, flags
(``evalhub.results.workforce_flags``) and status — the log of exclusions and
reinstatements, and the study's quality rule in words. The actions themselves are
annotate.workforce's; :func:`annotator_in_study` finds whom they apply to."""

import pandas as pd
from django import forms
from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, QuerySet

from annotate import errors
from annotate.errors import NotFound
from annotate.models import AnnotatorTally, Enrollment, Judgment, Study, WorkforceEvent
from annotate.workforce import REASON_LENGTH, GoldScore, study_quality
from evalhub.results.agreement import majority_agreement
from evalhub.results.majority import majority_rule
from evalhub.results.workforce_flags import (
    CONSTANT_MIN_ANSWERS,
    CONSTANT_SHARE,
    FAST_MIN_TIMED,
    annotator_flags,
    gold_scores,
)

ACTIVE, EXCLUDED = "active", "excluded"
EXCLUDED_MESSAGE = (
    "{annotator} is excluded: {judgments} judgment(s) left out of the tables, {tasks} task(s) reopened."
)
REINSTATED_MESSAGE = "{annotator} is reinstated: {judgments} judgment(s) count again."
REMOVED_MESSAGE = (
    "{annotator} is removed from the study: no more tasks here, {leases} lease(s) released; "
    "their judgments stay."
)

GOLD_WORDS = "an accuracy on gold items under {accuracy} % once they have given {min_gold} gold answers"
ACTION_WORDS = {
    "exclude": "Quality rule: annotators with {gold} are excluded automatically; their judgments "
    "leave the tables and the tasks they answered reopen.",
    "flag": "Quality rule: annotators with {gold} are flagged here for you to decide; nobody is "
    "excluded automatically.",
    "off": "Quality rule: off, nobody is excluded automatically; annotators with {gold} are "
    "still flagged here.",
}
FLOOR_WORDS = (
    "A median time on screen under {floor} s per task, over at least {timed} timed judgments, is flagged."
)
NO_FLOOR_WORDS = "No floor on the time on screen: nobody is flagged as too fast."
CONSTANT_WORDS = (
    "One answer pattern ({patterns}) in {percent} % or more of at least {answers} answers is flagged."
)
PATTERN_WORDS = {
    Study.Kind.AB: "the same side",
    Study.Kind.BEST_WORST: "the same position as best",
    Study.Kind.ALIGNMENT: "yes, or no, to every question",
}


class ReasonForm(forms.Form):
    """The reason the page's Exclude and Reinstate forms send; an empty one is the
    service's to refuse (errors.REASON_EMPTY), with the message the API gives too."""

    reason = forms.CharField(required=False, max_length=REASON_LENGTH)


def quality_rule_words(rule: dict, kind: str) -> list[str]:
    """The study's quality rule (annotate.workforce.study_quality) and the flags, in sentences."""
    gold = GOLD_WORDS.format(accuracy=rule["quality_gold_accuracy"], min_gold=rule["quality_min_gold"])
    floor = rule["quality_floor_seconds"]
    return [
        ACTION_WORDS[rule["quality_action"]].format(gold=gold),
        FLOOR_WORDS.format(floor=floor, timed=FAST_MIN_TIMED) if floor else NO_FLOOR_WORDS,
        CONSTANT_WORDS.format(
            patterns=PATTERN_WORDS[kind], percent=round(CONSTANT_SHARE * 100), answers=CONSTANT_MIN_ANSWERS
        ),
    ]


def workforce_judgments(study: Study) -> pd.DataFrame:
    """One row per judgment of the study, excluded ones too: worker (annotator id),
    username, answer, seconds on screen (NaN without the page's figure), excluded,
    is_gold and gold_answer (the frame evalhub.results.workforce_flags reads)."""
    rows = Judgment.objects.filter(task__study=study).values_list(
        "annotator_id",
        "annotator__username",
        "answer",
        "on_screen_seconds",
        "excluded",
        "task__is_gold",
        "task__gold_answer",
    )
    frame = pd.DataFrame.from_records(
        list(rows), columns=["worker", "username", "answer", "seconds", "excluded", "is_gold", "gold_answer"]
    )
    frame["seconds"] = frame["seconds"].astype(float)
    frame["excluded"] = frame["excluded"].astype(bool)
    return frame


def _number(value) -> float | None:
    return None if pd.isna(value) else float(value)


def workforce_rows(study: Study) -> list[dict]:
    """Per annotator with a tally row or a judgment in the study, by username: judgments
    (valid, counted by the tables; excluded), median seconds on screen over all of them,
    gold answers and accuracy, agreement with the majority (valid votes on decided complete
    items, evalhub.results.agreement), flags, status with the exclusion's reason and time,
    the enrollment (studies open to enrolled annotators) and the qualification quiz's result."""
    judgments = workforce_judgments(study)
    tallies = {
        tally.annotator_id: tally
        for tally in AnnotatorTally.objects.filter(study=study).select_related("annotator")
    }
    enrollments = dict(Enrollment.objects.filter(study=study).values_list("annotator_id", "status"))
    names = {pk: tally.annotator.username for pk, tally in tallies.items()}
    names |= dict(zip(judgments["worker"].astype(int), judgments["username"], strict=True))
    per_worker = judgments.groupby("worker").agg(
        total=("excluded", "size"), excluded=("excluded", "sum"), median_seconds=("seconds", "median")
    )
    flags = annotator_flags(judgments, kind=study.kind, rule=study_quality(study))
    scores = gold_scores(judgments)
    agreement = majority_agreement(study, majority_rule())
    rows = []
    for worker, username in sorted(names.items(), key=lambda item: item[1]):
        counts = per_worker.loc[worker] if worker in per_worker.index else None
        score = scores.get(worker, GoldScore(0, 0))
        agreed = agreement.loc[worker] if worker in agreement.index else None
        tally = tallies.get(worker)
        excluded_at = tally.excluded_at if tally else None
        rows.append(
            {
                "annotator_id": worker,
                "username": username,
                "judgments": int(counts["total"] - counts["excluded"]) if counts is not None else 0,
                "excluded_judgments": int(counts["excluded"]) if counts is not None else 0,
                "median_seconds": _number(counts["median_seconds"]) if counts is not None else None,
                "gold_answered": score.answered,
                "gold_correct": score.correct,
                "gold_accuracy": score.accuracy,
                "agreement_with_majority": (
                    int(agreed["agreed"]) / int(agreed["counted"]) if agreed is not None else None
                ),
                "flags": flags.get(worker, []),
                "status": EXCLUDED if excluded_at else ACTIVE,
                "excluded_at": excluded_at,
                "excluded_reason": tally.excluded_reason if excluded_at else "",
                "enrollment": enrollments.get(worker, ""),  # enrolled, removed, or none
                "quiz": tally.quiz_state if tally else "",  # passed, failed, or none
            }
        )
    return rows


def workforce_events(study: Study) -> QuerySet[WorkforceEvent]:
    """The study's exclusions and reinstatements, newest first."""
    return study.workforce_events.select_related("annotator", "by")


def workforce_page_context(study: Study) -> dict:
    """Everything the workforce page shows."""
    rule = study_quality(study)
    return {
        "study": study,
        "rule": rule,
        "rule_words": quality_rule_words(rule, study.kind),
        "annotators": workforce_rows(study),
        "events": workforce_events(study),
        "reason_length": REASON_LENGTH,
    }


def annotator_in_study(study: Study, **lookup) -> User:
    """The user ``lookup`` names (``pk=`` or ``username=``) if they have a tally row or a
    judgment in the study; NotFound otherwise, so nobody is excluded from a study they
    never took part in."""
    part = Exists(AnnotatorTally.objects.filter(study=study, annotator=OuterRef("pk"))) | Exists(
        Judgment.objects.filter(task__study=study, annotator=OuterRef("pk"))
    )
    person = User.objects.filter(part, **lookup).first()
    if person is None:
        name = lookup.get("username", lookup.get("pk"))
        raise NotFound(errors.NOT_IN_STUDY.format(annotator=str(name)))
    return person


def event_message(event: WorkforceEvent) -> str:
    """What the page says once an exclusion or reinstatement is done."""
    if event.action == WorkforceEvent.Action.EXCLUDED:
        return EXCLUDED_MESSAGE.format(
            annotator=event.annotator.username, judgments=event.judgments, tasks=event.tasks_reopened
        )
    return REINSTATED_MESSAGE.format(annotator=event.annotator.username, judgments=event.judgments)
