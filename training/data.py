"""Training data: preference pairs and captioned images, as PyTorch datasets.

What ``--data`` may name (:func:`training.data_sources.locate`):

- the web app's preference export: a folder with ``pairs.jsonl`` (``prompt``, ``winner``,
  ``loser`` as paths relative to the folder) and ``images/``, or such a ``.jsonl`` alone.
  An export that also holds ``data/train-*.parquet`` is still read from ``pairs.jsonl``;
- for ``sft``, a folder with ``metadata.jsonl`` (the Hugging Face imagefolder layout:
  ``file_name``, ``text``) or a ``.jsonl`` whose lines hold ``image`` (or ``file_name``)
  and ``caption`` (or ``text``/``prompt``);
- a ``.parquet`` file, or a folder holding ``pairs.parquet``;
- a Hugging Face data set folder: the ``split``'s Parquet shards as the ``README.md`` card's
  ``configs`` → ``data_files`` give them, else ``data/{split}-*.parquet``,
  ``data/{split}/*.parquet`` or ``{split}/*.parquet`` (for ``train`` with no file named
  for it, every ``data/*.parquet``);
- Parquet shards as a comma-separated list of files and glob patterns (``shards/*.parquet``);
  each pattern's matches in sorted order, the items in the order given;
- a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``.

``split`` picks among a folder's splits; a file, a shard list and an export are ``train``.

Tables (Parquet, save_to_disk) hold Pick-a-Pic v2 pairs (``caption``, ``jpg_0``, ``jpg_1``
as bytes or as the ``datasets`` Image feature's ``{bytes, path}``, ``label_0``,
``label_1``, optional ``has_label``; other columns ignored) or, for ``sft``, captioned
images (``image``, and ``text``, ``caption`` or ``prompt``); ``sft`` on pairs trains on
the winners. Tied rows, rows with ``has_label`` false and rows missing a label are skipped,
never counted as a win, and counted in ``.counts``. Only captions and labels are read when
a dataset is built; image bytes are read per item (:mod:`training.data_tables`), so a data
set larger than memory works. ``.blocks`` gives the kept items per Parquet row group, for a
sampler that keeps reads local.

Images are resized so the shorter side is the training resolution and center-cropped,
then scaled to [−1, 1]. Random choices (flip, empty prompt) happen in the trainer from the
step's seeded generator, so a winner and its loser are flipped together and a resumed run
draws exactly what an uninterrupted one would.
"""

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from training.data_sources import DataError, locate
from training.data_tables import (
    MISSING_COLUMNS,
    NOT_CAPTIONED,
    PICK_A_PIC,
    DataCounts,
    ImageCounts,
    decided_pairs,
    image_source,
    open_table,
    text_column,
)

__all__ = [
    "CaptionedImages",
    "DataCounts",
    "DataError",
    "ImageCounts",
    "PreferencePairs",
    "data_fingerprint",
    "image_tensor",
]

NO_PAIRS = "{where} holds no decided preference pair ({summary})"
NO_IMAGES = "{where} lists no image"


