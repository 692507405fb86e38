"""Best/worst-of-five aggregation into winner/loser pairs for training (paper §4.1).

Per task (a prompt's five images), over its judgments:
- the winner is the image chosen most often as positive; a tie at the top is broken by
  fewer votes as negative; if still tied, the prompt is left out;
- the loser is the image chosen most often as negative; a tie is broken by fewer votes
  as positive; if still tied, the prompt is left out;
- a prompt whose winner and loser are the same image is left out.
Only tasks with their N judgments count (SPEC "decided"), unless ``include_incomplete``
asks for the running, provisional picture.
Counting is vectorized in pandas over one row per (task, position).
"""

from dataclasses import dataclass

import pandas as pd
from django.db.models import F
from django.db.models.fields.json import KeyTextTransform

from annotate.models import Study, TaskImage
from evalhub.results.errors import ResultsError
from evalhub.results.judged import study_judgments, study_task_counts

NOT_BEST_WORST = "study {name!r} is not a best/worst-of-five study"


def best_worst_votes(study: Study, *, include_incomplete: bool = False) -> pd.DataFrame:
    """One row per (task, position) that received a vote: positive and negative counts."""
    if study.kind != Study.Kind.BEST_WORST:
        raise ResultsError(NOT_BEST_WORST.format(name=study.name))
    rows = (
        study_judgments(study, include_incomplete=include_incomplete)
        .annotate(pos=KeyTextTransform("positive", "answer"), neg=KeyTextTransform("negative", "answer"))
        .values_list("task_id", "pos", "neg")
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["task_id", "positive", "negative"])
    if frame.empty:
        return pd.DataFrame(columns=["task_id", "position", "positive", "negative"])
    positive = frame.groupby(["task_id", frame["positive"].astype(int)]).size().rename("positive")
    negative = frame.groupby(["task_id", frame["negative"].astype(int)]).size().rename("negative")
    positive.index.names = negative.index.names = ["task_id", "position"]
    return pd.concat([positive, negative], axis=1).fillna(0).astype(int).reset_index()


def _pick(votes: pd.DataFrame, primary: str, tiebreak: str) -> pd.Series:
    """Per task, the position with the most ``primary`` votes, then the fewest ``tiebreak``;
    NA where two positions are level on both."""
    ranked = votes.sort_values(["task_id", primary, tiebreak], ascending=[True, False, True])
    first = ranked.groupby("task_id").nth(0).set_index("task_id")
    second = ranked.groupby("task_id").nth(1).set_index("task_id").reindex(first.index)
    level = (first[primary] == second[primary]) & (first[tiebreak] == second[tiebreak])
    return first["position"].where(~level & (first[primary] > 0))


def decided_pairs(votes: pd.DataFrame) -> pd.DataFrame:
    """The pairs that votes (counted as by :func:`best_worst_votes`) decide: task id, winner, loser."""
    if votes.empty:
        return pd.DataFrame(columns=["task_id", "winner", "loser"])
    winner = _pick(votes, "positive", "negative")
    loser = _pick(votes, "negative", "positive")
    pairs = pd.DataFrame({"winner": winner, "loser": loser}).dropna()
    pairs = pairs[pairs["winner"] != pairs["loser"]].astype(int)
    return pairs.reset_index()


def best_worst_pairs(study: Study, *, include_incomplete: bool = False) -> pd.DataFrame:
    """Decided pairs of the study's complete tasks (or of every judged task): task id,
    winner and loser positions."""
    return decided_pairs(best_worst_votes(study, include_incomplete=include_incomplete))


@dataclass(frozen=True)
class PairCounts:
    pairs: int  # decided winner/loser pairs
    complete_tasks: int  # tasks with their N judgments
    incomplete_tasks: int  # tasks with fewer (counted only in a provisional picture)
    undecided_tasks: int  # counted tasks with no single winner and loser: left out


def pair_counts(study: Study, votes: pd.DataFrame, pairs: pd.DataFrame) -> PairCounts:
    """What the votes (:func:`best_worst_votes`) and the pairs they decide (:func:`decided_pairs`) count."""
    complete, incomplete = task_completion(study)
    undecided = votes["task_id"].nunique() - len(pairs)
    return PairCounts(len(pairs), complete, incomplete, undecided)


def task_completion(study: Study) -> tuple[int, int]:
    """How many of the study's tasks have their N judgments, and how many do not yet."""
    counts = study_task_counts(study).get("", {"complete": 0, "incomplete": 0})
    return counts["complete"], counts["incomplete"]


def task_images(study: Study) -> dict[int, list]:
    """Each task's images in display order."""
    images: dict[int, list] = {}
    for ti in (
        TaskImage.objects.filter(task__study=study)
        .select_related("image")
        .annotate(prompt_text=F("task__prompt__text"))
        .order_by("task_id", "position")
    ):
        images.setdefault(ti.task_id, []).append(ti)
    return images
