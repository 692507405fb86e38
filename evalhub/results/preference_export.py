"""Preference pairs of a best/worst study as a training dataset.

A folder with ``images/`` (the five images of every kept prompt, under their opaque
names), ``pairs.jsonl`` (prompt, winner, loser, all five images, study, votes),
``pairs.parquet`` in the layout of the public Pick-a-Pic v2 data set (caption, jpg_0,
jpg_1 as image bytes — PNG here, which every image reader opens — label_0, label_1,
are_different, has_label), and ``manifest.json`` with a content hash over the pairs and
image bytes, so a training run can name exactly the data it used.
"""

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files.storage import default_storage

from annotate.models import Study
from evalhub.results.ab_outcomes import ResultsError
from evalhub.results.best_worst import best_worst_pairs, best_worst_votes, task_images

NO_PAIRS = "study {name!r} has no decided winner/loser pair yet"


@dataclass(frozen=True)
class PreferenceExport:
    folder: Path
    pairs: int
    content_hash: str


def preference_pairs_export(*, study: Study, folder: Path) -> PreferenceExport:
    """Write the dataset into ``folder`` (created; existing files of the same names are replaced)."""
    pairs = best_worst_pairs(study)
    if pairs.empty:
        raise ResultsError(NO_PAIRS.format(name=study.name))
    votes = best_worst_votes(study).set_index(["task_id", "position"])
    images = task_images(study)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    records, table = (
        [],
        {k: [] for k in ("caption", "jpg_0", "jpg_1", "label_0", "label_1", "are_different", "has_label")},
    )
    for row in pairs.sort_values("task_id").itertuples(index=False):
        shown = images[row.task_id]
        paths, blobs = [], []
        for ti in shown:
            with default_storage.open(ti.image.file.name, "rb") as handle:
                data = handle.read()
            path = f"images/{ti.image.public_id}.png"
            (folder / path).write_bytes(data)
            paths.append(path)
            blobs.append(data)
            digest.update(ti.image.sha256.encode())
        record = {
            "prompt": shown[0].prompt_text,
            "winner": paths[row.winner],
            "loser": paths[row.loser],
            "images": paths,
            "study": study.name,
            "votes": {
                kind: [int(votes[kind].get((row.task_id, p), 0)) for p in range(len(shown))]
                for kind in ("positive", "negative")
            },
        }
        records.append(record)
        # Which of the pair is jpg_0 is drawn per prompt (fixed seed), so a reward model
        # cannot learn "the first image wins".
        winner_first = random.Random(f"{study.pk}:{row.task_id}").random() < 0.5
        first, second = (row.winner, row.loser) if winner_first else (row.loser, row.winner)
        table["caption"].append(record["prompt"])
        table["jpg_0"].append(blobs[first])
        table["jpg_1"].append(blobs[second])
        table["label_0"].append(1.0 if winner_first else 0.0)
        table["label_1"].append(0.0 if winner_first else 1.0)
        table["are_different"].append(True)
        table["has_label"].append(True)
    jsonl = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    digest.update(jsonl.encode())
    (folder / "pairs.jsonl").write_text(jsonl)
    pq.write_table(pa.table(table), folder / "pairs.parquet")
    content_hash = digest.hexdigest()
    manifest = {
        "study": study.name,
        "study_id": study.pk,
        "pairs": len(records),
        "content_hash": content_hash,
        "files": ["pairs.jsonl", "pairs.parquet", "images/"],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return PreferenceExport(folder=folder, pairs=len(records), content_hash=content_hash)
