"""What the Hugging Face ecosystem writes, as training data (training.data_sources, data_tables).

Every table here follows one pattern over a global row number ``i`` (:func:`label_of`), so
each test knows which rows are kept and which image wins: 12 rows keep 0, 1, 3, 6, 7, 9.
"""

import io
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from training.data import CaptionedImages, DataError, PreferencePairs, data_fingerprint, image_tensor
from training.data_sources import EMPTY_GLOB, FILE_HAS_NO_SPLITS, UNKNOWN_SPLIT

TWELVE_ROWS_SUMMARY = "kept 6 of 12 pairs: 2 ties, 4 unlabelled"
KEPT_OF_TWELVE = [0, 1, 3, 6, 7, 9]


def png(i: int, side: int) -> bytes:
    """An 8×8 PNG of a colour unique to row ``i`` and image column ``side``."""
    buffer = io.BytesIO()
    colour = ((37 * i) % 256, (90 * side + 11 * i) % 256, (200 + 7 * i) % 256)
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def label_of(i: int) -> tuple[float | None, float | None, bool]:
    """(label_0, label_1, has_label) of row ``i``: decided, tie, no label or half a label."""
    return {
        0: (1.0, 0.0, True),
        1: (0.0, 1.0, True),
        2: (0.5, 0.5, True),  # tie
        3: (0.0, 1.0, True),
        4: (1.0, 0.0, False),  # has_label false
        5: (1.0, None, True),  # half-labelled
    }[i % 6]


def pairs_table(rows: range, image_feature: bool = False) -> pa.Table:
    """Pick-a-Pic v2 columns (plus one ignored) for rows ``i``; images as bytes or as the
    ``datasets`` Image feature's ``{bytes, path}`` struct."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())]) if image_feature else pa.binary()

    def images(side):
        cells = [png(i, side) for i in rows]
        return [{"bytes": c, "path": None} for c in cells] if image_feature else cells

    labels = [label_of(i) for i in rows]
    columns = {
        "caption": pa.array([f"caption {i}" for i in rows], pa.string()),
        "jpg_0": pa.array(images(0), image_type),
        "jpg_1": pa.array(images(1), image_type),
        "label_0": pa.array([label[0] for label in labels], pa.float64()),
        "label_1": pa.array([label[1] for label in labels], pa.float64()),
        "has_label": pa.array([label[2] for label in labels], pa.bool_()),
        "user_id": pa.array(list(rows), pa.int64()),
    }
    return pa.table(columns)


def write_shard(path, rows: range, row_group_size: int = 2, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pairs_table(rows, **kwargs), path, row_group_size=row_group_size)


def assert_pairs(data, kept: list[int]):
    """The dataset's items are rows ``kept``, each winner and loser the expected image."""
    assert len(data) == len(kept)
    assert data.captions == [f"caption {i}" for i in kept]
    for index, i in enumerate(kept):
        label_0, label_1, _ = label_of(i)
        win = 0 if label_0 > label_1 else 1
        item = data[index]
        assert item["caption"] == f"caption {i}"
        assert torch.equal(item["winner"], image_tensor(png(i, win), 8))
        assert torch.equal(item["loser"], image_tensor(png(i, 1 - win), 8))


