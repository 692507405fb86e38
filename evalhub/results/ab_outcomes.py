"""Blinded A/B judgments turned back into "A wins / tie / B wins / reject" per task.

The side each model was shown on is random per task and stored with every judgment
(``Judgment.left_model``); here the sides are undone, votes are counted per task in the
database (one row per task and option, never one Python step per judgment), and the
majority rule decides each task. A level top (a 2–2–1 split) is a tie; a task whose
majority is "reject" is counted apart (SPEC "Statistics").
"""

import pandas as pd
from django.db.models import Count, F, Q

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
    """Votes per task in A/B terms: index task id, columns criterion, prompt and the outcomes.

    The sides are undone inside the database's GROUP BY, so one row per task comes back
    however many judgments there are.
    """
    model_a, _ = study_models_ab(study)
    a_left = Q(left_model_id=model_a)
    votes = {
        "A": (Q(answer__choice="left") & a_left) | (Q(answer__choice="right") & ~a_left),
        "tie": Q(answer__choice="tie"),
        "B": (Q(answer__choice="right") & a_left) | (Q(answer__choice="left") & ~a_left),
        "reject": Q(answer__choice="reject"),
    }
    rows = (
        Judgment.objects.filter(task__study=study)
        .values("task_id")
        .annotate(
            criterion=F("task__criterion"),
            prompt_id=F("task__prompt_id"),
            **{f"votes_{name}": Count("pk", filter=condition) for name, condition in votes.items()},
        )
        .order_by()
        .values_list("task_id", "criterion", "prompt_id", *(f"votes_{name}" for name in OUTCOMES))
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["task_id", "criterion", "prompt_id", *OUTCOMES])
    return frame.set_index("task_id")


def ab_task_outcomes(study: Study, rule: str) -> pd.DataFrame:
    """Per judged task: criterion, prompt, votes, the decided ``outcome`` and ``votes_total``."""
    counts = ab_vote_counts(study)
    decided = majority(counts[list(OUTCOMES)], rule)
    counts["outcome"] = decided.fillna("tie")
    counts["votes_total"] = counts[list(OUTCOMES)].sum(axis=1)
    return counts
