"""Reliability-weighted aggregation of A/B votes (Dawid & Skene, 1979, via crowd-kit),
to set beside the plain majority: annotators who often disagree with the consensus
count for less."""

import pandas as pd
from crowdkit.aggregation import DawidSkene

from annotate.models import Judgment, Study
from evalhub.results.ab_outcomes import study_models_ab


def ab_votes_long(study: Study) -> pd.DataFrame:
    """One row per judgment: task, worker and the vote in A/B terms (A, B, tie, reject)."""
    model_a, _ = study_models_ab(study)
    rows = Judgment.objects.filter(task__study=study).values_list(
        "task_id", "annotator_id", "answer__choice", "left_model_id"
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["task", "worker", "choice", "left"])
    if frame.empty:
        return pd.DataFrame(columns=["task", "worker", "label"])
    a_left = frame["left"] == model_a
    label = frame["choice"].copy()
    label[(frame["choice"] == "left") & a_left] = "A"
    label[(frame["choice"] == "right") & ~a_left] = "A"
    label[(frame["choice"] == "right") & a_left] = "B"
    label[(frame["choice"] == "left") & ~a_left] = "B"
    frame["label"] = label
    return frame[["task", "worker", "label"]]


def ab_dawid_skene_outcomes(study: Study, n_iter: int = 100) -> pd.Series:
    """Per task id, the Dawid–Skene estimate of its true outcome."""
    votes = ab_votes_long(study)
    if votes.empty:
        return pd.Series(dtype="object")
    return DawidSkene(n_iter=n_iter).fit_predict(votes).astype("object")