@pytest.fixture
def hub_folder(tmp_path):
    """A Hub-style folder: 12 train rows in 3 shards (row groups of 2), 6 test rows."""
    folder = tmp_path / "hub"
    for k in range(3):
        write_shard(folder / f"data/train-{k:05d}-of-00003.parquet", range(4 * k, 4 * k + 4))
    write_shard(folder / "data/test-00000-of-00001.parquet", range(100, 106))
    return folder


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """``datasets`` offline, with any cache it writes under the test's folder."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return datasets


# -- Hugging Face data set folders ------------------------------------------------------------


def test_hub_folder_reads_the_train_shards_in_order_and_counts_what_it_skips(hub_folder):
    data = PreferencePairs(hub_folder, 8)
    assert_pairs(data, KEPT_OF_TWELVE)
    assert data.counts.summary() == TWELVE_ROWS_SUMMARY
    # Row groups (0,1) (2,3) | (4,5) (6,7) | (8,9) (10,11): the ones keeping nothing drop out.
    assert data.blocks == [2, 1, 2, 1] and sum(data.blocks) == len(data)
    assert data.describe() == f"Hugging Face data set folder {hub_folder} (split train, 3 shards, 12 rows)"


def test_hub_folder_reads_another_split(hub_folder):
    data = PreferencePairs(hub_folder, 8, split="test")
    assert_pairs(data, [102, 103, 105])
    assert data.counts.summary() == "kept 3 of 6 pairs: 1 tie, 2 unlabelled"


def test_an_unknown_split_names_the_splits_there(hub_folder):
    message = UNKNOWN_SPLIT.format(where=hub_folder, split="validation", splits="test, train")
    with pytest.raises(DataError) as error:
        PreferencePairs(hub_folder, 8, split="validation")
    assert str(error.value) == message


def test_blocks_are_the_row_group_sizes_when_every_row_is_kept(tmp_path):
    decided = [i for i in range(30) if i % 6 in (0, 1, 3)][:7]
    folder = tmp_path / "hub"
    folder.joinpath("data").mkdir(parents=True)
    table = pa.concat_tables([pairs_table(range(i, i + 1)) for i in decided])
    pq.write_table(table, folder / "data/train-00000-of-00001.parquet", row_group_size=3)
    data = PreferencePairs(folder, 8)
    assert data.blocks == [3, 3, 1]
    assert data.counts.summary() == "kept 7 of 7 pairs"


@pytest.mark.parametrize(
    "layout", ["data/train/part-{k}.parquet", "train/part-{k}.parquet", "data/{k:05d}.parquet"]
)
def test_other_hub_layouts(tmp_path, layout):
    """Shards in a split folder, or under data/ with no split in their names (then: train)."""
    for k in range(2):
        write_shard(tmp_path / "hub" / layout.format(k=k), range(6 * k, 6 * k + 6))
    assert_pairs(PreferencePairs(tmp_path / "hub", 8), KEPT_OF_TWELVE)


def test_the_card_data_files_decide_the_splits(tmp_path):
    folder = tmp_path / "hub"
    write_shard(folder / "pairs/b.parquet", range(6, 12))
    write_shard(folder / "pairs/a.parquet", range(0, 6))
    write_shard(folder / "held-out/only.parquet", range(100, 106))
    write_shard(folder / "data/train-00000-of-00001.parquet", range(200, 206))  # not what the card says
    card = {
        "license": "mit",
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": "train", "path": "pairs/*.parquet"},
                    {"split": "eval", "path": ["held-out/*.parquet"]},
                ],
            }
        ],
    }
    (folder / "README.md").write_text(f"---\n{json.dumps(card)}\n---\n# Pairs\n")
    assert_pairs(PreferencePairs(folder, 8), KEPT_OF_TWELVE)
    assert_pairs(PreferencePairs(folder, 8, split="eval"), [102, 103, 105])
    with pytest.raises(DataError, match="its splits: train, eval"):
        PreferencePairs(folder, 8, split="test")


def test_a_hub_folder_without_pick_a_pic_columns_names_them(tmp_path):
    (tmp_path / "hub/data").mkdir(parents=True)
    pq.write_table(pa.table({"caption": ["x"], "jpg_0": [b""]}), tmp_path / "hub/data/train.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) jpg_1, label_0, label_1"):
        PreferencePairs(tmp_path / "hub", 8)


def test_a_folder_of_nothing_known_says_what_was_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="holds none of pairs.jsonl.*save_to_disk.*Parquet shards"):
        PreferencePairs(tmp_path, 8)


def test_an_export_with_hub_shards_still_reads_pairs_jsonl(pairs_folder, tmp_path):
    """EvalHub's export gains data/train-*.parquet and a card; the pairs and the hash stay."""
    before = data_fingerprint(pairs_folder)
    folder = shutil.copytree(pairs_folder, tmp_path / "export")
    write_shard(folder / "data/train-00000-of-00001.parquet", range(6))
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files: data/train-*\n---\n"
    )
    data = PreferencePairs(folder, 8)
    assert data.captions == [f"a shape {i}" for i in range(4)]
    assert data.describe() == f"EvalHub export {folder} (pairs.jsonl)"
    assert data.blocks is None and data_fingerprint(folder) == before