def image_tensor(source: Path | bytes, resolution: int) -> torch.Tensor:
    """``[3, R, R]`` float tensor in [−1, 1]: shorter side resized to R, then center crop."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img = ImageOps.fit(img, (resolution, resolution), method=Image.Resampling.BICUBIC)
    except (OSError, ValueError) as exc:
        name = "image bytes" if isinstance(source, bytes) else str(source)
        raise DataError(f"cannot read {name}: {exc}") from exc
    array = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for line, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {line}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {line}: expected a JSON object")
        rows.append((line, record))
    return rows


def _field(record: dict, names: tuple[str, ...], where: str) -> str:
    for name in names:
        if isinstance(record.get(name), str):
            return record[name]
    raise DataError(f"{where}: missing {' or '.join(repr(n) for n in names)}")


def _existing(base: Path, relative: str, where: str) -> Path:
    path = (base / relative).resolve()
    if not path.is_file():
        raise DataError(f"{where}: image {relative!r} not found under {base}")
    return path


def _pairs_from_jsonl(path: Path) -> list[tuple[str, Path, Path]]:
    rows = []
    for line, record in _jsonl(path):
        where = f"{path.name}, line {line}"
        caption = _field(record, ("prompt", "caption"), where)
        winner = _existing(path.parent, _field(record, ("winner",), where), where)
        loser = _existing(path.parent, _field(record, ("loser",), where), where)
        if winner == loser:
            raise DataError(f"{where}: winner and loser are the same image")
        rows.append((caption, winner, loser))
    return rows


def _images_from_jsonl(path: Path) -> list[tuple[str, Path]]:
    rows = []
    for line, record in _jsonl(path):
        where = f"{path.name}, line {line}"
        image = _existing(path.parent, _field(record, ("file_name", "image"), where), where)
        rows.append((_field(record, ("text", "caption", "prompt"), where), image))
    return rows


class PreferencePairs(Dataset):
    """(caption, winner, loser) items; images as ``[3, R, R]`` tensors.

    Attributes: ``captions`` (one per item), ``counts`` (:class:`DataCounts`: rows read,
    kept, skipped by reason), ``blocks`` (kept items per Parquet row group, in item order;
    None for a random-access source) and ``source``.
    """

    def __init__(self, path: str | Path, resolution: int, split: str = "train"):
        self.source = locate(path, split)
        self.resolution = resolution
        self._table = None
        if self.source.kind == "jsonl":
            rows = _pairs_from_jsonl(self.source.files[0])
            self.captions = [caption for caption, _, _ in rows]
            self._paths = [(winner, loser) for _, winner, loser in rows]
            self.counts, self.blocks = DataCounts(len(rows), len(rows)), None
        else:
            self._table = open_table(self.source)
            missing = [name for name in PICK_A_PIC if name not in self._table.columns]
            if missing:
                raise DataError(MISSING_COLUMNS.format(where=self.source.label, columns=", ".join(missing)))
            wanted = ["caption", "label_0", "label_1"] + ["has_label"] * ("has_label" in self._table.columns)
            frame = self._table.read_columns(wanted)
            self._rows, self._winner_column, self.counts = decided_pairs(frame)
            self.captions = frame["caption"].fillna("").astype(str).to_numpy()[self._rows].tolist()
            self.blocks = self._table.blocks(self._rows)
        if not self.captions:
            raise DataError(NO_PAIRS.format(where=self.source.label, summary=self.counts.summary()))

    def __len__(self):
        return len(self.captions)

    def describe(self) -> str:
        """One line for the log: what was read, from where."""
        return self.source.describe(self._table.num_rows if self._table is not None else None)

    def _images(self, index: int) -> tuple[bytes | Path, bytes | Path]:
        """The winner's and the loser's file or bytes."""
        if self._table is None:
            return self._paths[index]
        row, first = int(self._rows[index]), int(self._winner_column[index])
        values = self._table.values(row, ("jpg_0", "jpg_1"))
        where, base = self._table.where(row)
        return image_source(values[first], where, base), image_source(values[1 - first], where, base)

    def __getitem__(self, index: int) -> dict:
        winner, loser = self._images(index)
        return {
            "caption": self.captions[index],
            "winner": image_tensor(winner, self.resolution),
            "loser": image_tensor(loser, self.resolution),
        }


class CaptionedImages(Dataset):
    """(caption, image) items for SFT; a pair source contributes its winners.

    ``captions``, ``counts``, ``blocks`` and ``describe()`` as for :class:`PreferencePairs`
    (a pair source's own, when built from pairs).
    """

    def __init__(self, path: str | Path, resolution: int, split: str = "train"):
        self.source = locate(path, split)
        self.resolution = resolution
        self._pairs = self._table = None
        if self.source.kind == "jsonl" and _lists_pairs(self.source.files[0]):
            self._pairs = PreferencePairs(path, resolution, split)
        elif self.source.kind == "jsonl":
            rows = _images_from_jsonl(self.source.files[0])
            self.captions = [caption for caption, _ in rows]
            self._paths = [image for _, image in rows]
            self.blocks = None
        else:
            self._table = open_table(self.source)
            if set(PICK_A_PIC) <= self._table.columns:
                self._pairs = PreferencePairs(path, resolution, split)
            else:
                self._read_captioned_table(self._table)
        if self._pairs is not None:
            self.captions, self.counts, self.blocks = (
                self._pairs.captions,
                self._pairs.counts,
                self._pairs.blocks,
            )
        else:
            self.counts = ImageCounts(len(self.captions), len(self.captions))
        if not self.captions:
            raise DataError(NO_IMAGES.format(where=self.source.label))

    def _read_captioned_table(self, table) -> None:
        self._text = text_column(table.columns)
        missing = ["image"] * ("image" not in table.columns) + ["text, caption or prompt"] * (not self._text)
        if missing:
            raise DataError(NOT_CAPTIONED.format(where=self.source.label, columns="; ".join(missing)))
        captions = table.read_columns([self._text])[self._text].fillna("").astype(str)
        self.captions = captions.tolist()
        self.blocks = table.blocks(np.arange(table.num_rows))

    def __len__(self):
        return len(self.captions)

    def describe(self) -> str:
        """One line for the log: what was read, from where."""
        if self._pairs is not None:
            return self._pairs.describe()
        return self.source.describe(self._table.num_rows if self._table is not None else None)

    def __getitem__(self, index: int) -> dict:
        if self._pairs is not None:
            image = self._pairs._images(index)[0]
        elif self._table is None:
            image = self._paths[index]
        else:
            where, base = self._table.where(index)
            image = image_source(self._table.values(index, ("image",))[0], where, base)
        return {"caption": self.captions[index], "image": image_tensor(image, self.resolution)}


def _lists_pairs(source: Path) -> bool:
    """Whether a .jsonl lists preference pairs (``winner``/``loser``) rather than captioned images."""
    if source.name == "pairs.jsonl":
        return True
    first = _jsonl(source)[:1]
    return bool(first) and "winner" in first[0][1]


def _listed_images(source: Path) -> list[Path]:
    """Every image a .jsonl refers to, once each, in the order listed."""
    if _lists_pairs(source):
        paths = [path for _, winner, loser in _pairs_from_jsonl(source) for path in (winner, loser)]
    else:
        paths = [path for _, path in _images_from_jsonl(source)]
    return list(dict.fromkeys(paths))


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def data_fingerprint(path: str | Path, split: str = "train") -> str:
    """The content hash a run records, which changes whenever a listed image does.

    The export's own hash where its ``manifest.json`` holds one (it covers the images);
    for a ``.jsonl``, sha256 over its digest and the digest of every image it lists; for a
    single ``.parquet`` file, its digest (it holds its image bytes itself); for shards and
    ``save_to_disk`` data sets, sha256 over the split name and each shard's or ``.arrow``
    file's digest in reading order.
    """
    source = locate(path, split)
    if not source.legacy_hash:
        digest = hashlib.sha256(source.split.encode())
        for file in source.files:
            digest.update(_file_digest(file))
        return digest.hexdigest()
    file = source.files[0]
    manifest = file.parent / "manifest.json"
    if manifest.is_file():
        recorded = json.loads(manifest.read_text()).get("content_hash")
        if recorded:
            return recorded
    if file.suffix != ".jsonl":
        return _file_digest(file).hex()
    digest = hashlib.sha256(_file_digest(file))
    for image in _listed_images(file):
        digest.update(_file_digest(image))
    return digest.hexdigest()
