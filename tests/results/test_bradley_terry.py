"""The Bradley–Terry leaderboard on hand-made comparisons."""

import io
import math

import pytest
from django.core.management import CommandError, call_command

from evalhub.results.bradley_terry import NO_COMPARISONS, NO_COMPLETE_HINT, leaderboard
from evalhub.results.errors import ResultsError
from evalhub.results.management.commands.leaderboard import COMPLETE_ONLY, PROVISIONAL
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
    assert lines[0].endswith(f"; rule plurality; {COMPLETE_ONLY}")
    assert lines[1].split()[:3] == ["1.", "ours", "+1.099"]
    with pytest.raises(CommandError, match="baseline 'nope'"):
        call_command("leaderboard", "--baseline", "nope")


WEAK_A = ["A", "A", "B", "tie", "reject"]  # A under plurality, a tie under absolute


@pytest.fixture
def weak_study(db):
    """weak beats base on four tasks by a plurality that is not an absolute majority."""
    study = ab_study(4, name="weak vs base", models=("weak", "base"))
    vote(study, {t: WEAK_A for t in study.tasks.all()})
    return study


def scores(**options) -> dict[str, float]:
    return {
        row.model: row.score
        for row in leaderboard(criterion="flaws", baseline="base", bootstrap=0, **options)
    }


def test_the_rule_decides_the_items_of_the_leaderboard(weak_study):
    """Plurality gives weak four wins; absolute makes them four ties and a score of 0."""
    assert scores(rule="plurality")["weak"] > 3
    assert scores(rule="absolute")["weak"] == pytest.approx(0, abs=1e-3)


def test_the_command_takes_the_rule_and_defaults_to_the_setting(weak_study, settings):
    """`--rule` picks the rule and the header names it; without it EVALHUB_MAJORITY_RULE applies."""
    out = io.StringIO()
    call_command("leaderboard", "--baseline", "base", "--bootstrap", "0", "--rule", "absolute", stdout=out)
    header, first, _ = out.getvalue().splitlines()
    assert header.endswith(f"; rule absolute; {COMPLETE_ONLY}") and "+0.000" in out.getvalue()
    settings.EVALHUB_MAJORITY_RULE = "absolute"
    assert scores()["weak"] == pytest.approx(0, abs=1e-3)
    out = io.StringIO()
    call_command("leaderboard", "--baseline", "base", "--bootstrap", "0", stdout=out)
    assert "; rule absolute; " in out.getvalue().splitlines()[0]
    settings.EVALHUB_MAJORITY_RULE = "plurality"
    out = io.StringIO()
    call_command("leaderboard", "--baseline", "base", "--bootstrap", "0", stdout=out)
    header, first, _ = out.getvalue().splitlines()
    assert "; rule plurality; " in header and first.split()[:2] == ["1.", "weak"]
    out = io.StringIO()
    call_command("leaderboard", "--baseline", "base", "--bootstrap", "0", "--rule", "dawid-skene", stdout=out)
    assert "; rule dawid-skene; " in out.getvalue().splitlines()[0]


def test_incomplete_items_enter_the_leaderboard_only_on_request(db):
    """Tasks short of N judgments are left out, with a hint; --include-incomplete counts them."""
    study = ab_study(3, name="early vs base", models=("early", "base"))
    vote(study, {t: ["A", "A"] for t in study.tasks.all()})
    message = NO_COMPARISONS.format(criterion="flaws") + NO_COMPLETE_HINT
    with pytest.raises(ResultsError) as raised:
        leaderboard(criterion="flaws", baseline="base")
    assert str(raised.value) == message
    with pytest.raises(CommandError, match="--include-incomplete"):
        call_command("leaderboard", "--baseline", "base")
    assert scores(include_incomplete=True)["early"] > 3
    out = io.StringIO()
    call_command("leaderboard", "--baseline", "base", "--bootstrap", "0", "--include-incomplete", stdout=out)
    header, first, _ = out.getvalue().splitlines()
    assert header.endswith(PROVISIONAL) and "(3 items)" in first
