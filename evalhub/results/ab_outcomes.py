"""Blinded A/B judgments turned back into "A wins / tie / B wins / reject" per task.

The side each model was shown on is random per task and stored with every judgment
(``Judgment.left_model``); here the sides are undone, votes are counted per task in the
database (one row per task and option, never one Python step per judgment), and the
majority rule decides each task. A level top (a 2–2–1 split) is a tie; a task whose
majority is "reject" is counted apart (SPEC "Statistics").
"""

import pandas as pd
from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform

from annotate.models import Judgment, Study
from evalhub.results.majority import majority

OUTCOMES = ("A", "tie", "B", "reject")


class ResultsError(Exception):
    """A table cannot be computed; the message says why, for the researcher."""


NOT_AB = "study {name!r} is not an A/B study"
NO_DECIDED = "study {name!r} has no decided items yet: nothing to put in a table"


def study_models_ab(study: Study) -> tuple[int, int]:
    """The model version ids of A and B."""
    roles = dict(study.study_models.values_list("role", "model_version_id"))
    if study.kind != Study.Kind.AB or set(roles) != {"A", "B"}:
        raise ResultsError(NOT_AB.format(name=study.name))
    return roles["A"], roles["B"]


def ab_vote_counts(study: Study) -> pd.DataFrame:
    """Votes per task in A/B terms: index task id, columns criterion, prompt and the outcomes."""
    model_a, model_b = study_models_ab(study)
    rows = (
        Judgment.objects.filter(task__study=study)
        .annotate(choice=KeyTextTransform("choice", "answer"))
        .values("task_id", "task__prompt_id", "task__criterion", "left_model_id", "choice")
        .annotate(votes=Count("pk"))
        .order_by()
    )
    frame = pd.DataFrame.from_records(
        list(rows),
        columns=["task_id", "task__prompt_id", "task__criterion", "left_model_id", "choice", "votes"],
    )
    columns = ["criterion", "prompt_id", *OUTCOMES]
    if frame.empty:
        return pd.DataFrame(columns=columns).rename_axis("task_id")
    left_is_a = frame["left_model_id"] == model_a
    side_to_model = {"left": ("A", "B"), "right": ("B", "A")}
    outcome = frame["choice"].map({"tie": "tie", "reject": "reject"})
    for side, (if_a, if_b) in side_to_model.items():
        chosen = frame["choice"] == side
        outcome = outcome.mask(chosen & left_is_a, if_a).mask(chosen & ~left_is_a, if_b)
    frame["outcome"] = outcome
    counts = frame.pivot_table(
        index="task_id", columns="outcome", values="votes", aggfunc="sum", fill_value=0
    )
    counts = counts.reindex(columns=list(OUTCOMES), fill_value=0)
    meta = frame.groupby("task_id")[["task__criterion", "task__prompt_id"]].first()
    meta.columns = ["criterion", "prompt_id"]
    return meta.join(counts)[columns]


def ab_task_outcomes(study: Study, rule: str) -> pd.DataFrame:
    """Per judged task: criterion, prompt, votes, the decided ``outcome`` and ``votes_total``."""
    counts = ab_vote_counts(study)
    decided = majority(counts[list(OUTCOMES)], rule)
    counts["outcome"] = decided.fillna("tie")
    counts["votes_total"] = counts[list(OUTCOMES)].sum(axis=1)
    return counts
