"""Reliability-weighted aggregation of A/B votes (Dawid & Skene, 1979, via crowd-kit),
to set beside the plain majority: annotators who often disagree with the consensus
count for less.

Each criterion is fitted on its own (paper §4.1 asks about visual flaws and visual appeal
separately): an annotator's reliability on flaws — spotting a distorted hand — says little
about their reliability on appeal, a matter of taste, so one pooled confusion matrix per
annotator would let their record on one criterion tip the other's items. Only the counted
tasks enter a fit: those with their N judgments, unless the table is provisional.
"""

import pandas as pd
from crowdkit.aggregation import DawidSkene
from django.db.models import Case, Value, When

from annotate.models import Study
from evalhub.results.ab_outcomes import ab_vote_conditions
from evalhub.results.judged import study_judgments


def ab_votes_long(study: Study, *, include_incomplete: bool = False) -> pd.DataFrame:
    """One row per counted judgment: task, criterion, worker and the vote in A/B terms
    (A, B, tie, reject), undone by the database as in the win-rate table."""
    label = Case(
        *(When(condition, then=Value(name)) for name, condition in ab_vote_conditions(study).items())
    )
    rows = (
        study_judgments(study, include_incomplete=include_incomplete)
        .annotate(label=label)
        .values_list("task_id", "task__criterion", "annotator_id", "label")
    )
    return pd.DataFrame.from_records(list(rows), columns=["task", "criterion", "worker", "label"])


def ab_dawid_skene_outcomes(
    study: Study, n_iter: int = 100, *, include_incomplete: bool = False
) -> pd.Series:
    """Per counted task id, the Dawid–Skene estimate of its outcome (A, tie, B or reject),
    one fit per criterion."""
    votes = ab_votes_long(study, include_incomplete=include_incomplete)
    if votes.empty:
        return pd.Series(dtype="object")
    fits = [
        DawidSkene(n_iter=n_iter).fit_predict(criterion_votes[["task", "worker", "label"]])
        for _, criterion_votes in votes.groupby("criterion")
    ]
    return pd.concat(fits).astype("object")
