"""Blinded A/B judgments turned back into "A wins / tie / B wins / reject" per task.

The side each model was shown on is random per task and stored with every judgment
(``Judgment.left_model``); here the sides are undone, votes are counted per task in the
database (one row per task and option, never one Python step per judgment), and
``ab_outcome`` decides each task. Only tasks with their N judgments are counted unless a
provisional table is asked for (``evalhub.results.judged``).

The rule for an A/B item (paper §4.1: "the majority decision is used"; SPEC "Statistics"),
the one every table, leaderboard and export calls:

1. The majority rule (``plurality``: strictly more votes than any other option;
   ``absolute``: also more than half of the item's votes) picks the outcome.
2. If it picks reject, the item is a reject: counted apart, out of the shares.
3. If it picks nothing, the item is a reject when reject is among the options with the
   most votes, and a tie otherwise.

So 2 A, 2 B, 1 tie and 2 A, 2 tie, 1 B are ties; 2 reject, 2 A, 1 B is a reject; 2 A,
1 B, 1 tie, 1 reject is A under plurality and a tie under absolute. Under the
``dawid-skene`` rule the estimated label of each task is its outcome, reject included.
"""

import pandas as pd
from django.db.models import Count, F, Q

from annotate.models import Study
from evalhub.results.errors import ResultsError
from evalhub.results.judged import study_judgments
from evalhub.results.majority import majority

OUTCOMES = ("A", "tie", "B", "reject")


NOT_AB = "study {name!r} is not an A/B study"
NO_DECIDED = "study {name!r} has no decided items yet: nothing to put in a table"
NO_COMPLETE = (
    "study {name!r} has no decided items yet: {complete} of {items} items have their "
    "{overlap} judgments ({incomplete} have fewer, {started} of them at least one); add "
    "?provisional=1 (page, download, API) or --include-incomplete (commands) for the running, "
    "provisional table"
)


def study_models_ab(study: Study) -> tuple[int, int]:
    """The model version ids of A and B."""
    roles = dict(study.study_models.values_list("role", "model_version_id"))
    if study.kind != Study.Kind.AB or set(roles) != {"A", "B"}:
        raise ResultsError(NOT_AB.format(name=study.name))
    return roles["A"], roles["B"]


def ab_outcome(counts: pd.DataFrame, rule: str) -> pd.Series:
    """The outcome of each A/B item under the module's rule, vectorized over items.

    Args:
        counts: vote counts, rows are items, columns ``A``, ``tie``, ``B``, ``reject``.
        rule: ``plurality`` or ``absolute``.
    Returns:
        A Series aligned with ``counts.index`` holding one of ``OUTCOMES``.
    """
    values = counts[list(OUTCOMES)].fillna(0)
    decided = majority(values, rule)
    top = values.max(axis=1)
    level_reject = (values["reject"] == top) & (top > 0)
    undecided = pd.Series("tie", index=values.index, dtype="object").mask(level_reject, "reject")
    return decided.astype("object").fillna(undecided)


def ab_vote_conditions(study: Study) -> dict[str, Q]:
    """Per outcome, the judgments that vote for it: the side each model was shown on is
    undone with ``Judgment.left_model`` (the one place this rule is written)."""
    model_a, _ = study_models_ab(study)
    a_left = Q(left_model_id=model_a)
    return {
        "A": (Q(answer__choice="left") & a_left) | (Q(answer__choice="right") & ~a_left),
        "tie": Q(answer__choice="tie"),
        "B": (Q(answer__choice="right") & a_left) | (Q(answer__choice="left") & ~a_left),
        "reject": Q(answer__choice="reject"),
    }


def ab_vote_counts(study: Study, *, include_incomplete: bool = False) -> pd.DataFrame:
    """Votes per counted task in A/B terms: index task id, columns criterion, prompt and the outcomes.

    The sides are undone inside the database's GROUP BY, so one row per task comes back
    however many judgments there are.
    """
    votes = ab_vote_conditions(study)
    rows = (
        study_judgments(study, include_incomplete=include_incomplete)
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


def ab_task_outcomes(study: Study, rule: str, *, include_incomplete: bool = False) -> pd.DataFrame:
    """Per counted task: criterion, prompt, votes, the ``outcome`` and ``votes_total``."""
    counts = ab_vote_counts(study, include_incomplete=include_incomplete)
    counts["outcome"] = ab_outcome(counts, rule)
    counts["votes_total"] = counts[list(OUTCOMES)].sum(axis=1)
    return counts
