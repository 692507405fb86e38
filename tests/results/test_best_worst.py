"""Best/worst-of-five aggregation rules and the preference-pair export."""

import json
import uuid

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotate.models import Judgment
from annotate.services import study_create
from evalhub.results.ab_outcomes import ResultsError
from evalhub.results.best_worst import best_worst_pairs
from evalhub.results.preference_export import preference_pairs_export
from tests.annotate.conftest import catalog_images
from tests.factories import PromptFactory, PromptSetFactory, UserFactory


@pytest.fixture
def bw_study(db, tmp_path):
    """Four prompts with five real image files each, one best/worst task per prompt."""
    prompt_set = PromptSetFactory(name="bw set")
    for position in range(4):
        PromptFactory(prompt_set=prompt_set, text=f"a cat, take {position}", position=position)
    (tmp_path / "src").mkdir()
    catalog_images(tmp_path / "src", prompt_set, ["bw-model"], images_per_prompt=5)
    from evalhub.catalog.models import ModelVersion

    return study_create(
        name="bw",
        kind="best_worst",
        prompt_set=prompt_set,
        model_versions=[ModelVersion.objects.get(name="bw-model")],
        overlap=7,
    )


def judge(task, votes: list[tuple[int, int]]) -> None:
    now = timezone.now()
    Judgment.objects.bulk_create(
        Judgment(
            task=task,
            annotator=UserFactory(role="annotators"),
            client_id=uuid.uuid4(),
            answer={"positive": p, "negative": n},
            shown_at=now,
            answered_at=now,
        )
        for p, n in votes
    )


def pairs_by_key(study) -> dict[str, tuple[int, int]]:
    keys = dict(study.tasks.values_list("pk", "key"))
    return {keys[r.task_id]: (r.winner, r.loser) for r in best_worst_pairs(study).itertuples()}


def test_the_aggregation_rules(bw_study):
    """Most positives wins, ties go to fewer negatives; level ties and winner = loser are left out."""
    t0, t1, t2, t3 = bw_study.tasks.order_by("key")
    judge(t0, [(0, 4), (0, 4), (0, 3), (1, 4), (2, 3)])  # clear: 0 beats 4
    judge(t1, [(0, 4), (0, 4), (1, 3), (1, 0)])  # 0 and 1 level on positives; 0 has a negative → 1 wins
    judge(t2, [(0, 4), (1, 3)])  # level on both counts → left out
    judge(
        t3, [(2, 0), (2, 1), (2, 3), (0, 2), (1, 2), (3, 2), (4, 2)]
    )  # 2 is both winner and loser → left out
    assert pairs_by_key(bw_study) == {"p0000": (0, 4), "p0001": (1, 4)}


def test_no_pairs_is_a_clear_error(bw_study, tmp_path):
    """Exporting a study without decided pairs says so."""
    with pytest.raises(ResultsError, match="has no decided winner/loser pair yet"):
        preference_pairs_export(study=bw_study, folder=tmp_path / "out")


def test_the_export_writes_jsonl_images_parquet_and_a_content_hash(bw_study, tmp_path):
    """JSONL names the winner and loser files; Parquet labels match the winner's bytes."""
    t0, t1, *_ = bw_study.tasks.order_by("key")
    judge(t0, [(0, 4), (0, 4), (0, 3)])
    judge(t1, [(3, 1), (3, 1), (2, 1)])
    export = preference_pairs_export(study=bw_study, folder=tmp_path / "out")
    out = tmp_path / "out"
    records = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert [(r["prompt"], len(r["images"])) for r in records] == [("a cat, take 0", 5), ("a cat, take 1", 5)]
    assert records[0]["winner"] == records[0]["images"][0] and records[0]["loser"] == records[0]["images"][4]
    assert records[0]["votes"] == {"positive": [3, 0, 0, 0, 0], "negative": [0, 0, 0, 1, 2]}
    for record in records:
        for path in record["images"]:
            assert (out / path).is_file()
    table = pq.read_table(out / "pairs.parquet").to_pylist()
    assert set(table[0]) == {"caption", "jpg_0", "jpg_1", "label_0", "label_1", "are_different", "has_label"}
    for record, row in zip(records, table, strict=True):
        winner_bytes = (out / record["winner"]).read_bytes()
        assert row["caption"] == record["prompt"]
        assert (row["jpg_0"] == winner_bytes) == (row["label_0"] == 1.0)
        assert row["label_0"] + row["label_1"] == 1.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["content_hash"] == export.content_hash and manifest["pairs"] == 2

    again = preference_pairs_export(study=bw_study, folder=tmp_path / "again")
    assert again.content_hash == export.content_hash
    judge(t0, [(1, 4)])
    assert (
        preference_pairs_export(study=bw_study, folder=tmp_path / "third").content_hash != export.content_hash
    )


def test_the_command(bw_study, tmp_path):
    """`export_preferences` writes the folder and prints the hash."""
    with pytest.raises(CommandError, match="no decided winner/loser pair"):
        call_command("export_preferences", "bw", "--out", str(tmp_path / "x"))
    judge(bw_study.tasks.order_by("key").first(), [(0, 1), (0, 1)])
    call_command("export_preferences", "bw", "--out", str(tmp_path / "x"))
    assert (tmp_path / "x" / "pairs.parquet").is_file()
