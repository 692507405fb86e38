"""Flags on an annotator's work in a study, for a researcher to look at on the workforce
page (``evalhub.results.workforce_page``): computed when asked, never stored, and they
exclude nobody by themselves (only the study's quality rule does, annotate.workforce).

- ``fast``: the median time on screen per task is under the study's floor
  (``quality_floor_seconds``; 0: never), over at least ``FAST_MIN_TIMED`` timed judgments;
- ``constant``: one answer pattern in at least ``CONSTANT_SHARE`` of at least
  ``CONSTANT_MIN_ANSWERS`` answers — the same side (A/B), the same position as best
  (best/worst), yes or no to every question (text alignment);
- ``low_gold``: accuracy on gold items under ``quality_gold_accuracy`` % over at least
  ``quality_min_gold`` gold answers, whatever the rule's action.

Every function here is pure: one annotator's answers in, a ``Flag`` or None out, or the
whole frame in and every annotator's flags out. The frame has one row per judgment of the
study (excluded ones too: a flag describes the annotator's work, counted or not), columns
``worker``, ``answer``, ``seconds`` (NaN without the page's figure), ``is_gold`` and
``gold_answer``.
"""

import math
from dataclasses import dataclass

import pandas as pd

from annotate.models import Study
from annotate.workforce import GoldScore

FAST_MIN_TIMED = 5  # timed judgments before a median says anything about a person
CONSTANT_SHARE = 0.9  # the share of answers one pattern must reach
CONSTANT_MIN_ANSWERS = 10  # a few answers alike is chance, not a habit

FAST, CONSTANT, LOW_GOLD = "fast", "constant", "low_gold"
FLAGS = (FAST, CONSTANT, LOW_GOLD)

FAST_TEXT = "median {median} s on screen per task, under the {floor} s floor"
CONSTANT_TEXT = "{pattern} in {percent} % of {answers} answers"
LOW_GOLD_TEXT = "gold {correct}/{answered} ({percent} %), under {threshold} %"
AB_PATTERNS = {"left": "left", "right": "right"}
BEST_PATTERN = "best at position {position}"
ALIGNMENT_PATTERNS = {True: "yes to every question", False: "no to every question"}


@dataclass(frozen=True)
class Flag:
    name: str  # one of FLAGS
    text: str  # what a researcher reads


def fast_flag(seconds: pd.Series, floor: int) -> Flag | None:
    """``fast`` when the median of the timed judgments (NaN: untimed, left out) is under
    ``floor`` seconds, over at least FAST_MIN_TIMED of them; never with a floor of 0."""
    timed = seconds.dropna()
    if floor <= 0 or len(timed) < FAST_MIN_TIMED:
        return None
    median = float(timed.median())
    if median >= floor:
        return None
    # Cut, not rounded, to a tenth: 1.96 s under a 2 s floor reads 1.9, never "2 under 2".
    shown = math.floor(median * 10) / 10
    return Flag(FAST, FAST_TEXT.format(median=f"{shown:g}", floor=floor))


def answer_pattern(kind: str, answer: dict) -> str | None:
    """The pattern an answer follows, or None when it follows none: the side of an A/B
    answer (a tie or a reject has none), the position chosen as best of a best/worst one,
    yes or no to every question of an alignment one (a mix has none)."""
    if kind == Study.Kind.AB:
        return AB_PATTERNS.get(answer.get("choice"))
    if kind == Study.Kind.BEST_WORST:
        position = answer.get("positive")
        return None if position is None else BEST_PATTERN.format(position=position)
    values = set((answer.get("answers") or {}).values())
    return ALIGNMENT_PATTERNS[values.pop()] if len(values) == 1 else None


def constant_flag(kind: str, answers: pd.Series) -> Flag | None:
    """``constant`` when one pattern (:func:`answer_pattern`) covers at least CONSTANT_SHARE
    of the annotator's answers, over at least CONSTANT_MIN_ANSWERS of them."""
    total = len(answers)
    if total < CONSTANT_MIN_ANSWERS:
        return None
    patterns = pd.Series([answer_pattern(kind, answer) for answer in answers], dtype="object").dropna()
    if patterns.empty:
        return None
    counts = patterns.value_counts()
    pattern, count = counts.index[0], int(counts.iloc[0])
    # count / total is rounded once, like the constant, so exactly 90 % counts.
    if count / total < CONSTANT_SHARE:
        return None
    return Flag(
        CONSTANT, CONSTANT_TEXT.format(pattern=pattern, percent=round(100 * count / total), answers=total)
    )


def low_gold_flag(score: GoldScore, *, min_gold: int, threshold: int) -> Flag | None:
    """``low_gold`` when the accuracy on gold items is under ``threshold`` percent over at
    least ``min_gold`` gold answers: the test the quality rule applies (annotate.workforce)."""
    if score.answered < max(min_gold, 1) or score.correct * 100 >= threshold * score.answered:
        return None
    return Flag(
        LOW_GOLD,
        LOW_GOLD_TEXT.format(
            correct=score.correct,
            answered=score.answered,
            percent=round(100 * score.accuracy),
            threshold=threshold,
        ),
    )


def gold_scores(judgments: pd.DataFrame) -> dict[int, GoldScore]:
    """Per worker with a gold answer: answers on gold tasks, and how many match the known
    answer — annotate.workforce.gold_score for every annotator from one frame."""
    gold = judgments[judgments["is_gold"].astype(bool)]
    correct = pd.Series(
        [answer == known for answer, known in zip(gold["answer"], gold["gold_answer"], strict=True)],
        index=gold.index,
        dtype=bool,
    )
    per_worker = correct.groupby(gold["worker"]).agg(["size", "sum"])
    return {
        int(worker): GoldScore(answered=int(row["size"]), correct=int(row["sum"]))
        for worker, row in per_worker.iterrows()
    }


def annotator_flags(judgments: pd.DataFrame, *, kind: str, rule: dict) -> dict[int, list[Flag]]:
    """Per worker in ``judgments``: their flags, in FLAGS order (none: an empty list).

    Args:
        judgments: one row per judgment (columns in the module's docstring).
        kind: the study's kind.
        rule: the study's quality rule (annotate.workforce.study_quality).
    """
    scores = gold_scores(judgments)
    flags = {}
    for worker, rows in judgments.groupby("worker"):
        found = (
            fast_flag(rows["seconds"], rule["quality_floor_seconds"]),
            constant_flag(kind, rows["answer"]),
            low_gold_flag(
                scores.get(int(worker), GoldScore(0, 0)),
                min_gold=rule["quality_min_gold"],
                threshold=rule["quality_gold_accuracy"],
            ),
        )
        flags[int(worker)] = [flag for flag in found if flag is not None]
    return flags
