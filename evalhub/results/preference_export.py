"""Preference pairs of a best/worst study as a training dataset, and a Hugging Face data set.

A folder with:

- ``README.md``, a dataset card: YAML front matter naming the Parquet shards as the
  ``train`` split of the ``default`` config, with their features and row count, so
  ``datasets.load_dataset(folder)`` reads the pairs (not ``images/`` as an imagefolder);
  then the study, the rule that makes the pairs, the counts, the content hash, the
  columns and how to load and train;
- ``data/train-00000-of-0000N.parquet``, the pairs in the layout of the public Pick-a-Pic v2
  data set (caption, jpg_0, jpg_1 as image bytes — PNG here, which every image reader
  opens — label_0, label_1, are_different, has_label), cut into shards of at most
  :data:`SHARD_BYTES` of image bytes, each in row groups of :data:`ROW_GROUP_ROWS` rows;
- ``images/`` (the five images of every kept prompt, each named by the sha256 of its
  bytes) and ``pairs.jsonl`` (prompt, winner, loser, all five images, votes per position);
- ``manifest.json`` with the study, the counts and a content hash over prompts, images and
  votes (:func:`content_hash`), so a training run can name exactly the data it used.

The images are copied one at a time, and the shards are written row group by row group
from the copies in ``images/``: at most one row group's image bytes are held in memory,
whatever the size of the study.

Only complete tasks (their N judgments) give pairs, unless ``include_incomplete`` asks
for a provisional export. Everything but the study name and id (in the manifest and the
card) follows from the content alone: records in prompt order, files named by their hash,
the jpg_0/jpg_1 order drawn from a hash of the pair, shards cut by image bytes; the card
holds no time and no path. The same prompts, images and votes give the same bytes in any
deployment.
"""

import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from django.core.files.storage import default_storage

from annotate.models import Study
from evalhub.results.best_worst import best_worst_votes, decided_pairs, pair_counts, task_images
from evalhub.results.errors import ResultsError

NO_PAIRS = (
    "study {name!r} has no decided winner/loser pair yet ({incomplete} of {tasks} tasks still lack "
    "their {overlap} judgments; {undecided} judged tasks name no single winner and loser)"
)
IMAGE_CHANGED = "stored image {name} no longer matches the sha256 {sha256} recorded at import"
# Part of the hashed structure: a change to what the hash covers, or to how the folder is
# derived from it (file names, the jpg_0 draw), takes a new format so old hashes never match.
HASH_FORMAT = "evalhub-preference-pairs/1"
SHARD_BYTES = 500 * 1024**2  # image bytes per Parquet shard at most: HF's default max_shard_size
ROW_GROUP_ROWS = 100  # rows per row group, as `datasets` writes image data; readers load one at a time
SPLIT = "train"
# The Pick-a-Pic v2 columns: name, Arrow type, the dtype `datasets` writes in a card, meaning.
COLUMNS = (
    ("caption", pa.string(), "string", "the prompt"),
    ("jpg_0", pa.binary(), "binary", "one image of the pair: PNG bytes (the column names are Pick-a-Pic's)"),
    ("jpg_1", pa.binary(), "binary", "the other image: PNG bytes"),
    ("label_0", pa.float64(), "float64", "1.0 when jpg_0 is the winner, 0.0 when jpg_1 is"),
    ("label_1", pa.float64(), "float64", "1.0 − label_0"),
    ("are_different", pa.bool_(), "bool", "always true: winner and loser are different images"),
    ("has_label", pa.bool_(), "bool", "always true: every pair has a winner"),
)
PICK_A_PIC_SCHEMA = pa.schema([(name, arrow) for name, arrow, _, _ in COLUMNS])


@dataclass(frozen=True)
class PreferenceExport:
    folder: Path
    pairs: int
    content_hash: str
    provisional: bool  # incomplete tasks were counted
    complete_tasks: int
    incomplete_tasks: int
    undecided_tasks: int  # counted, but no single winner and loser: left out


