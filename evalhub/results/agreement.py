"""Inter-annotator agreement and per-annotator figures, for every task kind (SPEC "Statistics").

Each judgment becomes one or more votes on an *item*: an A/B task (its outcome in A/B
terms), a best/worst task (the position chosen as positive), or an alignment
(task, question) pair (yes or no). Only complete tasks (N judgments) are read
(``evalhub.results.judged``). Fleiss' kappa is computed over the items that have exactly
N votes; an annotator's agreement with the majority is the share of their votes on
decided items that match it (an item whose top is level has no majority to agree with
and is left out).
"""

import numpy as np
import pandas as pd
from django.db.models import F, QuerySet

from annotate.models import Judgment, Study
from evalhub.results.judged import study_judgments
from evalhub.results.majority import majority
from evalhub.results.reliability import ab_votes_long


def fleiss_kappa(counts: pd.DataFrame) -> float | None:
    """Fleiss' kappa of items rated by the same number of raters.

    Args:
        counts: rows are items, columns are categories, cells are how many raters chose it;
            every row must sum to the same n ≥ 2.
    Returns:
        kappa, or None when it is undefined (no items, or every rating in one category).
    """
    table = counts.to_numpy(dtype=float)
    if table.size == 0:
        return None
    raters = table.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (≥ 2) of ratings per item")
    n = raters[0]
    per_item = (np.square(table).sum(axis=1) - n) / (n * (n - 1))
    category_share = table.sum(axis=0) / table.sum()
    expected = np.square(category_share).sum()
    if expected >= 1:
        return None
    return float((per_item.mean() - expected) / (1 - expected))


def study_votes(study: Study, *, include_incomplete: bool = False) -> pd.DataFrame:
    """One row per counted vote: item, worker (annotator id) and label, for the study's kind."""
    if study.kind == Study.Kind.AB:
        votes = ab_votes_long(study, include_incomplete=include_incomplete)
        return votes.rename(columns={"task": "item"})[["item", "worker", "label"]]
    rows = pd.DataFrame.from_records(
        list(
            study_judgments(study, include_incomplete=include_incomplete).values_list(
                "task_id", "annotator_id", "answer"
            )
        ),
        columns=["task", "worker", "answer"],
    )
    if rows.empty:
        return pd.DataFrame(columns=["item", "worker", "label"])
    if study.kind == Study.Kind.BEST_WORST:
        return pd.DataFrame(
            {
                "item": rows["task"],
                "worker": rows["worker"],
                "label": rows["answer"].str["positive"].astype(str),
            }
        )
    wide = pd.DataFrame(
        rows["answer"].str["answers"].tolist(), index=pd.MultiIndex.from_frame(rows[["task", "worker"]])
    )
    long = wide.stack().reset_index()
    long.columns = ["task", "worker", "question", "label"]
    long["item"] = long["task"].astype(str) + ":" + long["question"].astype(str)
    long["label"] = long["label"].map({True: "yes", False: "no"})
    return long[["item", "worker", "label"]]


def study_agreement(study: Study) -> dict:
    """Fleiss' kappa over the items that have exactly N votes."""
    votes = study_votes(study)
    counts = (
        votes.groupby(["item", "label"]).size().unstack(fill_value=0) if not votes.empty else pd.DataFrame()
    )
    complete = counts[counts.sum(axis=1) == study.overlap] if not counts.empty else counts
    # With N = 1 there is nobody to agree with.
    kappa = fleiss_kappa(complete) if len(complete) and study.overlap >= 2 else None
    return {"items": len(complete), "fleiss_kappa": kappa}


def judgment_times(judgments: QuerySet[Judgment]) -> pd.DataFrame:
    """One row per judgment: worker (annotator id), username, study, the seconds it was on
    screen (NaN without the page's figure) and when it was answered."""
    times = pd.DataFrame.from_records(
        list(
            judgments.annotate(username=F("annotator__username")).values_list(
                "annotator_id", "username", "task__study_id", "on_screen_seconds", "answered_at"
            )
        ),
        columns=["worker", "username", "study", "seconds", "answered_at"],
    )
    times["seconds"] = times["seconds"].astype(float)
    return times


def majority_agreement(study: Study, rule: str) -> pd.DataFrame:
    """Per worker (annotator id): ``agreed``, their votes on the decided complete items that
    match the majority, and ``counted``, their votes on those items."""
    votes = study_votes(study)
    if votes.empty:
        return pd.DataFrame(columns=["agreed", "counted"], dtype=int)
    counts = votes.groupby(["item", "label"]).size().unstack(fill_value=0)
    decided = majority(counts, rule).dropna()
    judged = votes[votes["item"].isin(decided.index)]
    matches = (judged["label"] == judged["item"].map(decided)).groupby(judged["worker"])
    return pd.DataFrame({"agreed": matches.sum().astype(int), "counted": matches.size()})


def _none_for_nan(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """None, not NaN, in these columns: what templates and JSON show as "no figure"."""
    for column in columns:
        frame[column] = frame[column].astype("object").where(frame[column].notna(), None)
    return frame


def annotator_stats(study: Study, rule: str) -> pd.DataFrame:
    """Per annotator (username): judgments, median seconds on screen per task, agreement with
    the majority on complete items.

    The time is the one the labeling page measured with the tab visible and the window
    focused (``Judgment.on_screen_seconds``): the time since the task was fetched would count
    the time it waited in the page's queue of preloaded tasks. Judgments without it (API
    clients, imports) are left out of the median; None when an annotator has none.
    """
    columns = ["judgments", "median_seconds", "agreement_with_majority"]
    timing = judgment_times(Judgment.objects.filter(task__study=study))
    if timing.empty:
        return pd.DataFrame(columns=columns)
    names = timing.drop_duplicates("worker").set_index("worker")["username"]
    agreement = majority_agreement(study, rule)
    by_worker = timing.groupby("worker")
    stats = pd.DataFrame(
        {
            "judgments": by_worker.size(),
            "median_seconds": by_worker["seconds"].median(),
            "agreement_with_majority": agreement["agreed"] / agreement["counted"],
        }
    )
    # An annotator with no decided complete item has nothing to agree with, one whose
    # answers carry no time on screen has no median.
    stats = _none_for_nan(stats, ["median_seconds", "agreement_with_majority"])
    stats.index = stats.index.map(names)
    return stats[columns]
