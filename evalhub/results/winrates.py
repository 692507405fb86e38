"""Win-rate tables for A/B studies, like the paper's Tables 1–6.

For each criterion: A wins / tie / B wins as shares of the decided items (rejects counted
apart and left out of the shares), a 95% Wilson interval for each share, and a two-sided
sign test of A against B on the non-tied items.

A table counts only the items with their N judgments (SPEC "Blinding": "decided" means an
item with its N judgments and a majority under the study's rule). Asked for with
``include_incomplete``, it counts every judged item instead and says, in every rendering,
that it is provisional. Each criterion reports its items and how many are incomplete.
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from annotate.models import Study
from evalhub.results.ab_outcomes import NO_COMPLETE, NO_DECIDED, ab_task_outcomes
from evalhub.results.alignment import AlignmentRate, alignment_rates, alignment_study_for
from evalhub.results.errors import ResultsError
from evalhub.results.judged import study_task_counts
from evalhub.results.majority import RULES, majority_rule
from evalhub.results.reliability import ab_dawid_skene_outcomes
from evalhub.results.statistics import sign_test, wilson_interval

CRITERION_ORDER = ("flaws", "appeal")
DAWID_SKENE = "dawid-skene"
AB_RULES = (*RULES, DAWID_SKENE)


@dataclass(frozen=True)
class Share:
    count: int
    share: float | None  # of decided items; None without any
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class CriterionResult:
    criterion: str
    a_wins: Share
    tie: Share
    b_wins: Share
    decided: int  # A + tie + B among the counted items
    rejects: int  # counted items whose outcome is reject, out of the shares
    items: int  # the study's tasks for this criterion
    incomplete: int  # of those, tasks with fewer than N judgments (none included)
    p_value: float | None


@dataclass(frozen=True)
class Comparison:
    study: str
    model_a: str
    model_b: str
    overlap: int
    rule: str  # the majority rule, or "dawid-skene"
    criteria: list[CriterionResult]
    alignment_a: AlignmentRate | None = None  # from an alignment study over both models, if any
    alignment_b: AlignmentRate | None = None
    provisional: bool = False  # incomplete items counted: a running table, not a result

    def as_dict(self) -> dict:
        return asdict(self)


def ab_decided_outcomes(study: Study, rule: str, *, include_incomplete: bool = False) -> pd.DataFrame:
    """Per counted task: criterion, prompt, votes, ``votes_total`` and the ``outcome`` under
    ``rule`` — a majority rule (``ab_outcomes.ab_outcome``) or ``dawid-skene``, whose
    estimated label, reject included, is the outcome."""
    if rule not in AB_RULES:
        raise ValueError(f"rule must be one of {', '.join(AB_RULES)}, got {rule!r}")
    majority = "plurality" if rule == DAWID_SKENE else rule
    outcomes = ab_task_outcomes(study, majority, include_incomplete=include_incomplete)
    if rule == DAWID_SKENE and not outcomes.empty:
        estimates = ab_dawid_skene_outcomes(study, include_incomplete=include_incomplete)
        outcomes["outcome"] = estimates.reindex(outcomes.index)
    return outcomes


def ab_comparison(study: Study, rule: str | None = None, *, include_incomplete: bool = False) -> Comparison:
    """The win-rate results of one A/B study; ``ResultsError`` when nothing is decided.

    ``rule`` is a majority rule (default: the setting) or ``"dawid-skene"``, which decides
    each task by the reliability-weighted estimate instead of the plain majority.
    ``include_incomplete`` counts tasks with fewer than N judgments: a provisional table.
    """
    rule = rule or majority_rule()
    outcomes = ab_decided_outcomes(study, rule, include_incomplete=include_incomplete)
    names = dict(study.study_models.values_list("role", "model_version__name"))
    criteria = [c for c in CRITERION_ORDER if c in study.config.get("criteria", CRITERION_ORDER)]
    tasks = study_task_counts(study)
    results = [_criterion(outcomes[outcomes["criterion"] == c], c, tasks.get(c)) for c in criteria]
    if not any(r.decided for r in results):
        raise ResultsError(_nothing_decided(study, tasks, include_incomplete))
    alignment = alignment_study_for(study)
    alignment_rule = majority_rule() if rule == DAWID_SKENE else rule
    rates = (
        alignment_rates(alignment, alignment_rule, include_incomplete=include_incomplete) if alignment else {}
    )
    ids = dict(study.study_models.values_list("role", "model_version_id"))
    return Comparison(
        study=study.name,
        model_a=names["A"],
        model_b=names["B"],
        overlap=study.overlap,
        rule=rule,
        criteria=results,
        alignment_a=rates.get(ids["A"]),
        alignment_b=rates.get(ids["B"]),
        provisional=include_incomplete,
    )


def _nothing_decided(study: Study, tasks: dict[str, dict[str, int]], include_incomplete: bool) -> str:
    """NO_COMPLETE with the counts while incomplete items could fill a provisional table."""
    keys = ("items", "complete", "incomplete", "started")
    total = {key: sum(counts[key] for counts in tasks.values()) for key in keys}
    if include_incomplete or not total["started"]:
        return NO_DECIDED.format(name=study.name)
    return NO_COMPLETE.format(name=study.name, overlap=study.overlap, **total)


def _criterion(rows, criterion: str, tasks: dict[str, int] | None) -> CriterionResult:
    counts = rows["outcome"].value_counts()
    a, tie, b = (int(counts.get(key, 0)) for key in ("A", "tie", "B"))
    decided = a + tie + b
    low, high = wilson_interval([a, tie, b], [decided] * 3)
    shares = [
        Share(
            count=k,
            share=k / decided if decided else None,
            ci_low=None if np.isnan(lo) else float(lo),
            ci_high=None if np.isnan(hi) else float(hi),
        )
        for k, lo, hi in zip((a, tie, b), low, high, strict=True)
    ]
    p = sign_test(a, b)
    return CriterionResult(
        criterion=criterion,
        a_wins=shares[0],
        tie=shares[1],
        b_wins=shares[2],
        decided=decided,
        rejects=int(counts.get("reject", 0)),
        items=tasks["items"] if tasks else 0,
        incomplete=tasks["incomplete"] if tasks else 0,
        p_value=None if np.isnan(p) else p,
    )
