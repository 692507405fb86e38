"""The preference-pair export: its files, its content hash, and which tasks it counts."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from annotate.models import Judgment, Study
from annotate.services import study_create
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import GeneratedImage, ModelVersion, Prompt, PromptSet
from evalhub.results.errors import ResultsError
from evalhub.results.preference_export import NO_PAIRS, content_hash, preference_pairs_export
from tests.factories import PromptFactory, PromptSetFactory, png_bytes
from tests.results.test_best_worst import judge

# Votes per prompt, (positive, negative) per annotator; N = 3, so the owl is one short.
VOTES = {
    "a lighthouse at dusk": [(0, 4), (0, 3), (1, 4)],
    "a red fox in snow": [(4, 0), (3, 0), (4, 2)],
    "two cats on a sofa": [(2, 1), (2, 1), (3, 0)],
    "an owl on a branch": [(1, 2), (1, 2)],
}


def colour(text: str, index: int, recolour: tuple[str, int] | None = None) -> tuple[int, int, int]:
    """The pixels of a prompt's image: fixed by its prompt and index (inverted where recoloured)."""
    r, g, b = hashlib.sha256(f"{text}/{index}".encode()).digest()[:3]
    return (255 - r, 255 - g, 255 - b) if recolour == (text, index) else (r, g, b)


def build(
    source: Path, *, name: str = "bw", reverse: bool = False, recolour: tuple[str, int] | None = None
) -> Study:
    """The VOTES study built as a deployment builds it: prompts, imported images, judgments;
    ``reverse`` creates everything in the opposite order, from differently encoded files."""
    order = sorted(VOTES, reverse=reverse)
    prompt_set = PromptSetFactory(name=f"set of {name}")
    for position, text in enumerate(order):
        PromptFactory(prompt_set=prompt_set, text=text, position=position)
    source.mkdir(parents=True)
    rows = []
    for text in order:
        for index in sorted(range(5), reverse=reverse):
            file = f"upload-{len(rows)}.png"
            note = {"Comment": f"uploaded by {name}"} if reverse else None
            (source / file).write_bytes(
                png_bytes(colour(text, index, recolour), size=(8, 6), text_chunks=note)
            )
            rows.append(
                {"prompt": text, "model": f"{name}-model", "seed": index, "index": index, "image": file}
            )
    generated_images_import(
        prompt_set=prompt_set,
        manifest="\n".join(json.dumps(r) for r in rows),
        source=DirectorySource(source),
        create_models=True,
    )
    study = study_create(
        name=name,
        kind="best_worst",
        prompt_set=prompt_set,
        model_versions=[ModelVersion.objects.get(name=f"{name}-model")],
        overlap=3,
    )
    tasks = {task.prompt.text: task for task in study.tasks.select_related("prompt")}
    for text in order:
        judge(tasks[text], VOTES[text][::-1] if reverse else VOTES[text])
    return study


def wipe(settings, media: Path) -> None:
    """Delete every study and catalog row and every stored file; store media in ``media`` from now on."""
    Study.objects.all().delete()
    GeneratedImage.objects.all().delete()
    PromptSet.objects.all().delete()
    ModelVersion.objects.all().delete()
    shutil.rmtree(settings.MEDIA_ROOT)
    media.mkdir()
    settings.MEDIA_ROOT = media


def folder_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_export_writes_jsonl_images_parquet_and_a_manifest(db, tmp_path):
    """JSONL lists pairs in prompt order and names files by hash; Parquet labels match the winner."""
    study = build(tmp_path / "src")
    export = preference_pairs_export(study=study, folder=tmp_path / "out")
    out = tmp_path / "out"
    records = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in records] == [
        "a lighthouse at dusk",
        "a red fox in snow",
        "two cats on a sofa",
    ]
    first = records[0]
    assert set(first) == {"prompt", "winner", "loser", "images", "votes"}
    assert (first["winner"], first["loser"]) == (first["images"][0], first["images"][4])
    assert first["votes"] == {"positive": [2, 1, 0, 0, 0], "negative": [0, 0, 0, 1, 2]}
    for path in (p for r in records for p in r["images"]):
        assert path == f"images/{hashlib.sha256((out / path).read_bytes()).hexdigest()}.png"
    assert len(list((out / "images").iterdir())) == 15
    table = pq.read_table(out / "pairs.parquet").to_pylist()
    assert set(table[0]) == {"caption", "jpg_0", "jpg_1", "label_0", "label_1", "are_different", "has_label"}
    for record, row in zip(records, table, strict=True):
        winner, loser = (out / record["winner"]).read_bytes(), (out / record["loser"]).read_bytes()
        assert row["caption"] == record["prompt"]
        assert {row["jpg_0"], row["jpg_1"]} == {winner, loser}
        assert (row["jpg_0"] == winner) == (row["label_0"] == 1.0)
        assert row["label_0"] + row["label_1"] == 1.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["content_hash"] == export.content_hash
    counts = ("provisional", "pairs", "complete_tasks", "incomplete_tasks", "undecided_tasks")
    assert [manifest[k] for k in ("study", *counts)] == ["bw", False, 3, 3, 1, 0]


