"""Preference pairs and captioned images as datasets (training.data)."""

import io
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from tests.training.conftest import write_image
from training.data import (
    NO_PAIRS,
    CaptionedImages,
    DataCounts,
    DataError,
    ImageCounts,
    PreferencePairs,
    data_fingerprint,
    image_tensor,
)


def png_bytes(color, size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_tensor_resizes_the_short_side_and_center_crops(tmp_path):
    # 60×20: left third red, middle green, right blue → the center crop keeps the green.
    img = Image.new("RGB", (60, 20), (255, 0, 0))
    img.paste((0, 255, 0), (20, 0, 40, 20))
    img.paste((0, 0, 255), (40, 0, 60, 20))
    img.save(tmp_path / "strip.png")
    tensor = image_tensor(tmp_path / "strip.png", 16)
    assert tensor.shape == (3, 16, 16)
    assert tensor.min() >= -1 and tensor.max() <= 1
    assert torch.allclose(tensor[:, 8, 8], torch.tensor([-1.0, 1.0, -1.0]))


def test_export_folder_gives_winner_and_loser(pairs_folder):
    data = PreferencePairs(pairs_folder, 32)
    assert len(data) == 4
    assert data.counts.summary() == "kept 4 of 4 pairs" and data.blocks is None
    assert data.describe() == f"EvalHub export {pairs_folder} (pairs.jsonl)"
    item = data[1]
    assert item["caption"] == "a shape 1"
    assert item["winner"].shape == item["loser"].shape == (3, 32, 32)
    assert torch.equal(item["winner"], image_tensor(pairs_folder / "images/1w.png", 32))


def test_pick_a_pic_parquet_skips_ties_and_unlabelled_rows(tmp_path):
    red, blue, green = png_bytes((255, 0, 0)), png_bytes((0, 0, 255)), png_bytes((0, 255, 0))
    table = pa.table(
        {
            "caption": ["first wins", "tie", "second wins", "no label"],
            "jpg_0": [red, red, red, red],
            "jpg_1": [blue, blue, green, blue],
            "label_0": [1.0, 0.5, 0.0, 1.0],
            "label_1": [0.0, 0.5, 1.0, 0.0],
            "has_label": [True, True, True, False],
        }
    )
    pq.write_table(table, tmp_path / "pairs.parquet", row_group_size=2)
    data = PreferencePairs(tmp_path / "pairs.parquet", 8)
    assert data.captions == ["first wins", "second wins"]
    assert data.counts.summary() == "kept 2 of 4 pairs: 1 tie, 1 unlabelled"
    assert data.blocks == [1, 1]  # one kept row in each row group
    assert data.describe() == f"Parquet file {tmp_path / 'pairs.parquet'} (4 rows)"
    first, second = data[0], data[1]
    assert first["winner"][:, 0, 0].tolist() == [1.0, -1.0, -1.0]  # red
    assert first["loser"][:, 0, 0].tolist() == [-1.0, -1.0, 1.0]  # blue
    assert second["winner"][:, 0, 0].tolist() == [-1.0, 1.0, -1.0]  # green, jpg_1
    assert second["loser"][:, 0, 0].tolist() == [1.0, -1.0, -1.0]


def test_pick_a_pic_parquet_skips_rows_missing_a_label(tmp_path):
    """A row with a null label is not a decided pair, though NaN != NaN."""
    red, blue = png_bytes((255, 0, 0)), png_bytes((0, 0, 255))
    table = pa.table(
        {
            "caption": ["both missing", "first missing", "second missing", "decided"],
            "jpg_0": [red] * 4,
            "jpg_1": [blue] * 4,
            "label_0": [None, None, 1.0, 0.0],
            "label_1": [None, 0.0, None, 1.0],
            "has_label": [True] * 4,
        },
        schema=pa.schema(
            [
                ("caption", pa.string()),
                ("jpg_0", pa.binary()),
                ("jpg_1", pa.binary()),
                ("label_0", pa.float64()),
                ("label_1", pa.float64()),
                ("has_label", pa.bool_()),
            ]
        ),
    )
    pq.write_table(table, tmp_path / "pairs.parquet")
    data = PreferencePairs(tmp_path / "pairs.parquet", 8)
    assert data.captions == ["decided"]
    assert data.counts == DataCounts(rows=4, kept=1, ties=0, unlabelled=3)
    assert torch.equal(data[0]["winner"], image_tensor(blue, 8))


def test_parquet_without_the_pick_a_pic_columns_is_refused(tmp_path):
    pq.write_table(pa.table({"caption": ["x"]}), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="missing column"):
        PreferencePairs(tmp_path / "bad.parquet", 8)


def test_all_tied_data_is_refused(tmp_path):
    img = png_bytes((1, 2, 3))
    table = pa.table({"caption": ["t"], "jpg_0": [img], "jpg_1": [img], "label_0": [0.5], "label_1": [0.5]})
    pq.write_table(table, tmp_path / "ties.parquet")
    message = NO_PAIRS.format(
        where=f"Parquet file {tmp_path / 'ties.parquet'}", summary="kept 0 of 1 pairs: 1 tie"
    )
    with pytest.raises(DataError) as error:
        PreferencePairs(tmp_path / "ties.parquet", 8)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("counts", "summary"),
    [
        (DataCounts(64, 56, 6, 2), "kept 56 of 64 pairs: 6 ties, 2 unlabelled"),
        (DataCounts(64, 64, 0, 0), "kept 64 of 64 pairs"),
        (DataCounts(5, 4, 0, 1), "kept 4 of 5 pairs: 1 unlabelled"),
        (DataCounts(5, 4, 1, 0), "kept 4 of 5 pairs: 1 tie"),
        (ImageCounts(10, 10), "kept 10 of 10 images"),
    ],
)
def test_counts_name_only_the_reasons_that_occurred(counts, summary):
    assert counts.summary() == summary


