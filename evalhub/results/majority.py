"""Majority decisions over an item's N judgments (paper §4.1: "the majority decision is used").

Every function here is vectorized over items: one row per item, one column per option,
cells are vote counts. The rule is one setting, ``EVALHUB_MAJORITY_RULE``:

- ``plurality`` (default): the option with strictly more votes than every other wins;
  where the top options are level (a 2–2–1 split) nothing is decided.
- ``absolute``: the winner also needs more than half of the item's votes.

What "nothing decided" means depends on the task kind, and each kind has one function
for it that every table calls: an A/B item is a tie, or a reject when reject is among the
options with the most votes (``evalhub.results.ab_outcomes.ab_outcome``); an alignment
item is undecided and left out of the rate (``evalhub.results.alignment``).
"""

import pandas as pd
from django.conf import settings

RULES = ("plurality", "absolute")


def majority_rule() -> str:
    rule = getattr(settings, "EVALHUB_MAJORITY_RULE", "plurality")
    if rule not in RULES:
        raise ValueError(f"EVALHUB_MAJORITY_RULE must be one of {', '.join(RULES)}, got {rule!r}")
    return rule


def majority(counts: pd.DataFrame, rule: str = "plurality") -> pd.Series:
    """The winning column per row, or NA where the rule decides nothing.

    Args:
        counts: vote counts, rows are items, columns are options (missing votes as 0).
        rule: ``plurality`` or ``absolute``.
    Returns:
        A Series aligned with ``counts.index`` holding a column name or ``pd.NA``.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if counts.empty:
        return pd.Series(pd.NA, index=counts.index, dtype="object")
    values = counts.fillna(0)
    top = values.max(axis=1)
    total = values.sum(axis=1)
    decided = (values.eq(top, axis=0).sum(axis=1) == 1) & (top > 0)
    if rule == "absolute":
        decided &= top * 2 > total
    return values.idxmax(axis=1).astype("object").where(decided, pd.NA)
