"""Where training data lives: what ``--data`` names, resolved to the files to read.

A :class:`Source` says which reader applies (``jsonl``, ``parquet`` or ``arrow``), which
files it reads in which order, and how to name it in the log. Nothing here reads a row;
:mod:`training.data_tables` and :mod:`training.data` do.
"""

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml


class DataError(ValueError):
    pass


# Messages users see (tests match them).
NOT_FOUND = "training data {path} does not exist"
UNKNOWN_FOLDER = (
    "{path} holds none of pairs.jsonl, metadata.jsonl, pairs.parquet, a save_to_disk data set "
    "(state.json or dataset_dict.json), Parquet shards under data/ or in a split folder"
)
UNKNOWN_SPLIT = "{where} has no split {split!r}; its splits: {splits}"
EMPTY_GLOB = "no file matches {pattern!r}"
NOT_PARQUET = "{path}: a shard must be a .parquet file"
UNKNOWN_FILE = "{name}: training data comes as .jsonl or .parquet"
FILE_HAS_NO_SPLITS = (
    "{path} is a file or a list of files and has no splits; split {split!r} applies to a data set folder"
)
BAD_CARD = "{path}: the YAML front matter does not parse ({error})"

EXPORT_FILES = ("pairs.jsonl", "metadata.jsonl", "pairs.parquet")  # a folder's own files, in preference


@dataclass(frozen=True)
class Source:
    kind: str  # "jsonl", "parquet" (shards read by row group) or "arrow" (a save_to_disk folder)
    files: tuple[Path, ...]  # the .jsonl, the shards in reading order, or the .arrow files
    split: str
    label: str  # how the log names it: "Hugging Face data set folder /x"
    details: tuple[str, ...] = ()  # shown in brackets after the label
    folder: Path | None = None  # the save_to_disk folder of the split (for load_from_disk)
    legacy_hash: bool = False  # fingerprinted as before splits existed: the file's digest alone

    def describe(self, rows: int | None = None) -> str:
        """One line for the log; ``rows`` is added for tables."""
        details = self.details + ((f"{rows} rows",) if rows is not None else ())
        return f"{self.label} ({', '.join(details)})" if details else self.label


def locate(data: str | Path, split: str = "train") -> Source:
    """The source ``data`` names: a file, a folder, or a comma list / glob of Parquet shards."""
    text = str(data)
    path = Path(text)
    if not path.exists() and ("," in text or glob.has_magic(text)):
        return _shard_list(text, split)
    if not path.exists():
        raise DataError(NOT_FOUND.format(path=path))
    if path.is_file():
        return _single_file(path, split)
    if split == "train":
        for name in EXPORT_FILES:
            if (path / name).is_file():
                return _single_file(path / name, split)
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return _saved_to_disk(path, split)
    shards = _hub_folder_shards(path, split)
    if shards is None:
        if any((path / name).is_file() for name in EXPORT_FILES):
            raise DataError(UNKNOWN_SPLIT.format(where=path, split=split, splits="train"))
        raise DataError(UNKNOWN_FOLDER.format(path=path))
    return Source(
        "parquet",
        shards,
        split,
        f"Hugging Face data set folder {path}",
        (f"split {split}", _shards(len(shards))),
    )


def _shards(count: int) -> str:
    return f"{count} shard" if count == 1 else f"{count} shards"


def _single_file(path: Path, split: str) -> Source:
    if split != "train":
        raise DataError(FILE_HAS_NO_SPLITS.format(path=path, split=split))
    if path.suffix == ".parquet":
        return Source("parquet", (path,), split, f"Parquet file {path}", legacy_hash=True)
    if path.suffix != ".jsonl":
        raise DataError(UNKNOWN_FILE.format(name=path.name))
    if path.name == "pairs.jsonl" and (path.parent / "images").is_dir():
        label, details = f"EvalHub export {path.parent}", ("pairs.jsonl",)
    elif path.name == "metadata.jsonl":
        label, details = f"image folder {path.parent}", ("metadata.jsonl",)
    else:
        label, details = f"JSON lines file {path}", ()
    return Source("jsonl", (path,), split, label, details, legacy_hash=True)


def _shard_list(text: str, split: str) -> Source:
    """Comma-separated files and glob patterns: each pattern's matches sorted, items in the given order."""
    if split != "train":
        raise DataError(FILE_HAS_NO_SPLITS.format(path=text, split=split))
    shards: list[Path] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise DataError(EMPTY_GLOB.format(pattern=item))
        elif Path(item).is_file():
            matches = [Path(item)]
        else:
            raise DataError(NOT_FOUND.format(path=item))
        shards.extend(matches)
    return Source("parquet", _parquet_only(shards), split, f"Parquet shards {text}", (_shards(len(shards)),))


