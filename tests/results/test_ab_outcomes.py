"""The one rule for an A/B item, on hand-made vote patterns under both majority rules."""

import pandas as pd
import pytest

from evalhub.results.ab_outcomes import OUTCOMES, ab_outcome, ab_task_outcomes
from evalhub.results.winrates import ab_comparison
from tests.results.conftest import vote

# (votes, outcome under plurality, outcome under absolute)
PATTERNS = [
    (["A", "A", "B", "B", "tie"], "tie", "tie"),
    (["A", "A", "tie", "tie", "B"], "tie", "tie"),
    (["reject", "reject", "A", "A", "B"], "reject", "reject"),
    (["reject", "reject", "A", "B", "tie"], "reject", "reject"),
    (["A", "A", "A", "B", "B"], "A", "A"),
    (["A", "A", "B", "tie", "reject"], "A", "tie"),
    (["B", "B", "B", "B", "B"], "B", "B"),
    (["tie", "tie", "tie", "A", "reject"], "tie", "tie"),
]


def counts(*patterns: list[str]) -> pd.DataFrame:
    """Vote counts per item, one column per outcome."""
    return pd.DataFrame([[votes.count(o) for o in OUTCOMES] for votes in patterns], columns=list(OUTCOMES))


@pytest.mark.parametrize(("votes", "plurality", "absolute"), PATTERNS)
def test_each_pattern_under_both_rules(votes, plurality, absolute):
    """The majority picks; a level top is a reject when reject is in it, a tie otherwise."""
    assert ab_outcome(counts(votes), "plurality").tolist() == [plurality]
    assert ab_outcome(counts(votes), "absolute").tolist() == [absolute]


def test_the_rule_is_vectorized_over_items():
    """Every pattern decided in one call gives the same outcomes as one at a time."""
    frame = counts(*(votes for votes, _, _ in PATTERNS))
    assert ab_outcome(frame, "plurality").tolist() == [p for _, p, _ in PATTERNS]
    assert ab_outcome(frame, "absolute").tolist() == [a for _, _, a in PATTERNS]


def test_a_level_top_with_reject_is_counted_apart_in_the_table(small_study):
    """2 reject, 2 A, 1 B is a reject: out of the shares, not a tie."""
    tasks = list(small_study.tasks.order_by("key"))
    vote(small_study, {tasks[0]: ["reject", "reject", "A", "A", "B"], tasks[1]: ["A", "A", "A", "B", "B"]})
    assert ab_task_outcomes(small_study, "plurality").loc[tasks[0].pk, "outcome"] == "reject"
    (flaws,) = ab_comparison(small_study, "plurality").criteria
    assert (flaws.a_wins.count, flaws.tie.count, flaws.b_wins.count, flaws.rejects) == (1, 0, 0, 1)


def test_the_absolute_rule_turns_a_weak_plurality_into_a_tie(small_study):
    """2 A, 1 B, 1 tie, 1 reject: an A win under plurality, a tie under absolute."""
    first, *_ = small_study.tasks.order_by("key")
    vote(small_study, {first: ["A", "A", "B", "tie", "reject"]})
    assert ab_comparison(small_study, "plurality").criteria[0].a_wins.count == 1
    assert ab_comparison(small_study, "absolute").criteria[0].tie.count == 1