def test_a_missing_image_names_its_line(tmp_path):
    write_image(tmp_path / "a.png", 0)
    (tmp_path / "pairs.jsonl").write_text(
        json.dumps({"prompt": "p", "winner": "a.png", "loser": "a.png"})
        + "\n"
        + json.dumps({"prompt": "p", "winner": "a.png", "loser": "gone.png"})
        + "\n"
    )
    with pytest.raises(DataError, match="line 1: winner and loser are the same"):
        PreferencePairs(tmp_path, 8)
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "winner": "a.png", "loser": "gone.png"}))
    with pytest.raises(DataError, match=r"line 1: image 'gone.png' not found"):
        PreferencePairs(tmp_path, 8)


def test_sft_from_metadata_and_from_pair_winners(sft_folder, pairs_folder):
    images = CaptionedImages(sft_folder, 16)
    assert len(images) == 3 and images[2]["caption"] == "picture 2"
    assert images.counts.summary() == "kept 3 of 3 images" and images.blocks is None
    assert images.describe() == f"image folder {sft_folder} (metadata.jsonl)"
    assert images[0]["image"].shape == (3, 16, 16)
    winners = CaptionedImages(pairs_folder, 16)
    assert len(winners) == 4
    assert torch.equal(winners[0]["image"], image_tensor(pairs_folder / "images/0w.png", 16))


def test_sft_jsonl_with_image_and_caption_keys(tmp_path):
    write_image(tmp_path / "x.png", 3)
    (tmp_path / "set.jsonl").write_text(json.dumps({"image": "x.png", "caption": "an x"}) + "\n")
    assert CaptionedImages(tmp_path / "set.jsonl", 8)[0]["caption"] == "an x"


def test_unknown_locations_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        PreferencePairs(tmp_path / "nowhere", 8)
    with pytest.raises(DataError, match="holds none of"):
        PreferencePairs(tmp_path, 8)


def test_fingerprint_prefers_the_export_manifest(pairs_folder, tmp_path):
    plain = data_fingerprint(pairs_folder)
    assert len(plain) == 64
    (tmp_path / "pairs.jsonl").write_text((pairs_folder / "pairs.jsonl").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({"content_hash": "abc123"}))
    assert data_fingerprint(tmp_path) == "abc123"


@pytest.mark.parametrize("source", ["sft", "pairs"])
def test_fingerprint_changes_when_a_listed_image_changes(sft_folder, pairs_folder, tmp_path, source):
    """Without an export manifest the hash covers the image bytes, not only the .jsonl."""
    folder = shutil.copytree(sft_folder if source == "sft" else pairs_folder, tmp_path / "data")
    before = data_fingerprint(folder)
    assert data_fingerprint(folder) == before
    image = folder / ("0.png" if source == "sft" else "images/0l.png")
    write_image(image, seed=999)
    assert data_fingerprint(folder) != before
