"""Training data: preference pairs and captioned images, as PyTorch datasets.

Pair sources (``dpo``/``simpo``, and ``sft`` on the winners):

- the web app's preference export: a folder with ``pairs.jsonl`` (``prompt``, ``winner``,
  ``loser`` as paths relative to the folder) and ``images/``, or such a ``.jsonl`` alone;
- a Pick-a-Pic v2 style ``.parquet`` (``caption``, ``jpg_0``, ``jpg_1`` image bytes,
  ``label_0``, ``label_1``, optional ``has_label``). Tied rows (label 0.5 each), rows
  with ``has_label`` false and rows missing either label are skipped, never counted as a
  win. Image bytes are read one row
  group at a time, so a large file is not loaded whole.

Captioned images (``sft``): a folder with ``metadata.jsonl`` (the Hugging Face
imagefolder layout: ``file_name``, ``text``) or a ``.jsonl`` whose lines hold ``image``
(or ``file_name``) and ``caption`` (or ``text``/``prompt``).

Images are resized so the shorter side is the training resolution and center-cropped,
then scaled to [−1, 1]. Random choices (flip, empty prompt) happen in the trainer from the
step's seeded generator, so a winner and its loser are flipped together and a resumed run
draws exactly what an uninterrupted one would.
"""

import hashlib
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset


class DataError(ValueError):
    pass


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


@dataclass(frozen=True)
class PairRow:
    caption: str
    winner: Path | int  # a file, or a Parquet row whose jpg_{winner_column} wins
    loser: Path | int
    winner_column: int = 0


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


def _pairs_from_jsonl(path: Path) -> list[PairRow]:
    rows = []
    for line, record in _jsonl(path):
        where = f"{path.name}, line {line}"
        caption = _field(record, ("prompt", "caption"), where)
        winner = _existing(path.parent, _field(record, ("winner",), where), where)
        loser = _existing(path.parent, _field(record, ("loser",), where), where)
        if winner == loser:
            raise DataError(f"{where}: winner and loser are the same image")
        rows.append(PairRow(caption, winner, loser))
    return rows


def _pairs_from_parquet(path: Path) -> list[PairRow]:
    parquet = pq.ParquetFile(path)
    columns = set(parquet.schema_arrow.names)
    missing = {"caption", "jpg_0", "jpg_1", "label_0", "label_1"} - columns
    if missing:
        raise DataError(
            f"{path.name}: not a Pick-a-Pic style file, missing column(s) {', '.join(sorted(missing))}"
        )
    wanted = ["caption", "label_0", "label_1"] + (["has_label"] if "has_label" in columns else [])
    table = parquet.read(columns=wanted).to_pandas()
    labelled = table["has_label"].fillna(False).astype(bool) if "has_label" in table else True
    # Both labels must be present: NaN != NaN, so a row missing one would pass as decided.
    present = table["label_0"].notna() & table["label_1"].notna()
    decided = labelled & present & (table["label_0"] != table["label_1"])
    return [
        PairRow(str(row.caption), i, i, winner_column=0 if row.label_0 > row.label_1 else 1)
        for i, row in zip(table.index[decided], table[decided].itertuples(index=False), strict=True)
    ]


def _images_from_jsonl(path: Path) -> list[tuple[str, Path]]:
    rows = []
    for line, record in _jsonl(path):
        where = f"{path.name}, line {line}"
        image = _existing(path.parent, _field(record, ("file_name", "image"), where), where)
        rows.append((_field(record, ("text", "caption", "prompt"), where), image))
    return rows


def _locate(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"training data {path} does not exist")
    if path.is_file():
        return path
    for name in ("pairs.jsonl", "metadata.jsonl", "pairs.parquet"):
        if (path / name).is_file():
            return path / name
    raise DataError(f"{path} holds none of pairs.jsonl, metadata.jsonl, pairs.parquet")


