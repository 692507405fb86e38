"""Each annotator's progress and quality across studies, for the researchers' annotators
page, from the same parts as a study's annotator table: agreement with the majority from
``agreement.majority_agreement``, gold accuracy from ``annotate.selectors.study_annotators``,
time on screen from ``agreement.judgment_times`` (a median over all of an annotator's
judgments, not a median of medians). Agreement and gold accuracy pool the counts of every
study, so a study with many judgments weighs as much as it holds."""

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from django.contrib.auth.models import User
from django.db.models import Count, Max

from annotate import selectors
from annotate.models import ImageReport, Judgment, Study
from evalhub.accounts.roles import ANNOTATORS
from evalhub.results.agreement import annotator_stats, judgment_times, majority_agreement


@dataclass(frozen=True)
class AnnotatorSummary:
    annotator_id: int
    username: str
    studies: int  # studies with at least one of their judgments
    judgments: int
    median_seconds: float | None  # on screen, over the judgments that carry it
    agreement_with_majority: float | None  # on decided complete items, all studies pooled
    gold_answered: int
    gold_accuracy: float | None
    reports: int  # tasks they reported a broken image in
    last_active: datetime | None  # their latest answer


def annotators_overview(rule: str) -> list[AnnotatorSummary]:
    """Every annotator (the role's members and anyone with a judgment), by username."""
    times = judgment_times(Judgment.objects.all())
    studies = Study.objects.filter(pk__in=times["study"].unique().tolist())
    agreement = _sum([majority_agreement(study, rule) for study in studies], ["agreed", "counted"])
    gold = _sum([_gold(study) for study in studies], ["answered", "correct"])
    reports = dict(
        ImageReport.objects.values("annotator")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("annotator", "n")
    )
    people = dict(User.objects.filter(groups__name=ANNOTATORS).values_list("pk", "username"))
    people |= dict(zip(times["worker"], times["username"], strict=True))
    by_worker = times.groupby("worker")
    studies_worked, judgments = by_worker["study"].nunique(), by_worker.size()
    medians, last = by_worker["seconds"].median(), by_worker["answered_at"].max()
    return [
        AnnotatorSummary(
            annotator_id=pk,
            username=username,
            studies=int(studies_worked.get(pk, 0)),
            judgments=int(judgments.get(pk, 0)),
            median_seconds=_figure(medians.get(pk)),
            agreement_with_majority=_share(agreement, pk, "agreed", "counted"),
            gold_answered=int(gold["answered"].get(pk, 0)),
            gold_accuracy=_share(gold, pk, "correct", "answered"),
            reports=reports.get(pk, 0),
            last_active=None if pd.isna(last.get(pk)) else last[pk].to_pydatetime(),
        )
        for pk, username in sorted(people.items(), key=lambda person: person[1])
    ]


def annotator_studies(annotator: User, rule: str) -> list[dict]:
    """Per study the annotator worked in, newest first: the study, its row of the study
    page's annotator table (judgments, median seconds, agreement, gold), reports and the
    latest answer."""
    mine = Judgment.objects.filter(annotator=annotator)
    latest = dict(
        mine.values("task__study").annotate(last=Max("answered_at")).values_list("task__study", "last")
    )
    reports = dict(
        ImageReport.objects.filter(annotator=annotator)
        .values("task__study")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("task__study", "n")
    )
    rows = []
    for study in Study.objects.filter(pk__in=list(latest)).order_by("-created_at"):
        stats = annotator_stats(study, rule).to_dict("index").get(annotator.username, {})
        (gold,) = [row for row in selectors.study_annotators(study) if row["username"] == annotator.username]
        rows.append(
            {
                "study": study,
                **gold,
                **stats,
                "reports": reports.get(study.pk, 0),
                "last_active": latest[study.pk],
            }
        )
    return rows


def _gold(study: Study) -> pd.DataFrame:
    """Per worker: gold tasks answered in the study, and how many of those answers were right."""
    rows = selectors.study_annotators(study)
    ids = dict(
        User.objects.filter(username__in=[row["username"] for row in rows]).values_list("username", "pk")
    )
    return pd.DataFrame(
        {
            "answered": [row["gold_answered"] for row in rows],
            # study_annotators gives the share; its denominator is the gold answered.
            "correct": [round((row["gold_accuracy"] or 0) * row["gold_answered"]) for row in rows],
        },
        index=pd.Index([ids[row["username"]] for row in rows], name="worker"),
    )


def _sum(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The frames' counts added up per worker."""
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=columns, dtype=int)
    return pd.concat(frames).groupby(level=0).sum()


def _share(counts: pd.DataFrame, worker: int, part: str, whole: str) -> float | None:
    if worker not in counts.index or not counts.at[worker, whole]:
        return None
    return float(counts.at[worker, part] / counts.at[worker, whole])


def _figure(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
