"""The Bradley–Terry leaderboard on hand-made comparisons."""

import io
import math

import pytest
from django.core.management import CommandError, call_command

from evalhub.results.ab_outcomes import ResultsError
from evalhub.results.bradley_terry import leaderboard
from tests.results.conftest import ab_study, vote

A_WIN, B_WIN, TIE = ["A"] * 3 + ["B", "tie"], ["B"] * 3 + ["A", "tie"], ["tie"] * 3 + ["A", "B"]


@pytest.fixture
def studies(db):
    """ours beats base 9–3; sft ties base 4–4 with 2 ties; a reject never counts."""
    first = ab_study(12, name="ours vs base", models=("ours", "base"))
    tasks = list(first.tasks.order_by("key"))
    vote(first, {t: A_WIN for t in tasks[:9]} | {t: B_WIN for t in tasks[9:]})
    second = ab_study(10, name="sft vs base", models=("sft", "base"))
    tasks = list(second.tasks.order_by("key"))
    vote(
        second,
        {t: A_WIN for t in tasks[:4]}
        | {t: B_WIN for t in tasks[4:8]}
        | {tasks[8]: TIE}
        | {tasks[9]: ["reject"] * 5},
    )
    return first, second


def test_scores_are_the_maximum_likelihood_log_odds(studies):
    """9 wins to 3 gives log 3 over the baseline; a balanced record with a tie gives 0."""
    rows = {row.model: row for row in leaderboard(criterion="flaws", baseline="base", bootstrap=0)}
    assert rows["base"].score == 0
    assert rows["ours"].score == pytest.approx(math.log(3), abs=1e-3)
    assert rows["sft"].score == pytest.approx(0, abs=1e-3)
    assert (rows["ours"].comparisons, rows["sft"].comparisons, rows["base"].comparisons) == (12, 9, 21)
    assert rows["ours"].ci_low is None


def test_bootstrap_intervals_resample_prompts_reproducibly(studies):
    """Intervals bracket the estimate and a fixed seed gives the same ones."""
    first = leaderboard(criterion="flaws", baseline="base", bootstrap=50, seed=3)
    again = leaderboard(criterion="flaws", baseline="base", bootstrap=50, seed=3)
    assert first == again
    ours = next(r for r in first if r.model == "ours")
    assert ours.ci_low < ours.score < ours.ci_high
    assert [r.model for r in first][0] == "ours"


def test_missing_data_and_unknown_baselines_are_clear_errors(studies):
    """No appeal judgments, or a baseline that was never compared, give a message."""
    with pytest.raises(ResultsError, match="no decided A/B comparison for criterion 'appeal'"):
        leaderboard(criterion="appeal", baseline="base")
    with pytest.raises(ResultsError, match="baseline 'nope' appears in no A/B study"):
        leaderboard(criterion="flaws", baseline="nope")


def test_the_command_prints_the_ranking(studies):
    """`leaderboard` prints one ranked line per model."""
    out = io.StringIO()
    call_command("leaderboard", "--baseline", "base", "--bootstrap", "20", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[1].split()[:3] == ["1.", "ours", "+1.099"]
    with pytest.raises(CommandError, match="baseline 'nope'"):
        call_command("leaderboard", "--baseline", "nope")