class PreferencePairs(Dataset):
    """(caption, winner, loser) items; images as ``[3, R, R]`` tensors."""

    def __init__(self, path: str | Path, resolution: int):
        self.source = _locate(Path(path))
        self.resolution = resolution
        if self.source.suffix == ".parquet":
            self.rows = _pairs_from_parquet(self.source)
            self._parquet = pq.ParquetFile(self.source)
            self._group_starts = np.cumsum(
                [0]
                + [self._parquet.metadata.row_group(g).num_rows for g in range(self._parquet.num_row_groups)]
            )
        elif self.source.suffix == ".jsonl":
            self.rows = _pairs_from_jsonl(self.source)
        else:
            raise DataError(f"{self.source.name}: pairs come as .jsonl or .parquet")
        if not self.rows:
            raise DataError(f"{self.source} holds no decided preference pair")

    def __len__(self):
        return len(self.rows)

    def _parquet_bytes(self, row: int, column: int) -> bytes:
        group = int(np.searchsorted(self._group_starts, row, side="right") - 1)
        value = _row_group(self.source, group)[f"jpg_{column}"][row - self._group_starts[group]]
        return value["bytes"] if isinstance(value, dict) else value

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        if isinstance(row.winner, Path):
            winner, loser = row.winner, row.loser
        else:
            winner = self._parquet_bytes(row.winner, row.winner_column)
            loser = self._parquet_bytes(row.loser, 1 - row.winner_column)
        return {
            "caption": row.caption,
            "winner": image_tensor(winner, self.resolution),
            "loser": image_tensor(loser, self.resolution),
        }


@lru_cache(maxsize=2)
def _row_group(path: Path, group: int) -> dict:
    return pq.ParquetFile(path).read_row_group(group, columns=["jpg_0", "jpg_1"]).to_pydict()


class CaptionedImages(Dataset):
    """(caption, image) items for SFT; a pair source contributes its winners."""

    def __init__(self, path: str | Path, resolution: int):
        self.source = _locate(Path(path))
        self.resolution = resolution
        self._pairs = None
        if self.source.suffix == ".parquet" or _lists_pairs(self.source):
            self._pairs = PreferencePairs(self.source, resolution)
        else:
            self.rows = _images_from_jsonl(self.source)
            if not self.rows:
                raise DataError(f"{self.source} lists no image")

    def __len__(self):
        return len(self._pairs) if self._pairs is not None else len(self.rows)

    def __getitem__(self, index: int) -> dict:
        if self._pairs is not None:
            item = self._pairs[index]
            return {"caption": item["caption"], "image": item["winner"]}
        caption, path = self.rows[index]
        return {"caption": caption, "image": image_tensor(path, self.resolution)}


def _lists_pairs(source: Path) -> bool:
    """Whether a .jsonl lists preference pairs (``winner``/``loser``) rather than captioned images."""
    if source.name == "pairs.jsonl":
        return True
    first = _jsonl(source)[:1]
    return bool(first) and "winner" in first[0][1]


def _listed_images(source: Path) -> list[Path]:
    """Every image a .jsonl refers to, once each, in the order listed."""
    if _lists_pairs(source):
        paths = [path for row in _pairs_from_jsonl(source) for path in (row.winner, row.loser)]
    else:
        paths = [path for _, path in _images_from_jsonl(source)]
    return list(dict.fromkeys(paths))


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def data_fingerprint(path: str | Path) -> str:
    """The content hash a run records, which changes whenever a listed image does.

    The export's own hash where its ``manifest.json`` holds one (it covers the images);
    else sha256 over the file's digest and, for a ``.jsonl``, the digest of every image it
    lists (a Parquet file holds its image bytes itself).
    """
    source = _locate(Path(path))
    manifest = source.parent / "manifest.json"
    if manifest.is_file():
        recorded = json.loads(manifest.read_text()).get("content_hash")
        if recorded:
            return recorded
    if source.suffix != ".jsonl":
        return _file_digest(source).hex()
    digest = hashlib.sha256(_file_digest(source))
    for image in _listed_images(source):
        digest.update(_file_digest(image))
    return digest.hexdigest()
