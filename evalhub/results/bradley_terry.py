"""A Bradley–Terry leaderboard over every model version that appears in an A/B study.

P(i beats j) = σ(θ_i − θ_j), fitted by maximum likelihood on the decided A/B tasks of one
criterion: a win counts 1 for the winner, a tie ½ each way, rejects are left out. Each
task's outcome is the win-rate table's (``winrates.ab_decided_outcomes``: the same
majority rule, or Dawid–Skene, and only tasks with their N judgments unless the ranking
is provisional). Scores are log-strengths anchored at 0 for the chosen baseline. 95%
intervals come from a bootstrap that resamples prompts (the unit the studies sampled),
not single votes.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import log_expit

from annotate.models import Study
from evalhub.catalog.models import ModelVersion
from evalhub.results.errors import ResultsError
from evalhub.results.majority import majority_rule
from evalhub.results.winrates import ab_decided_outcomes

RIDGE = 1e-4  # keeps a model that never lost finite; small next to any real evidence
NO_COMPARISONS = "no decided A/B comparison for criterion {criterion!r} yet"
NO_COMPLETE_HINT = " among complete items; --include-incomplete for the running, provisional ranking"
UNKNOWN_BASELINE = "baseline {name!r} appears in no A/B study for criterion {criterion!r}"


@dataclass(frozen=True)
class LeaderboardRow:
    model: str
    score: float
    ci_low: float | None
    ci_high: float | None
    comparisons: int


def decided_pairs(
    criterion: str, rule: str = "plurality", *, include_incomplete: bool = False
) -> pd.DataFrame:
    """Every decided task of every A/B study for ``criterion``: prompt, model ids, outcome."""
    frames = []
    for study in Study.objects.filter(kind=Study.Kind.AB):
        roles = dict(study.study_models.values_list("role", "model_version_id"))
        outcomes = ab_decided_outcomes(study, rule, include_incomplete=include_incomplete)
        outcomes = outcomes[(outcomes["criterion"] == criterion) & (outcomes["outcome"] != "reject")]
        frames.append(
            pd.DataFrame(
                {
                    "prompt_id": outcomes["prompt_id"].to_numpy(),
                    "model_a": roles["A"],
                    "model_b": roles["B"],
                    "outcome": outcomes["outcome"].to_numpy(),
                }
            )
        )
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["prompt_id", "model_a", "model_b", "outcome"])
    )


def fit_scores(pairs: pd.DataFrame, models: list[int], baseline: int) -> np.ndarray:
    """Maximum-likelihood log-strengths of ``models`` (baseline fixed at 0)."""
    index = {m: k for k, m in enumerate(models)}
    i = pairs["model_a"].map(index).to_numpy()
    j = pairs["model_b"].map(index).to_numpy()
    win_a = pairs["outcome"].map({"A": 1.0, "tie": 0.5, "B": 0.0}).to_numpy()
    free = np.array([k for k in range(len(models)) if models[k] != baseline])

    def negative_log_likelihood(free_scores):
        theta = np.zeros(len(models))
        theta[free] = free_scores
        diff = theta[i] - theta[j]
        nll = (
            -(win_a * log_expit(diff) + (1 - win_a) * log_expit(-diff)).sum() + RIDGE * (free_scores**2).sum()
        )
        p = np.exp(log_expit(diff))
        grad_theta = np.zeros(len(models))
        np.add.at(grad_theta, i, -(win_a - p))
        np.add.at(grad_theta, j, win_a - p)
        return nll, grad_theta[free] + 2 * RIDGE * free_scores

    result = minimize(negative_log_likelihood, np.zeros(len(free)), jac=True, method="L-BFGS-B")
    theta = np.zeros(len(models))
    theta[free] = result.x
    return theta


def leaderboard(
    *,
    criterion: str,
    baseline: str,
    bootstrap: int = 200,
    seed: int = 0,
    rule: str | None = None,
    include_incomplete: bool = False,
) -> list[LeaderboardRow]:
    """Models ranked by Bradley–Terry score for one criterion, best first.

    ``rule``: a majority rule (default: the setting) or ``dawid-skene``;
    ``include_incomplete`` also counts tasks with fewer than N judgments (provisional).
    """
    pairs = decided_pairs(criterion, rule or majority_rule(), include_incomplete=include_incomplete)
    if pairs.empty:
        hint = "" if include_incomplete else NO_COMPLETE_HINT
        raise ResultsError(NO_COMPARISONS.format(criterion=criterion) + hint)
    models = sorted(set(pairs["model_a"]) | set(pairs["model_b"]))
    base = ModelVersion.objects.filter(name=baseline, pk__in=models).values_list("pk", flat=True).first()
    if base is None:
        raise ResultsError(UNKNOWN_BASELINE.format(name=baseline, criterion=criterion))
    scores = fit_scores(pairs, models, base)
    low = high = [None] * len(models)
    if bootstrap:
        rng = np.random.default_rng(seed)
        prompts = pairs["prompt_id"].unique()
        by_prompt = {p: rows for p, rows in pairs.groupby("prompt_id")}
        draws = np.array(
            [
                fit_scores(
                    pd.concat(
                        [by_prompt[p] for p in rng.choice(prompts, size=len(prompts))], ignore_index=True
                    ),
                    models,
                    base,
                )
                for _ in range(bootstrap)
            ]
        )
        low, high = np.percentile(draws, 2.5, axis=0), np.percentile(draws, 97.5, axis=0)
    names = dict(ModelVersion.objects.filter(pk__in=models).values_list("pk", "name"))
    counts = pd.concat([pairs["model_a"], pairs["model_b"]]).value_counts()
    rows = [
        LeaderboardRow(
            model=names[m],
            score=float(scores[k]),
            ci_low=None if low[k] is None else float(low[k]),
            ci_high=None if high[k] is None else float(high[k]),
            comparisons=int(counts.get(m, 0)),
        )
        for k, m in enumerate(models)
    ]
    return sorted(rows, key=lambda row: -row.score)
