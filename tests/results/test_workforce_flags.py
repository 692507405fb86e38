"""The workforce page's flags (evalhub.results.workforce_flags): too fast for the study's
floor, one answer pattern nearly always, gold accuracy under the rule's threshold — each
with the figures behind it in words, and none for an annotator who works normally."""

import math

import pandas as pd

from annotate.workforce import GoldScore
from evalhub.results.workforce_flags import (
    CONSTANT,
    CONSTANT_MIN_ANSWERS,
    FAST,
    FAST_MIN_TIMED,
    LOW_GOLD,
    Flag,
    annotator_flags,
    constant_flag,
    fast_flag,
    gold_scores,
    low_gold_flag,
)

RULE = {
    "quality_action": "flag",
    "quality_min_gold": 5,
    "quality_gold_accuracy": 70,
    "quality_floor_seconds": 2,
}


def seconds(*values) -> pd.Series:
    return pd.Series([math.nan if value is None else value for value in values], dtype=float)


def ab(*choices) -> pd.Series:
    return pd.Series([{"choice": choice} for choice in choices], dtype="object")


def frame(
    worker: int, answers: list[dict], times: list[float | None], gold: list[dict | None]
) -> pd.DataFrame:
    """One worker's judgments in the frame the flags read; ``gold``: the known answer or None."""
    return pd.DataFrame(
        {
            "worker": worker,
            "answer": answers,
            "seconds": seconds(*times),
            "is_gold": [known is not None for known in gold],
            "gold_answer": gold,
        }
    )


def test_a_median_under_the_floor_is_fast():
    """Five timed answers with a median of 0.8 s under a 2 s floor; untimed ones are left out."""
    flag = fast_flag(seconds(0.5, 0.8, 0.9, 0.7, 30, None, None), floor=2)
    assert flag == Flag(FAST, "median 0.8 s on screen per task, under the 2 s floor")


def test_fast_needs_enough_timed_answers_and_a_floor():
    """Four timed answers say nothing; a floor of 0 flags nobody; a median at the floor is not under it."""
    assert fast_flag(seconds(*[0.5] * (FAST_MIN_TIMED - 1), None, None), floor=2) is None
    assert fast_flag(seconds(*[0.5] * 10), floor=0) is None
    assert fast_flag(seconds(*[2.0] * 10), floor=2) is None


def test_fast_cuts_the_median_rather_than_rounding_it_up_to_the_floor():
    """1.96 s under a 2 s floor reads 1.9, never "2 s, under the 2 s floor"."""
    assert fast_flag(seconds(*[1.96] * 5), floor=2).text.startswith("median 1.9 s")


def test_the_same_side_nearly_always_is_constant():
    """39 lefts of 40 A/B answers: left in 98 %, whatever the criterion."""
    flag = constant_flag("ab", ab(*["left"] * 39, "right"))
    assert flag == Flag(CONSTANT, "left in 98 % of 40 answers")


def test_exactly_ninety_percent_is_constant_and_less_is_not():
    """9 of 10 (and 63 of 70, where 0.9 × 70 is not exact in floating point) flag; 8 of 10 does not."""
    assert constant_flag("ab", ab(*["right"] * 9, "left")).text == "right in 90 % of 10 answers"
    assert constant_flag("ab", ab(*["right"] * 63, *["left"] * 7)) is not None
    assert constant_flag("ab", ab(*["right"] * 8, "left", "left")) is None


def test_ties_and_rejects_count_as_answers_but_follow_no_side():
    """Nine lefts and a tie flag; nine ties and a left do not (a tie is no side)."""
    assert constant_flag("ab", ab(*["left"] * 9, "tie")) is not None
    assert constant_flag("ab", ab(*["tie"] * 9, "left")) is None
    assert constant_flag("ab", ab(*["reject"] * 10)) is None


def test_constant_needs_enough_answers():
    """Nine answers alike are too few to call a habit."""
    assert constant_flag("ab", ab(*["left"] * (CONSTANT_MIN_ANSWERS - 1))) is None


def test_the_same_position_as_best_nearly_always_is_constant():
    """Best/worst: the positive at position 0 in 19 of 20 answers, whatever the negative."""
    answers = pd.Series(
        [{"positive": 0, "negative": 1 + i % 4} for i in range(19)] + [{"positive": 3, "negative": 0}]
    )
    assert constant_flag("best_worst", answers) == Flag(CONSTANT, "best at position 0 in 95 % of 20 answers")
    varied = pd.Series([{"positive": i % 5, "negative": (i + 1) % 5} for i in range(20)])
    assert constant_flag("best_worst", varied) is None


def test_yes_to_every_question_nearly_always_is_constant():
    """Alignment: all-yes answers in 10 of 10 tasks flag; answers that mix yes and no do not."""
    all_yes = pd.Series([{"answers": {"1": True, "2": True}}] * 10)
    assert constant_flag("alignment", all_yes) == Flag(
        CONSTANT, "yes to every question in 100 % of 10 answers"
    )
    mixed = pd.Series([{"answers": {"1": True, "2": False}}] * 10)
    assert constant_flag("alignment", mixed) is None


def test_gold_accuracy_under_the_threshold_is_low_gold():
    """2 right of 6 under a 70 % threshold with 5 gold answers needed."""
    flag = low_gold_flag(GoldScore(answered=6, correct=2), min_gold=5, threshold=70)
    assert flag == Flag(LOW_GOLD, "gold 2/6 (33 %), under 70 %")


def test_low_gold_waits_for_enough_gold_answers_and_accepts_the_threshold():
    """0 of 4 is too few to judge; 7 of 10 is exactly 70 %, which the rule accepts."""
    assert low_gold_flag(GoldScore(answered=4, correct=0), min_gold=5, threshold=70) is None
    assert low_gold_flag(GoldScore(answered=10, correct=7), min_gold=5, threshold=70) is None
    assert low_gold_flag(GoldScore(answered=0, correct=0), min_gold=1, threshold=70) is None


def test_gold_scores_compare_each_answer_with_the_known_one():
    """Per worker: answers on gold tasks, and how many equal the gold answer."""
    judgments = pd.concat(
        [
            frame(1, [{"choice": "left"}] * 3, [5] * 3, [{"choice": "left"}, {"choice": "right"}, None]),
            frame(2, [{"choice": "right"}], [5], [None]),
        ],
        ignore_index=True,
    )
    assert gold_scores(judgments) == {1: GoldScore(answered=2, correct=1)}


def test_a_normal_annotator_has_no_flag_and_a_careless_one_has_all_three():
    """Varied answers at 6 s with gold right: nothing; always left in 1 s with gold wrong: all three."""
    sides = ["left", "right", "tie"] * 4
    gold = [{"choice": "right"}] * 6 + [None] * 6
    careful = frame(1, [{"choice": "right"}] * 6 + [{"choice": side} for side in sides[:6]], [6] * 12, gold)
    careless = frame(2, [{"choice": "left"}] * 12, [1] * 12, gold)
    flags = annotator_flags(pd.concat([careful, careless], ignore_index=True), kind="ab", rule=RULE)
    assert flags[1] == []
    assert [flag.name for flag in flags[2]] == [FAST, CONSTANT, LOW_GOLD]
    assert flags[2][2].text == "gold 0/6 (0 %), under 70 %"
