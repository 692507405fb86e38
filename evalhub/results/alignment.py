"""Text-alignment rates (paper §4.1): per (image, question) the majority yes/no of its
judgments is compared with the question's expected answer; a model's rate is the share
of its decided items that match.

Only images with their N judgments count, unless the table is provisional
(``evalhub.results.judged``). A level yes/no vote (e.g. 2–2 after a skip) is undecided and
left out of the rate: unlike an A/B tie it says nothing about the image, so it is neither a
match nor a miss. A/B items follow ``evalhub.results.ab_outcomes.ab_outcome`` instead."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from annotate.models import Study, TaskImage
from evalhub.catalog.models import AlignmentQuestion
from evalhub.results.judged import study_judgments
from evalhub.results.majority import majority
from evalhub.results.statistics import wilson_interval


@dataclass(frozen=True)
class AlignmentRate:
    model: str
    rate: float | None
    matches: int
    decided: int
    ci_low: float | None
    ci_high: float | None


def alignment_items(study: Study, rule: str, *, include_incomplete: bool = False) -> pd.DataFrame:
    """One row per counted (task, question): model, yes/no votes, majority, expected, match."""
    judgments = pd.DataFrame.from_records(
        list(study_judgments(study, include_incomplete=include_incomplete).values_list("task_id", "answer")),
        columns=["task_id", "answer"],
    )
    if judgments.empty:
        return pd.DataFrame(columns=["task_id", "question_id", "model_id", "decided", "match"])
    wide = pd.DataFrame(judgments["answer"].str["answers"].tolist(), index=judgments["task_id"])
    long = wide.stack().rename("yes").reset_index()
    long.columns = ["task_id", "question_id", "yes"]
    votes = long.groupby(["task_id", "question_id"])["yes"].agg(yes="sum", total="count")
    votes["no"] = votes["total"] - votes["yes"]
    decision = majority(votes[["yes", "no"]], rule)
    votes = votes.reset_index()
    votes["decided"] = decision.notna().to_numpy()
    votes["majority_yes"] = (decision == "yes").to_numpy()
    expected = dict(
        AlignmentQuestion.objects.filter(prompt__tasks__study=study).values_list("pk", "expected_answer")
    )
    votes["expected"] = votes["question_id"].astype(int).map(expected)
    models = dict(
        TaskImage.objects.filter(task__study=study, position=0).values_list(
            "task_id", "image__model_version_id"
        )
    )
    votes["model_id"] = votes["task_id"].map(models)
    votes["match"] = votes["decided"] & (votes["majority_yes"] == votes["expected"])
    return votes


def alignment_rates(study: Study, rule: str, *, include_incomplete: bool = False) -> dict[int, AlignmentRate]:
    """Per model version id of the study: its alignment rate with a 95% Wilson interval."""
    items = alignment_items(study, rule, include_incomplete=include_incomplete)
    names = dict(study.study_models.values_list("model_version_id", "model_version__name"))
    return {model_id: _rate(items, model_id, name) for model_id, name in names.items()}


@dataclass(frozen=True)
class CategoryRates:
    category: str
    rates: list[AlignmentRate]  # one per model of the study, in the order of alignment_rates


def alignment_rates_by_category(
    study: Study, rule: str, *, include_incomplete: bool = False
) -> list[CategoryRates]:
    """The rates of :func:`alignment_rates` per prompt category, by category name; empty
    when the study's prompts carry no category."""
    items = alignment_items(study, rule, include_incomplete=include_incomplete)
    categories = dict(study.tasks.values_list("pk", "prompt__category"))
    if not any(categories.values()):
        return []
    items["category"] = items["task_id"].map(categories)
    names = dict(study.study_models.values_list("model_version_id", "model_version__name"))
    return [
        CategoryRates(category, [_rate(items[items["category"] == category], m, n) for m, n in names.items()])
        for category in sorted(set(categories.values()))
    ]


def _rate(items: pd.DataFrame, model_id: int, name: str) -> AlignmentRate:
    """The share of a model's decided items that match, with its 95% Wilson interval."""
    mine = items[(items["model_id"] == model_id) & items["decided"]]
    decided, matches = len(mine), int(mine["match"].sum())
    low, high = wilson_interval([matches], [decided])
    return AlignmentRate(
        model=name,
        rate=matches / decided if decided else None,
        matches=matches,
        decided=decided,
        ci_low=None if np.isnan(low[0]) else float(low[0]),
        ci_high=None if np.isnan(high[0]) else float(high[0]),
    )


def alignment_study_for(study: Study) -> Study | None:
    """The newest alignment study over the same prompt set that covers both models of an A/B study."""
    model_ids = set(study.study_models.values_list("model_version_id", flat=True))
    candidates = Study.objects.filter(kind=Study.Kind.ALIGNMENT, prompt_set=study.prompt_set).order_by(
        "-created_at"
    )
    for candidate in candidates:
        if model_ids <= set(candidate.study_models.values_list("model_version_id", flat=True)):
            return candidate
    return None
