"""The preference-pair export: its files, its content hash, which tasks it counts, and the
folder read as a Hugging Face data set."""

import hashlib
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import datasets
import huggingface_hub.constants
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from django.core.management import CommandError, call_command
from PIL import Image

from annotate.models import Judgment, Study
from annotate.services import study_create
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import GeneratedImage, ModelVersion, Prompt, PromptSet
from evalhub.results import preference_export
from evalhub.results.errors import ResultsError
from evalhub.results.preference_export import (
    HASH_FORMAT,
    NO_PAIRS,
    content_hash,
    preference_pairs_export,
    preference_pairs_zip,
)
from tests.factories import PromptFactory, PromptSetFactory, png_bytes
from tests.results.test_best_worst import judge

# Votes per prompt, (positive, negative) per annotator; N = 3, so the owl is one short.
VOTES = {
    "a lighthouse at dusk": [(0, 4), (0, 3), (1, 4)],
    "a red fox in snow": [(4, 0), (3, 0), (4, 2)],
    "two cats on a sofa": [(2, 1), (2, 1), (3, 0)],
    "an owl on a branch": [(1, 2), (1, 2)],
}
PICK_A_PIC = ["caption", "jpg_0", "jpg_1", "label_0", "label_1", "are_different", "has_label"]


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


def jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]


def card_metadata(folder: Path) -> dict:
    """The YAML front matter of the folder's dataset card."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text[4 : text.index("\n---\n", 4)])


@pytest.fixture
def hf_load(monkeypatch, tmp_path):
    """``datasets.load_dataset`` kept off the network and out of the home cache. `datasets`
    reads its environment at import, so its settings are patched as well as the variables,
    and every load gets a cache_dir under tmp_path."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)

    def load(folder: Path, **kwargs):
        return datasets.load_dataset(str(folder), cache_dir=str(cache), **kwargs)

    return load


def diffusers_read(examples: dict) -> dict:
    """What diffusers' train_diffusion_dpo.py does with a batch, PIL and bytes for tensors:
    open ``jpg_0`` and ``jpg_1`` from their bytes, put the winner first (``label_0 == 0``
    means jpg_1 wins), keep the caption."""
    pairs = []
    for im_0, im_1, label_0 in zip(examples["jpg_0"], examples["jpg_1"], examples["label_0"], strict=True):
        for im_bytes in (im_0, im_1):
            Image.open(io.BytesIO(im_bytes)).convert("RGB")
        pairs.append((im_1, im_0) if label_0 == 0 else (im_0, im_1))
    return {"winner": [p[0] for p in pairs], "loser": [p[1] for p in pairs], "caption": examples["caption"]}


def test_the_export_writes_jsonl_images_parquet_a_card_and_a_manifest(db, tmp_path):
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
    assert not (out / "pairs.parquet").exists()
    shard = pq.read_table(out / "data/train-00000-of-00001.parquet")
    assert shard.schema == pa.schema(
        [
            ("caption", pa.string()),
            ("jpg_0", pa.binary()),
            ("jpg_1", pa.binary()),
            ("label_0", pa.float64()),
            ("label_1", pa.float64()),
            ("are_different", pa.bool_()),
            ("has_label", pa.bool_()),
        ]
    )
    table = shard.to_pylist()
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
    assert manifest["files"] == ["README.md", "pairs.jsonl", "data/train-00000-of-00001.parquet", "images/"]


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
    cards = []  # the same but for the study's name and id
    for files, manifest in zip((one, two), manifests, strict=True):
        card = files.pop("README.md").decode().replace(manifest["study"], "S")
        cards.append(card.replace(f"study id {manifest['study_id']})", "study id)"))
    assert one == two and len(one) == 17  # pairs.jsonl, one Parquet shard, 15 images
    assert cards[0] == cards[1]
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


def test_datasets_loads_the_folder_as_the_pairs(db, tmp_path, hf_load):
    """load_dataset(folder) reads the card's config: the Pick-a-Pic columns, one row per pair,
    read the way diffusers' Diffusion-DPO script reads them; not images/ as an imagefolder."""
    build(tmp_path / "src")
    out = tmp_path / "out"
    preference_pairs_export(study=Study.objects.get(), folder=out)
    records = jsonl(out)
    train = hf_load(out, split="train")
    assert train.column_names == PICK_A_PIC
    assert train.features == datasets.Features(
        {
            "caption": datasets.Value("string"),
            "jpg_0": datasets.Value("binary"),
            "jpg_1": datasets.Value("binary"),
            "label_0": datasets.Value("float64"),
            "label_1": datasets.Value("float64"),
            "are_different": datasets.Value("bool"),
            "has_label": datasets.Value("bool"),
        }
    )
    assert train.num_rows == len(records) == 3
    read = diffusers_read(train[:])
    assert read["caption"] == [r["prompt"] for r in records]
    assert read["winner"] == [(out / r["winner"]).read_bytes() for r in records]
    assert read["loser"] == [(out / r["loser"]).read_bytes() for r in records]
    for row, record in zip(train, records, strict=True):
        assert (row["label_0"] == 1.0) == (row["jpg_0"] == (out / record["winner"]).read_bytes())
        assert row["label_1"] == 1.0 - row["label_0"]
        assert row["are_different"] and row["has_label"]
    assert 0 < sum(train["label_0"]) < 3  # the winner is not always first
    whole = hf_load(out)
    assert list(whole) == ["train"]
    assert whole["train"].to_list() == train.to_list()
    card = (out / "README.md").read_text(encoding="utf-8")
    (out / "README.md").write_text(card.replace("num_examples: 3", "num_examples: 2"), encoding="utf-8")
    with pytest.raises(datasets.exceptions.NonMatchingSplitsSizesError):  # the card is what it reads
        hf_load(out, split="train", download_mode="force_redownload")
    provisional = tmp_path / "provisional"
    preference_pairs_export(study=Study.objects.get(), folder=provisional, include_incomplete=True)
    assert hf_load(provisional, split="train")["caption"] == [r["prompt"] for r in jsonl(provisional)]


