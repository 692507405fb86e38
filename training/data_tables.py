"""Tables of pairs or captioned images: Parquet shards, or a ``save_to_disk`` data set.

Only the small columns (caption, labels, text) are read whole, when a dataset is built;
image bytes are fetched per item.

Parquet shards are read one row group at a time through a per-process LRU cache of
:data:`ROW_GROUPS_CACHED` row groups. A sampler that draws row groups in random order and
shuffles within windows of whole groups (``training.sampling``, given ``.blocks``) thus
reads each group once per epoch and process, as long as a window spans at most that many
groups: the export writes 100-row groups, so a 1,024-example window spans 11. The cache
holds about one window's image bytes per process.

A ``save_to_disk`` data set is memory-mapped Arrow: any row is cheap to reach, and its
image columns are read as raw storage (bytes, or the Image feature's ``{bytes, path}``),
never decoded by ``datasets``.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.data_sources import DataError, Source

PICK_A_PIC = ("caption", "jpg_0", "jpg_1", "label_0", "label_1")  # has_label is optional
TEXT_COLUMNS = ("text", "caption", "prompt")  # a captioned-image table's caption, in preference
ROW_GROUPS_CACHED = 16  # per process; a sampler's window must span no more row groups

MISSING_COLUMNS = "{where}: not a Pick-a-Pic style table, missing column(s) {columns}"
NOT_CAPTIONED = (
    "{where}: neither Pick-a-Pic pairs nor captioned images (image, and text, caption or prompt); "
    "missing column(s) {columns}"
)
NO_IMAGE = "{where}: no image bytes"


@dataclass(frozen=True)
class DataCounts:
    """How many rows a source held and how many it kept; skipped ones by reason."""

    rows: int
    kept: int
    ties: int = 0
    unlabelled: int = 0  # has_label false, or either label missing
    unit: ClassVar[str] = "pairs"

    def summary(self) -> str:
        """``"kept 56 of 64 pairs: 6 ties, 2 unlabelled"``; only the reasons that occurred."""
        reasons = []
        if self.ties:
            reasons.append(f"{self.ties} {'tie' if self.ties == 1 else 'ties'}")
        if self.unlabelled:
            reasons.append(f"{self.unlabelled} unlabelled")
        kept = f"kept {self.kept} of {self.rows} {self.unit}"
        return f"{kept}: {', '.join(reasons)}" if reasons else kept


class ImageCounts(DataCounts):
    """A captioned-image source's counts: every row is kept."""

    unit = "images"


def decided_pairs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, DataCounts]:
    """The rows that are decided pairs, each one's winning image column (0 or 1), and the counts.

    A row is unlabelled when ``has_label`` is false or either label is missing (NaN != NaN,
    so it would otherwise pass as decided); a labelled row with equal labels is a tie.
    """
    labelled = frame["has_label"].fillna(False).astype(bool) if "has_label" in frame else True
    unlabelled = ~(labelled & frame["label_0"].notna() & frame["label_1"].notna())
    ties = ~unlabelled & (frame["label_0"] == frame["label_1"])
    kept = (~unlabelled & ~ties).to_numpy()
    winner = np.where(frame["label_0"].to_numpy()[kept] > frame["label_1"].to_numpy()[kept], 0, 1)
    counts = DataCounts(len(frame), int(kept.sum()), int(ties.sum()), int(unlabelled.sum()))
    return np.flatnonzero(kept), winner.astype(np.int8), counts


def text_column(columns: set[str]) -> str | None:
    return next((name for name in TEXT_COLUMNS if name in columns), None)


def image_source(value, where: str, base: Path) -> bytes | Path:
    """The bytes of a binary cell or an Image feature's ``{bytes, path}`` (else its file)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path"):
            for path in (Path(value["path"]), base / value["path"]):
                if path.is_file():
                    return path
    elif isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise DataError(NO_IMAGE.format(where=where))


def open_table(source: Source) -> "ParquetTable | ArrowTable":
    return ArrowTable(source) if source.kind == "arrow" else ParquetTable(source)


class ParquetTable:
    """Parquet shards as one table, rows numbered across shards in reading order."""

    def __init__(self, source: Source):
        self.files = tuple(str(path) for path in source.files)
        sizes, self._groups, self._shard_starts, shared = [], [], [], None
        for shard, path in enumerate(self.files):
            parquet = pq.ParquetFile(path)  # reads the footer only
            self._shard_starts.append(sum(sizes))
            names = set(parquet.schema_arrow.names)
            shared = names if shared is None else shared & names
            for group in range(parquet.num_row_groups):
                sizes.append(parquet.metadata.row_group(group).num_rows)
                self._groups.append((shard, group))
        self.columns: set[str] = shared or set()  # those every shard has
        self._starts = np.cumsum([0] + sizes)  # first row of each row group
        self.num_rows = int(self._starts[-1])

    def read_columns(self, names: list[str]) -> pd.DataFrame:
        """Whole columns of every shard; only ever the small ones."""
        frames = [pq.ParquetFile(path).read(columns=names).to_pandas() for path in self.files]
        return pd.concat(frames, ignore_index=True)

    def _locate(self, row: int) -> tuple[int, int, int]:
        """(shard, row group, row within the group) of a table row."""
        index = int(np.searchsorted(self._starts, row, side="right") - 1)
        return *self._groups[index], row - int(self._starts[index])

    def values(self, row: int, columns: tuple[str, ...]) -> tuple:
        shard, group, offset = self._locate(row)
        table = _row_group(self.files[shard], group, columns)
        return tuple(table.column(name)[offset].as_py() for name in columns)

    def where(self, row: int) -> tuple[str, Path]:
        """How an error names a row, and the folder an image path is relative to."""
        shard = self._locate(row)[0]
        path = Path(self.files[shard])
        return f"{path.name}, row {row - self._shard_starts[shard]}", path.parent

    def blocks(self, rows: np.ndarray) -> list[int]:
        """Kept rows per row group, in order, groups that keep none left out."""
        groups = np.searchsorted(self._starts, rows, side="right") - 1
        per_group = np.bincount(groups, minlength=len(self._groups))
        return [int(n) for n in per_group if n]


@lru_cache(maxsize=ROW_GROUPS_CACHED)
def _row_group(path: str, group: int, columns: tuple[str, ...]) -> pa.Table:
    return pq.ParquetFile(path).read_row_group(group, columns=list(columns))


class ArrowTable:
    """A ``save_to_disk`` split through ``datasets.load_from_disk`` (memory-mapped)."""

    def __init__(self, source: Source):
        import datasets  # slow to import; only this source needs it

        dataset = datasets.load_from_disk(str(source.folder), keep_in_memory=False)
        self._data = dataset.with_format("arrow")  # raw storage: Image cells stay {bytes, path}
        self._folder = source.folder
        self.columns: set[str] = set(dataset.column_names)
        self.num_rows = len(dataset)

    def read_columns(self, names: list[str]) -> pd.DataFrame:
        return self._data.select_columns(names)[:].to_pandas()

    def values(self, row: int, columns: tuple[str, ...]) -> tuple:
        table = self._data[int(row)]  # a one-row slice of the mapped table, nothing copied
        return tuple(table.column(name)[0].as_py() for name in columns)

    def where(self, row: int) -> tuple[str, Path]:
        return f"row {row}", self._folder

    def blocks(self, rows: np.ndarray) -> None:
        return None  # random access is cheap