def test_the_same_data_built_again_elsewhere_exports_the_same_bytes(db, tmp_path, settings):
    """New primary keys, public ids, storage, names and creation order: same hash, same files."""
    first = preference_pairs_export(study=build(tmp_path / "src1", name="bw"), folder=tmp_path / "one")
    first_keys = [set(GeneratedImage.objects.values_list(k, flat=True)) for k in ("pk", "public_id", "file")]
    wipe(settings, tmp_path / "media2")
    study = build(tmp_path / "src2", name="best of five, elsewhere", reverse=True)
    for keys, k in zip(first_keys, ("pk", "public_id", "file"), strict=True):
        assert not keys & set(GeneratedImage.objects.values_list(k, flat=True))
    second = preference_pairs_export(study=study, folder=tmp_path / "two")

    assert second.content_hash == first.content_hash
    one, two = folder_files(tmp_path / "one"), folder_files(tmp_path / "two")
    manifests = [json.loads(files.pop("manifest.json")) for files in (one, two)]
    assert one == two and len(one) == 17  # pairs.jsonl, pairs.parquet, 15 images
    for manifest in manifests:
        del manifest["study"], manifest["study_id"]
    assert manifests[0] == manifests[1]


@pytest.mark.parametrize("change", ["vote", "prompt", "pixels"])
def test_a_change_in_one_vote_prompt_or_image_changes_the_hash(db, tmp_path, settings, change):
    """One vote, one prompt's text or one image's pixels changed gives another hash."""
    before = preference_pairs_export(study=build(tmp_path / "src1"), folder=tmp_path / "one").content_hash
    if change == "vote":
        judgment = Judgment.objects.filter(task__prompt__text="a red fox in snow").earliest("pk")
        judgment.answer = {"positive": 4, "negative": 1}
        judgment.save(update_fields=["answer"])
        study = Study.objects.get()
    elif change == "prompt":
        Prompt.objects.filter(text="a red fox in snow").update(text="a red fox in the snow")
        study = Study.objects.get()
    else:
        wipe(settings, tmp_path / "media2")
        study = build(tmp_path / "src2", recolour=("a red fox in snow", 3))  # not the winner or loser
    after = preference_pairs_export(study=study, folder=tmp_path / "two").content_hash
    assert after != before


def test_the_hash_reads_content_in_any_order(db):
    """content_hash sorts pairs by prompt, so the order they come in does not matter."""
    pairs = [
        {"prompt": p, "images": [f"{i}" * 64] * 5, "winner": 0, "loser": 1, "votes": {}}
        for i, p in enumerate(["b", "a", "c"])
    ]
    assert content_hash(pairs) == content_hash(pairs[::-1])
    assert content_hash(pairs) != content_hash(pairs[:2])


def test_incomplete_tasks_count_only_when_asked(db, tmp_path):
    """By default the owl (one judgment short) is left out; --include-incomplete counts it, provisionally."""
    study = build(tmp_path / "src")
    complete = preference_pairs_export(study=study, folder=tmp_path / "complete")
    provisional = preference_pairs_export(
        study=study, folder=tmp_path / "provisional", include_incomplete=True
    )
    assert (complete.pairs, complete.provisional) == (3, False)
    assert (provisional.pairs, provisional.provisional) == (4, True)
    assert provisional.content_hash != complete.content_hash
    prompts = [json.loads(line)["prompt"] for line in (tmp_path / "provisional/pairs.jsonl").open()]
    assert "an owl on a branch" in prompts
    manifest = json.loads((tmp_path / "provisional/manifest.json").read_text())
    assert (manifest["provisional"], manifest["complete_tasks"], manifest["incomplete_tasks"]) == (True, 3, 1)


def test_tasks_without_a_single_winner_and_loser_are_counted_apart(db, tmp_path):
    """A complete task whose votes are level is left out and counted as undecided."""
    study = build(tmp_path / "src")
    cats = Judgment.objects.filter(task__prompt__text="two cats on a sofa").order_by("pk")
    for judgment, (positive, negative) in zip(cats, [(0, 1), (1, 2), (2, 0)], strict=True):
        judgment.answer = {"positive": positive, "negative": negative}
        judgment.save(update_fields=["answer"])
    export = preference_pairs_export(study=study, folder=tmp_path / "out")
    assert (export.pairs, export.complete_tasks, export.incomplete_tasks, export.undecided_tasks) == (
        2,
        3,
        1,
        1,
    )


def test_no_pairs_is_a_clear_error_that_counts_incomplete_tasks(db, tmp_path):
    """Exporting a study whose tasks all lack judgments says how many are incomplete."""
    study = build(tmp_path / "src")
    Judgment.objects.exclude(task__prompt__text="an owl on a branch").delete()
    study.tasks.exclude(prompt__text="an owl on a branch").update(judgment_count=0)
    message = NO_PAIRS.format(name="bw", incomplete=4, tasks=4, overlap=3, undecided=0)
    with pytest.raises(ResultsError, match=re.escape(message)):
        preference_pairs_export(study=study, folder=tmp_path / "out")
    assert preference_pairs_export(study=study, folder=tmp_path / "out", include_incomplete=True).pairs == 1


def test_the_command(db, tmp_path, capsys):
    """`export_preferences` writes the folder and prints the hash and the task counts."""
    build(tmp_path / "src")
    with pytest.raises(CommandError, match="no study named"):
        call_command("export_preferences", "nope", "--out", str(tmp_path / "x"))
    call_command("export_preferences", "bw", "--out", str(tmp_path / "x"))
    printed = capsys.readouterr().out
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert f"wrote 3 pairs to {tmp_path / 'x'} (content hash {manifest['content_hash']})" in printed
    assert "tasks: 3 complete, 1 incomplete (left out), 0 left out with no single winner and loser" in printed
    call_command("export_preferences", "bw", "--out", str(tmp_path / "y"), "--include-incomplete")
    assert "wrote 4 pairs" in capsys.readouterr().out
    assert json.loads((tmp_path / "y" / "manifest.json").read_text())["provisional"] is True