def test_a_large_export_is_cut_into_shards_read_in_order(db, tmp_path, hf_load, monkeypatch):
    """Past SHARD_BYTES of images a new shard starts, named as the Hub names them; row groups
    keep to ROW_GROUP_ROWS; load_dataset reads every row in order; a smaller export into the
    same folder leaves no stale shard behind."""
    build(tmp_path / "src")
    out = tmp_path / "out"
    monkeypatch.setattr(preference_export, "SHARD_BYTES", 1)  # every pair is past it alone
    export = preference_pairs_export(study=Study.objects.get(), folder=out, include_incomplete=True)
    shards = [f"data/train-0000{k}-of-00004.parquet" for k in range(4)]
    assert sorted(str(p.relative_to(out)) for p in (out / "data").iterdir()) == shards
    assert json.loads((out / "manifest.json").read_text())["files"][2:6] == shards
    assert [pq.ParquetFile(out / shard).metadata.num_rows for shard in shards] == [1, 1, 1, 1]
    records = jsonl(out)
    train = hf_load(out, split="train")
    assert train.num_rows == export.pairs == 4
    assert diffusers_read(train[:])["winner"] == [(out / r["winner"]).read_bytes() for r in records]

    monkeypatch.setattr(preference_export, "SHARD_BYTES", 10**9)
    monkeypatch.setattr(preference_export, "ROW_GROUP_ROWS", 3)
    preference_pairs_export(study=Study.objects.get(), folder=out, include_incomplete=True)
    assert [p.name for p in (out / "data").iterdir()] == ["train-00000-of-00001.parquet"]
    metadata = pq.ParquetFile(out / "data/train-00000-of-00001.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [3, 1]
    assert hf_load(out, split="train")["caption"] == [r["prompt"] for r in records]


def test_the_card_describes_the_study_its_pairs_and_how_to_load_them(db, tmp_path):
    """The card's YAML names the shards as the train split with its features and row count;
    its text names the study, the counts, the content hash and the commands."""
    study = build(tmp_path / "src")
    out = tmp_path / "out"
    export = preference_pairs_export(study=study, folder=out)
    metadata = card_metadata(out)
    assert metadata["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    shard = out / "data/train-00000-of-00001.parquet"
    features = datasets.Features.from_arrow_schema(pq.read_schema(shard))
    info = metadata["dataset_info"]
    assert info["features"] == datasets.DatasetInfo(features=features)._to_yaml_dict()["features"]
    splits = datasets.SplitDict._from_yaml_list(info["splits"])  # raises where `datasets` would ignore them
    assert (splits["train"].num_examples, info["download_size"]) == (export.pairs, shard.stat().st_size)
    text = (out / "README.md").read_text(encoding="utf-8")
    for phrase in (
        f"study **bw** (study id {study.pk})",
        "| pairs | 3 |",
        "| incomplete tasks | 1 (left out) |",
        "| provisional | no |",
        f"`{export.content_hash}` (format `{HASH_FORMAT}`",
        'load_dataset("path/to/this/folder", split="train")',
        "python -m training train",
        "--dataset_name=path/to/this/folder --dataset_split_name=train",
    ):
        assert phrase in text
    assert str(tmp_path) not in text
    provisional = tmp_path / "provisional"
    preference_pairs_export(study=study, folder=provisional, include_incomplete=True)
    assert card_metadata(provisional)["dataset_info"]["splits"][0]["num_examples"] == 4
    assert "This export is **provisional**" in (provisional / "README.md").read_text(encoding="utf-8")


def test_the_zip_holds_the_whole_folder(db, tmp_path):
    """The download carries the card and the shards with the rest; Parquet and PNG stored as they are."""
    study = build(tmp_path / "src")
    buffer = io.BytesIO()
    preference_pairs_zip(study=study, out=buffer, root="bw-preferences")
    archive = zipfile.ZipFile(buffer)
    preference_pairs_export(study=study, folder=tmp_path / "out")
    written = folder_files(tmp_path / "out")
    assert {name.removeprefix("bw-preferences/") for name in archive.namelist()} == set(written)
    assert {"README.md", "data/train-00000-of-00001.parquet"} <= set(written)
    packed = {info.filename.rsplit(".", 1)[-1]: info.compress_type for info in archive.infolist()}
    assert packed == {
        "parquet": zipfile.ZIP_STORED,
        "png": zipfile.ZIP_STORED,
        "md": zipfile.ZIP_DEFLATED,
        "jsonl": zipfile.ZIP_DEFLATED,
        "json": zipfile.ZIP_DEFLATED,
    }
