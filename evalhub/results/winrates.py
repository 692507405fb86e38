"""Win-rate tables for A/B studies, like the paper's Tables 1–6.

For each criterion: A wins / tie / B wins as shares of the decided items (rejects counted
apart and left out of the shares), a 95% Wilson interval for each share, and a two-sided
sign test of A against B on the non-tied items.
"""

from dataclasses import asdict, dataclass

import numpy as np

from annotate.models import Study
from evalhub.results.ab_outcomes import NO_DECIDED, ResultsError, ab_task_outcomes
from evalhub.results.alignment import AlignmentRate, alignment_rates, alignment_study_for
from evalhub.results.majority import majority_rule
from evalhub.results.reliability import ab_dawid_skene_outcomes
from evalhub.results.statistics import sign_test, wilson_interval

CRITERION_ORDER = ("flaws", "appeal")
DAWID_SKENE = "dawid-skene"


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
    decided: int
    rejects: int
    incomplete: int  # decided items with fewer than N judgments
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

    def as_dict(self) -> dict:
        return asdict(self)


def ab_comparison(study: Study, rule: str | None = None) -> Comparison:
    """The win-rate results of one A/B study; ``ResultsError`` when nothing is decided.

    ``rule`` is a majority rule (default: the setting) or ``"dawid-skene"``, which decides
    each task by the reliability-weighted estimate instead of the plain majority.
    """
    rule = rule or majority_rule()
    outcomes = ab_task_outcomes(study, "plurality" if rule == DAWID_SKENE else rule)
    if rule == DAWID_SKENE and not outcomes.empty:
        outcomes["outcome"] = ab_dawid_skene_outcomes(study).reindex(outcomes.index)
    names = dict(study.study_models.values_list("role", "model_version__name"))
    criteria = [c for c in CRITERION_ORDER if c in study.config.get("criteria", CRITERION_ORDER)]
    results = [_criterion(outcomes[outcomes["criterion"] == c], c, study.overlap) for c in criteria]
    if not any(r.decided for r in results):
        raise ResultsError(NO_DECIDED.format(name=study.name))
    alignment = alignment_study_for(study)
    rates = alignment_rates(alignment, majority_rule() if rule == DAWID_SKENE else rule) if alignment else {}
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
    )


def _criterion(rows, criterion: str, overlap: int) -> CriterionResult:
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
    judged = rows[rows["outcome"] != "reject"]
    return CriterionResult(
        criterion=criterion,
        a_wins=shares[0],
        tie=shares[1],
        b_wins=shares[2],
        decided=decided,
        rejects=int(counts.get("reject", 0)),
        incomplete=int((judged["votes_total"] < overlap).sum()),
        p_value=None if np.isnan(p) else p,
    )
