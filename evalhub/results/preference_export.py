"""Preference pairs of a best/worst study as a training dataset.

A folder with ``images/`` (the five images of every kept prompt, each named by the
sha256 of its bytes), ``pairs.jsonl`` (prompt, winner, loser, all five images, votes per
position), ``pairs.parquet`` in the layout of the public Pick-a-Pic v2 data set (caption,
jpg_0, jpg_1 as image bytes — PNG here, which every image reader opens — label_0,
label_1, are_different, has_label), and ``manifest.json`` with the study, the counts and
a content hash over prompts, images and votes (:func:`content_hash`), so a training run
can name exactly the data it used.

Only complete tasks (their N judgments) give pairs, unless ``include_incomplete`` asks
for a provisional export. Everything but the manifest's study name and id follows from
the content alone: records in prompt order, files named by their hash, the jpg_0/jpg_1
order drawn from a hash of the pair. The same prompts, images and votes give the same
bytes in any deployment.
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
PARQUET_COLUMNS = ("caption", "jpg_0", "jpg_1", "label_0", "label_1", "are_different", "has_label")


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


def preference_pairs_export(
    *, study: Study, folder: Path, include_incomplete: bool = False
) -> PreferenceExport:
    """Write the dataset into ``folder`` (created; existing files of the same names are replaced)."""
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
    records, blobs = [], {}  # blobs: the winners' and losers' bytes, for the Parquet file
    for pair in pairs:
        for position, sha in enumerate(pair["images"]):
            data = _copy_image(stored[sha], sha, folder)
            if position in (pair["winner"], pair["loser"]):
                blobs[sha] = data
        paths = [_image_path(sha) for sha in pair["images"]]
        records.append(
            {**pair, "winner": paths[pair["winner"]], "loser": paths[pair["loser"]], "images": paths}
        )
    (folder / "pairs.jsonl").write_text(
        "".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8"
    )
    pq.write_table(_pick_a_pic_table(pairs, blobs), folder / "pairs.parquet")
    export = PreferenceExport(
        folder=folder,
        pairs=len(pairs),
        content_hash=content_hash(pairs),
        provisional=include_incomplete,
        complete_tasks=complete,
        incomplete_tasks=incomplete,
        undecided_tasks=undecided,
    )
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
        "files": ["pairs.jsonl", "pairs.parquet", "images/"],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return export


def preference_pairs_zip(
    *, study: Study, out: BinaryIO, root: str, include_incomplete: bool = False
) -> PreferenceExport:
    """The export (:func:`preference_pairs_export`) as a ZIP written to ``out``: each file of
    its folder under ``root/``, images and Parquet stored as they are, text compressed. The
    folder is built in a temporary directory, gone when this returns."""
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


def _pick_a_pic_table(pairs: list[dict], blobs: dict[str, bytes]) -> pa.Table:
    """One row per pair: caption, both images' bytes (order per :func:`winner_first`), labels."""
    table = {column: [] for column in PARQUET_COLUMNS}
    for pair in pairs:
        winner, loser = pair["images"][pair["winner"]], pair["images"][pair["loser"]]
        first = winner_first(pair["prompt"], winner, loser)
        table["caption"].append(pair["prompt"])
        table["jpg_0"].append(blobs[winner if first else loser])
        table["jpg_1"].append(blobs[loser if first else winner])
        table["label_0"].append(1.0 if first else 0.0)
        table["label_1"].append(0.0 if first else 1.0)
        table["are_different"].append(True)
        table["has_label"].append(True)
    return pa.table(table)


def _image_path(sha256: str) -> str:
    return f"images/{sha256}.png"


def _copy_image(name: str, sha256: str, folder: Path) -> bytes:
    """The stored image's bytes, written under its hash after checking they still match it."""
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ResultsError(IMAGE_CHANGED.format(name=name, sha256=sha256))
    (folder / _image_path(sha256)).write_bytes(data)
    return data