def content_hash(pairs: list[dict]) -> str:
    """The export's content hash: sha256 of the canonical JSON of its pairs.

    Each pair is ``{"prompt": text, "images": [sha256, ...], "winner": i, "loser": j,
    "votes": {"positive": [n, ...], "negative": [n, ...]}}``: the images are the sha256 of
    each image's canonical PNG bytes (``GeneratedImage.sha256``) in display order, winner
    and loser are display positions, votes count per position. The pairs are sorted by
    prompt text (then images) and ``{"format": HASH_FORMAT, "pairs": pairs}`` is written
    as JSON with sorted keys, no spaces and UTF-8 text. Nothing else enters — no storage
    path, public id, primary key, study name or time — so the same prompts, pixels and
    votes hash alike in every deployment, and a change to any of them changes the hash.
    """
    ordered = sorted(pairs, key=lambda pair: (pair["prompt"], pair["images"]))
    canonical = json.dumps(
        {"format": HASH_FORMAT, "pairs": ordered}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def winner_first(prompt: str, winner: str, loser: str) -> bool:
    """Whether the winner is the Parquet's jpg_0: drawn per pair from its content (prompt
    text, winner and loser image hashes), so a reward model cannot learn "the first image
    wins" and the file is the same wherever the data is built."""
    key = json.dumps([prompt, winner, loser], ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(key).digest()[0] < 128


def shard_name(index: int, total: int) -> str:
    """A shard's path in the folder, named as the Hugging Face Hub names them."""
    return f"data/{SPLIT}-{index:05d}-of-{total:05d}.parquet"


def preference_pairs_export(
    *, study: Study, folder: Path, include_incomplete: bool = False
) -> PreferenceExport:
    """Write the dataset into ``folder`` (created; existing files of the same names are
    replaced, and shards of an earlier export there are removed)."""
    votes = best_worst_votes(study, include_incomplete=include_incomplete)
    kept = decided_pairs(votes)
    counts = pair_counts(study, votes, kept)
    complete, incomplete, undecided = counts.complete_tasks, counts.incomplete_tasks, counts.undecided_tasks
    if kept.empty:
        raise ResultsError(
            NO_PAIRS.format(
                name=study.name,
                incomplete=incomplete,
                tasks=complete + incomplete,
                overlap=study.overlap,
                undecided=undecided,
            )
        )
    images = task_images(study)
    stored = {ti.image.sha256: ti.image.file.name for shown in images.values() for ti in shown}
    pairs = sorted(_pair_contents(kept, votes, images), key=lambda pair: (pair["prompt"], pair["images"]))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for pair in pairs:
        for sha in pair["images"]:
            _copy_image(stored[sha], sha, folder)
        paths = [_image_path(sha) for sha in pair["images"]]
        records.append(
            {**pair, "winner": paths[pair["winner"]], "loser": paths[pair["loser"]], "images": paths}
        )
    (folder / "pairs.jsonl").write_text(
        "".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8"
    )
    shards = _write_shards(_pick_a_pic_rows(pairs), folder)
    export = PreferenceExport(
        folder=folder,
        pairs=len(pairs),
        content_hash=content_hash(pairs),
        provisional=include_incomplete,
        complete_tasks=complete,
        incomplete_tasks=incomplete,
        undecided_tasks=undecided,
    )
    (folder / "README.md").write_text(_card(study, export, shards), encoding="utf-8")
    manifest = {
        "study": study.name,
        "study_id": study.pk,
        "provisional": export.provisional,
        "pairs": export.pairs,
        "complete_tasks": complete,
        "incomplete_tasks": incomplete,
        "undecided_tasks": undecided,
        "content_hash": export.content_hash,
        "hash_format": HASH_FORMAT,
        "files": ["README.md", "pairs.jsonl", *shards.names, "images/"],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return export


def preference_pairs_zip(
    *, study: Study, out: BinaryIO, root: str, include_incomplete: bool = False
) -> PreferenceExport:
    """The export (:func:`preference_pairs_export`) as a ZIP written to ``out``: each file of
    its folder under ``root/`` (the card, the shards under ``data/``, the images, the JSONL
    and the manifest), images and Parquet stored as they are, text compressed. The folder is
    built in a temporary directory, gone when this returns."""
    with tempfile.TemporaryDirectory(prefix="evalhub-preferences-") as folder:
        export = preference_pairs_export(
            study=study, folder=Path(folder), include_incomplete=include_incomplete
        )
        with zipfile.ZipFile(out, "w") as archive:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file():
                    packed = (
                        zipfile.ZIP_STORED if path.suffix in (".png", ".parquet") else zipfile.ZIP_DEFLATED
                    )
                    archive.write(path, f"{root}/{path.relative_to(folder).as_posix()}", compress_type=packed)
    return export


def _pair_contents(kept: pd.DataFrame, votes: pd.DataFrame, images: dict[int, list]) -> list[dict]:
    """Each kept pair as :func:`content_hash` reads it."""
    counts = votes.set_index(["task_id", "position"])
    pairs = []
    for row in kept.itertuples(index=False):
        shown = images[row.task_id]
        pairs.append(
            {
                "prompt": shown[0].prompt_text,
                "images": [ti.image.sha256 for ti in shown],
                "winner": int(row.winner),
                "loser": int(row.loser),
                "votes": {
                    kind: [int(counts[kind].get((row.task_id, p), 0)) for p in range(len(shown))]
                    for kind in ("positive", "negative")
                },
            }
        )
    return pairs


def _pick_a_pic_rows(pairs: list[dict]) -> list[dict]:
    """One row per pair, its images as paths in the folder (order per :func:`winner_first`)."""
    rows = []
    for pair in pairs:
        winner, loser = pair["images"][pair["winner"]], pair["images"][pair["loser"]]
        first = winner_first(pair["prompt"], winner, loser)
        rows.append(
            {
                "caption": pair["prompt"],
                "jpg_0": _image_path(winner if first else loser),
                "jpg_1": _image_path(loser if first else winner),
                "label_0": 1.0 if first else 0.0,
                "label_1": 0.0 if first else 1.0,
                "are_different": True,
                "has_label": True,
            }
        )
    return rows


@dataclass(frozen=True)
class Shards:
    names: list[str]  # paths in the folder
    arrow_bytes: int  # the rows as Arrow tables: a split's num_bytes (`datasets` may count a few bytes more)
    file_bytes: int  # the Parquet files: the card's download_size


def _write_shards(rows: list[dict], folder: Path) -> Shards:
    """Write ``rows`` as Parquet shards, each up to :data:`SHARD_BYTES` of image bytes (a
    row larger alone gets a shard to itself), in row groups of :data:`ROW_GROUP_ROWS` rows;
    the images are read from the folder one row group at a time."""
    shards, current, size = [], [], 0
    for row in rows:
        row_size = sum((folder / row[column]).stat().st_size for column in ("jpg_0", "jpg_1"))
        if current and size + row_size > SHARD_BYTES:
            shards.append(current)
            current, size = [], 0
        current.append(row)
        size += row_size
    shards.append(current)
    (folder / "data").mkdir(exist_ok=True)
    for stale in (folder / "data").glob(f"{SPLIT}-*-of-*.parquet"):
        stale.unlink()
    names = [shard_name(index, len(shards)) for index in range(len(shards))]
    arrow_bytes = 0
    for name, shard in zip(names, shards, strict=True):
        with pq.ParquetWriter(folder / name, PICK_A_PIC_SCHEMA) as writer:
            for start in range(0, len(shard), ROW_GROUP_ROWS):
                group = shard[start : start + ROW_GROUP_ROWS]
                table = {column: [row[column] for row in group] for column in PICK_A_PIC_SCHEMA.names}
                for column in ("jpg_0", "jpg_1"):
                    table[column] = [(folder / path).read_bytes() for path in table[column]]
                group_table = pa.table(table, schema=PICK_A_PIC_SCHEMA)
                writer.write_table(group_table, row_group_size=ROW_GROUP_ROWS)
                arrow_bytes += group_table.nbytes
    return Shards(names, arrow_bytes, sum((folder / name).stat().st_size for name in names))


def _image_path(sha256: str) -> str:
    return f"images/{sha256}.png"


def _copy_image(name: str, sha256: str, folder: Path) -> None:
    """Write the stored image under its hash, after checking its bytes still match it."""
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ResultsError(IMAGE_CHANGED.format(name=name, sha256=sha256))
    (folder / _image_path(sha256)).write_bytes(data)


# ---------------------------------------------------------------------------------------
# The dataset card
# ---------------------------------------------------------------------------------------

CARD = """\
# Preference pairs of study {name}

Winner/loser image pairs from the best/worst-of-five study **{name}** (study id {study_id}),
exported by EvalHub. Each pair is a prompt with the image its annotators chose as best and
the image they chose as worst among the prompt's five images.

## How the pairs are chosen

A task shows one prompt's five images; each of its annotators marks one image as best (a
positive vote) and one as worst (a negative vote). Over a task's judgments:

- the winner is the image with the most positive votes; a tie goes to the image with fewer
  negative votes; if still tied, the task gives no pair;
- the loser is the image with the most negative votes; a tie goes to the image with fewer
  positive votes; if still tied, the task gives no pair;
- a task whose winner is also its loser gives no pair.

{scope}

| | |
|---|---|
| pairs | {pairs} |
| complete tasks (all {overlap} judgments) | {complete} |
| incomplete tasks | {incomplete} ({incomplete_use}) |
| undecided tasks (no single winner and loser: left out) | {undecided} |
| provisional | {provisional} |

## Content hash

`{content_hash}` (format `{hash_format}`, also in `manifest.json`): the sha256 of the JSON
`{{"format": "{hash_format}", "pairs": [...]}}`, where each pair holds its prompt text, the
sha256 of its task's five images (PNG bytes) in display order, the winner's and the
loser's display positions and the positive and negative votes per position; pairs sorted
by prompt text then image hashes, keys sorted, no spaces, UTF-8. No storage name, id,
study name or time enters: the same prompts, images and votes hash alike in any
deployment, and a change to any of them changes the hash.

## Files

- `data/{split}-*.parquet`: the pairs, in the layout of the Pick-a-Pic v2 data set; {shards}
  of at most {shard_mib} MiB of images, row groups of {row_group_rows} rows. This is the
  `{split}` split of the `default` config.
- `pairs.jsonl`: one line per pair, in prompt order: `prompt`, `winner` and `loser` (paths
  under `images/`), `images` (the task's five images in display order) and `votes`
  (`positive` and `negative` counts per display position).
- `images/`: every image of every pair's task, PNG, named by the sha256 of its bytes.
- `manifest.json`: the study, the counts and the content hash.

## Columns

| column | type | meaning |
|---|---|---|
{columns}

Which image of a pair is `jpg_0` is drawn per pair from a hash of the prompt and the two
images' sha256: the winner comes first in about half the pairs, so the position tells
nothing, and the files are the same wherever the data is built.

## Use

```python
from datasets import load_dataset

pairs = load_dataset("path/to/this/folder", split="{split}")
```

EvalHub's trainer:

```sh
python -m training train --model path/to/pipeline --data path/to/this/folder \\
    --output-dir runs/dpo --method dpo
```

The Diffusion-DPO example of diffusers
(`examples/research_projects/diffusion_dpo/train_diffusion_dpo.py`) reads `caption`,
`jpg_0`, `jpg_1` and `label_0` (0 when `jpg_1` wins) as they are here:

```sh
accelerate launch train_diffusion_dpo.py --pretrained_model_name_or_path=path/to/pipeline \\
    --dataset_name=path/to/this/folder --dataset_split_name={split} --output_dir=runs/dpo
```
"""


def _card(study: Study, export: PreferenceExport, shards: Shards) -> str:
    """The dataset card: YAML front matter for `datasets` and the Hub, then the description."""
    metadata = {
        "configs": [{"config_name": "default", "data_files": [{"split": SPLIT, "path": f"data/{SPLIT}-*"}]}],
        "dataset_info": {
            "features": [{"name": name, "dtype": dtype} for name, _, dtype, _ in COLUMNS],
            "splits": [{"name": SPLIT, "num_bytes": shards.arrow_bytes, "num_examples": export.pairs}],
            "download_size": shards.file_bytes,
            "dataset_size": shards.arrow_bytes,
        },
        "license": "other",  # the images' terms are those of the models that made them
        "pretty_name": "EvalHub preference pairs",
        "task_categories": ["text-to-image"],
        "tags": ["preference", "dpo", "best-worst", "evalhub"],
    }
    if export.provisional:
        scope = (
            f"This export is **provisional**: tasks still short of their {study.overlap} judgments "
            "count too, with the judgments they have so far, so pairs may change as judging goes on."
        )
    else:
        scope = f"Only complete tasks, those with all {study.overlap} judgments, give pairs."
    description = CARD.format(
        name=study.name,
        study_id=study.pk,
        scope=scope,
        pairs=export.pairs,
        overlap=study.overlap,
        complete=export.complete_tasks,
        incomplete=export.incomplete_tasks,
        incomplete_use="counted, provisionally" if export.provisional else "left out",
        undecided=export.undecided_tasks,
        provisional="yes" if export.provisional else "no",
        content_hash=export.content_hash,
        hash_format=HASH_FORMAT,
        split=SPLIT,
        shards=f"{len(shards.names)} shard" + ("s" if len(shards.names) > 1 else ""),
        shard_mib=f"{SHARD_BYTES / 1024**2:g}",
        row_group_rows=ROW_GROUP_ROWS,
        columns="\n".join(f"| `{name}` | {dtype} | {meaning} |" for name, _, dtype, meaning in COLUMNS),
    )
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n{description}"
