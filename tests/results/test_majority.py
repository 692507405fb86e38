"""The majority rule on hand-made vote counts."""

import pandas as pd
import pytest

from evalhub.results.majority import majority


def counts(*rows):
    return pd.DataFrame(rows, columns=["A", "tie", "B", "reject"])


def test_a_strict_plurality_decides():
    """3–1–1 and 2–1–1–1 have a winner."""
    assert majority(counts([3, 1, 1, 0], [1, 1, 2, 1])).tolist() == ["A", "B"]


def test_a_level_top_decides_nothing():
    """A 2–2–1 split, whichever two options are level, is not decided."""
    result = majority(counts([2, 0, 2, 1], [2, 2, 1, 0], [0, 2, 1, 2]))
    assert result.isna().all()


def test_the_absolute_rule_needs_more_than_half():
    """2–1–1–1 is a plurality but not an absolute majority."""
    rows = counts([2, 1, 1, 1], [3, 1, 1, 0])
    assert majority(rows, "plurality").tolist() == ["A", "A"]
    result = majority(rows, "absolute")
    assert pd.isna(result[0]) and result[1] == "A"


def test_an_item_without_votes_is_not_decided():
    """Zero votes everywhere is no decision, not a win for the first column."""
    assert majority(counts([0, 0, 0, 0])).isna().all()


def test_an_unknown_rule_is_refused():
    """The rule is one of the documented two."""
    with pytest.raises(ValueError, match="rule must be one of plurality, absolute"):
        majority(counts([1, 0, 0, 0]), "loudest")
