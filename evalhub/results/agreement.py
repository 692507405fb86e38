"""Inter-annotator agreement and per-annotator figures for A/B studies (SPEC "Statistics")."""

import numpy as np
import pandas as pd
from django.db.models import F
from django.db.models.fields.json import KeyTextTransform

from annotate.models import Judgment, Study
from evalhub.results.ab_outcomes import OUTCOMES, ab_task_outcomes, study_models_ab


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


def ab_agreement(study: Study, rule: str) -> dict:
    """Fleiss' kappa over the study's tasks that have exactly N judgments, in A/B terms."""
    outcomes = ab_task_outcomes(study, rule)
    complete = outcomes[outcomes["votes_total"] == study.overlap]
    return {"items": len(complete), "fleiss_kappa": fleiss_kappa(complete[list(OUTCOMES)])}


def ab_annotator_stats(study: Study, rule: str) -> pd.DataFrame:
    """Per annotator: judgments, median seconds per task, and agreement with the majority."""
    model_a, _ = study_models_ab(study)
    rows = pd.DataFrame.from_records(
        Judgment.objects.filter(task__study=study)
        .annotate(choice=KeyTextTransform("choice", "answer"), username=F("annotator__username"))
        .values("task_id", "username", "left_model_id", "choice", "shown_at", "answered_at")
    )
    columns = ["judgments", "median_seconds", "agreement_with_majority"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    left_is_a = rows["left_model_id"] == model_a
    rows["vote"] = rows["choice"].where(~rows["choice"].isin(["left", "right"]))
    rows.loc[(rows["choice"] == "left") & left_is_a, "vote"] = "A"
    rows.loc[(rows["choice"] == "right") & ~left_is_a, "vote"] = "A"
    rows.loc[(rows["choice"] == "right") & left_is_a, "vote"] = "B"
    rows.loc[(rows["choice"] == "left") & ~left_is_a, "vote"] = "B"
    rows["seconds"] = (rows["answered_at"] - rows["shown_at"]).dt.total_seconds()
    majority = ab_task_outcomes(study, rule)["outcome"]
    rows["agrees"] = rows["vote"] == rows["task_id"].map(majority)
    grouped = rows.groupby("username")
    return pd.DataFrame(
        {
            "judgments": grouped.size(),
            "median_seconds": grouped["seconds"].median(),
            "agreement_with_majority": grouped["agrees"].mean(),
        }
    )