def _parquet_only(files: list[Path]) -> tuple[Path, ...]:
    for path in files:
        if path.suffix != ".parquet":
            raise DataError(NOT_PARQUET.format(path=path))
    return tuple(dict.fromkeys(files))


# -- save_to_disk --------------------------------------------------------------------------


def _saved_to_disk(path: Path, split: str) -> Source:
    """A ``DatasetDict.save_to_disk`` folder (one subfolder per split) or a ``Dataset`` one."""
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        if split not in splits:
            raise DataError(UNKNOWN_SPLIT.format(where=path, split=split, splits=", ".join(splits)))
        folder = path / split
    else:
        folder = path
        recorded = _state(folder).get("_split") or "train"
        if split != str(recorded):
            raise DataError(UNKNOWN_SPLIT.format(where=path, split=split, splits=recorded))
    arrows = tuple(folder / entry["filename"] for entry in _state(folder)["_data_files"])
    return Source("arrow", arrows, split, f"save_to_disk data set {path}", (f"split {split}",), folder=folder)


def _state(folder: Path) -> dict:
    return json.loads((folder / "state.json").read_text())


# -- Hugging Face data set folder ------------------------------------------------------------


def _hub_folder_shards(folder: Path, split: str) -> tuple[Path, ...] | None:
    """The split's shards in a Hub-style folder, or None when the folder has no shards at all.

    The card's ``configs`` → ``data_files`` decide where they say; otherwise
    ``data/{split}-*.parquet``, ``data/{split}/*.parquet`` or ``{split}/*.parquet``, and for
    ``train`` with no file named for it, every ``data/*.parquet``.
    """
    declared = _card_data_files(folder)
    if declared is not None:
        if split not in declared:
            raise DataError(UNKNOWN_SPLIT.format(where=folder, split=split, splits=", ".join(declared)))
        shards = []
        for pattern in declared[split]:
            matches = sorted(p for p in folder.glob(pattern) if p.is_file())
            if not matches:
                raise DataError(EMPTY_GLOB.format(pattern=str(folder / pattern)))
            shards.extend(matches)
        return _parquet_only(shards)
    named = _named_splits(folder)
    loose = sorted((folder / "data").glob("*.parquet"))
    if split in named:
        return tuple(named[split])
    if split == "train" and loose:
        return tuple(loose)
    if not named and not loose:
        return None
    splits = sorted(set(named) | ({"train"} if loose else set()))
    raise DataError(UNKNOWN_SPLIT.format(where=folder, split=split, splits=", ".join(splits)))


def _named_splits(folder: Path) -> dict[str, list[Path]]:
    """Shards by the split their name gives, the first layout to name a split winning."""
    found: dict[str, list[Path]] = {}
    layouts: list[dict[str, list[Path]]] = [{}, {}, {}]
    for path in sorted((folder / "data").glob("*.parquet")):
        name = path.stem.split("-")[0]  # train-00000-of-00003 → train; 00000 names no split
        if re.fullmatch(r"[A-Za-z]\w*", name):
            layouts[0].setdefault(name, []).append(path)
    for index, base in ((1, folder / "data"), (2, folder)):
        for sub in sorted(p for p in base.glob("*") if p.is_dir() and not p.name.startswith(".")):
            shards = sorted(sub.glob("*.parquet"))
            if shards and not (index == 2 and sub.name == "data"):
                layouts[index][sub.name] = shards
    for layout in layouts:
        for name, shards in layout.items():
            found.setdefault(name, shards)
    return found


def _card_data_files(folder: Path) -> dict[str, list[str]] | None:
    """Split → glob patterns from README.md's front matter (the default config), if it says."""
    card = folder / "README.md"
    if not card.is_file():
        return None
    front = re.match(r"---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", card.read_text(encoding="utf-8"), re.S)
    if not front:
        return None
    try:
        meta = yaml.safe_load(front.group(1))
    except yaml.YAMLError as exc:
        raise DataError(BAD_CARD.format(path=card, error=exc)) from exc
    configs = meta.get("configs") if isinstance(meta, dict) else None
    if not isinstance(configs, list) or not configs:
        return None
    config = next(
        (c for c in configs if isinstance(c, dict) and c.get("default")),
        next((c for c in configs if isinstance(c, dict) and c.get("config_name") == "default"), configs[0]),
    )
    files = config.get("data_files") if isinstance(config, dict) else None
    if files is None:
        return None
    if isinstance(files, dict):
        return {str(split): _patterns(paths) for split, paths in files.items()}
    if isinstance(files, list) and files and all(isinstance(entry, dict) for entry in files):
        return {str(entry["split"]): _patterns(entry["path"]) for entry in files}
    return {"train": _patterns(files)}


def _patterns(paths: str | list[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else [str(p) for p in paths]