# -- shard lists ----------------------------------------------------------------------------


def test_a_glob_reads_its_matches_in_sorted_order(tmp_path):
    write_shard(tmp_path / "shards/b.parquet", range(6, 12))
    write_shard(tmp_path / "shards/a.parquet", range(0, 6))
    data = PreferencePairs(str(tmp_path / "shards/*.parquet"), 8)
    assert_pairs(data, KEPT_OF_TWELVE)
    assert data.describe() == f"Parquet shards {tmp_path}/shards/*.parquet (2 shards, 12 rows)"


def test_a_comma_list_reads_its_items_in_the_order_given(tmp_path):
    write_shard(tmp_path / "b.parquet", range(6, 12))
    write_shard(tmp_path / "more/c.parquet", range(12, 18))
    write_shard(tmp_path / "more/a.parquet", range(0, 6))
    data = PreferencePairs(f"{tmp_path}/b.parquet,{tmp_path}/more/*.parquet", 8)
    assert_pairs(data, [6, 7, 9, 0, 1, 3, 12, 13, 15])


def test_a_glob_matching_nothing_names_the_pattern(tmp_path):
    pattern = f"{tmp_path}/none-*.parquet"
    with pytest.raises(DataError) as error:
        PreferencePairs(pattern, 8)
    assert str(error.value) == EMPTY_GLOB.format(pattern=pattern)


def test_a_file_has_no_other_split(tmp_path):
    write_shard(tmp_path / "one.parquet", range(6))
    with pytest.raises(DataError) as error:
        PreferencePairs(tmp_path / "one.parquet", 8, split="test")
    assert str(error.value) == FILE_HAS_NO_SPLITS.format(path=tmp_path / "one.parquet", split="test")


