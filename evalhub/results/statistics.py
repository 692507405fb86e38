"""Interval estimates and tests for win-rate tables (SPEC "Statistics")."""

import numpy as np
from scipy import stats

Z_95 = 1.959963984540054


def wilson_interval(successes, total, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial share, vectorized; (nan, nan) where total is 0."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(total, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denominator = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    low, high = centre - half, centre + half
    empty = n == 0
    return np.where(empty, np.nan, np.clip(low, 0, 1)), np.where(empty, np.nan, np.clip(high, 0, 1))


def sign_test(a_wins: int, b_wins: int) -> float:
    """Two-sided sign test of A against B on the non-tied items; nan with no such item."""
    n = a_wins + b_wins
    if n == 0:
        return float("nan")
    return float(stats.binomtest(a_wins, n, 0.5, alternative="two-sided").pvalue)