def test_building_a_dataset_reads_no_image_bytes(hub_folder, monkeypatch):
    """Only captions and labels are read up front; images a row group at a time, per item."""
    reads, groups = [], []
    read, read_row_group = pq.ParquetFile.read, pq.ParquetFile.read_row_group

    def spy_read(self, columns=None, **kwargs):
        reads.append(columns)
        return read(self, columns=columns, **kwargs)

    def spy_read_row_group(self, i, columns=None, **kwargs):
        groups.append(columns)
        return read_row_group(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", spy_read)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy_read_row_group)
    data = PreferencePairs(hub_folder, 8)
    assert reads and all(set(columns) <= {"caption", "label_0", "label_1", "has_label"} for columns in reads)
    assert groups == []
    data[0]
    assert groups == [["jpg_0", "jpg_1"]]


# -- save_to_disk -------------------------------------------------------------------------------


def test_a_saved_dataset_with_binary_columns(hf_home, tmp_path):
    hf_home.Dataset.from_dict(pairs_table(range(12)).to_pydict()).save_to_disk(str(tmp_path / "saved"))
    data = PreferencePairs(tmp_path / "saved", 8)
    assert_pairs(data, KEPT_OF_TWELVE)
    assert data.counts.summary() == TWELVE_ROWS_SUMMARY
    assert data.blocks is None
    assert data.describe() == f"save_to_disk data set {tmp_path / 'saved'} (split train, 12 rows)"


def test_a_saved_dataset_dict_with_the_image_feature(hf_home, tmp_path):
    def split(rows):
        dataset = hf_home.Dataset.from_dict(pairs_table(rows).to_pydict())
        return dataset.cast_column("jpg_0", hf_home.Image()).cast_column("jpg_1", hf_home.Image())

    hf_home.DatasetDict({"train": split(range(12)), "test": split(range(100, 106))}).save_to_disk(
        str(tmp_path / "saved")
    )
    assert_pairs(PreferencePairs(tmp_path / "saved", 8), KEPT_OF_TWELVE)
    assert_pairs(PreferencePairs(tmp_path / "saved", 8, split="test"), [102, 103, 105])
    with pytest.raises(DataError, match="has no split 'eval'; its splits: train, test"):
        PreferencePairs(tmp_path / "saved", 8, split="eval")
    winners = CaptionedImages(tmp_path / "saved", 8)
    assert winners.captions == [f"caption {i}" for i in KEPT_OF_TWELVE]
    assert torch.equal(winners[1]["image"], image_tensor(png(1, 1), 8))


def test_fingerprints_of_shards_and_saved_data_follow_their_bytes(hf_home, hub_folder, tmp_path):
    before = data_fingerprint(hub_folder)
    assert data_fingerprint(hub_folder) == before != data_fingerprint(hub_folder, "test")
    write_shard(hub_folder / "data/train-00001-of-00003.parquet", range(4, 7))
    assert data_fingerprint(hub_folder) != before
    hf_home.Dataset.from_dict(pairs_table(range(6)).to_pydict()).save_to_disk(str(tmp_path / "saved"))
    saved = data_fingerprint(tmp_path / "saved")
    shutil.rmtree(tmp_path / "saved")
    hf_home.Dataset.from_dict(pairs_table(range(1, 7)).to_pydict()).save_to_disk(str(tmp_path / "saved"))
    assert data_fingerprint(tmp_path / "saved") != saved


# -- captioned images -------------------------------------------------------------------------


def captioned_table(count: int) -> pa.Table:
    """``image`` as the Image feature's struct, ``text`` its caption."""
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.table(
        {
            "image": pa.array([{"bytes": png(i, 0), "path": f"{i}.png"} for i in range(count)], image),
            "text": [f"picture {i}" for i in range(count)],
        }
    )


def test_sft_reads_a_captioned_image_table(tmp_path):
    (tmp_path / "hub/data").mkdir(parents=True)
    pq.write_table(captioned_table(5), tmp_path / "hub/data/train-00000-of-00001.parquet", row_group_size=2)
    images = CaptionedImages(tmp_path / "hub", 8)
    assert images.captions == [f"picture {i}" for i in range(5)]
    assert torch.equal(images[3]["image"], image_tensor(png(3, 0), 8))
    assert images.counts.summary() == "kept 5 of 5 images"
    assert images.blocks == [2, 2, 1]
    with pytest.raises(DataError, match="missing column"):
        PreferencePairs(tmp_path / "hub", 8)


def test_sft_reads_a_saved_captioned_image_dataset(hf_home, tmp_path):
    dataset = hf_home.Dataset.from_dict(captioned_table(3).to_pydict()).cast_column("image", hf_home.Image())
    dataset.save_to_disk(str(tmp_path / "saved"))
    images = CaptionedImages(tmp_path / "saved", 8)
    assert images[2]["caption"] == "picture 2"
    assert torch.equal(images[2]["image"], image_tensor(png(2, 0), 8))
    assert images.blocks is None and images.counts.summary() == "kept 3 of 3 images"


def test_sft_on_hub_pairs_trains_on_the_winners(hub_folder):
    winners = CaptionedImages(hub_folder, 8)
    assert winners.counts.summary() == TWELVE_ROWS_SUMMARY
    assert winners.blocks == [2, 1, 2, 1]
    assert torch.equal(winners[0]["image"], image_tensor(png(0, 0), 8))
    assert torch.equal(winners[1]["image"], image_tensor(png(1, 1), 8))


def test_a_table_of_neither_kind_is_refused_for_sft(tmp_path):
    pq.write_table(pa.table({"image": [b"x"], "score": [1]}), tmp_path / "odd.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) text, caption or prompt"):
        CaptionedImages(tmp_path / "odd.parquet", 8)
