"""Generated-image import from a JSONL manifest: opaque names, stripped metadata,
duplicates, and all-or-nothing rejection of bad rows."""

import io
import json
import re
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from PIL import Image

from evalhub.catalog import errors, image_import, limits
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_files import canonical_png
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import GeneratedImage, ModelVersion, PromptSet
from tests.catalog.hostile_files import nested_json, png_claiming
from tests.factories import ModelVersionFactory, PromptFactory, PromptSetFactory, jpeg_with_exif, png_bytes

OPAQUE_NAME = re.compile(r"^images/[0-9a-f]{2}/[0-9a-f]{32}\.png$")
COLORS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250), (250, 0, 250)]


@pytest.fixture
def prompt_set(db):
    prompt_set = PromptSetFactory(name="shapes")
    PromptFactory(prompt_set=prompt_set, text="a red circle", position=0)
    PromptFactory(prompt_set=prompt_set, text="a blue square", position=1)
    ModelVersionFactory(name="sd15-base")
    return prompt_set


def write_images(folder: Path, count: int, name="sd15-base_{i}.png", **png) -> list[str]:
    """``count`` PNGs of different colours; returns their names."""
    names = []
    for i in range(count):
        names.append(name.format(i=i))
        (folder / names[-1]).write_bytes(png_bytes(color=COLORS[i], **png))
    return names


def manifest(*rows: dict | str) -> str:
    """JSONL of ``rows``; a string row is a line as it is."""
    return "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n"


def row(image: str, index: int = 0, prompt: str = "a red circle", model: str = "sd15-base", **extra) -> dict:
    return {"prompt": prompt, "model": model, "seed": 1000 + index, "index": index, "image": image, **extra}


def run_import(prompt_set, folder: Path, text: str, **kwargs):
    return generated_images_import(
        prompt_set=prompt_set, manifest=text, source=DirectorySource(folder), **kwargs
    )


def stored_files(media_root: Path) -> list[Path]:
    return [path for path in media_root.rglob("*") if path.is_file()]


def test_it_imports_every_row_with_its_metadata(prompt_set, tmp_path):
    """Each manifest row becomes an image with its seed, index, settings and size."""
    names = write_images(tmp_path, 3)
    result = run_import(
        prompt_set,
        tmp_path,
        manifest(
            row(names[0], 0, settings={"steps": 50, "guidance": 7.5}),
            row(names[1], 1),
            row(names[2], 0, prompt="a blue square"),
        ),
    )
    assert (result.created, result.skipped, result.models_created) == (3, 0, [])
    image = GeneratedImage.objects.get(prompt__text="a red circle", index=0)
    assert (image.seed, image.settings, image.width, image.height) == (
        1000,
        {"steps": 50, "guidance": 7.5},
        16,
        12,
    )
    assert image.model_version.name == "sd15-base"
    assert len(image.sha256) == 64


def test_it_stores_images_under_opaque_names_only(prompt_set, tmp_path, media_root):
    """Stored file names carry neither the model's name nor the original file name."""
    names = write_images(tmp_path, 2, name="sd15-base-seed{i}-original.png")
    run_import(prompt_set, tmp_path, manifest(row(names[0], 0), row(names[1], 1)))
    for image in GeneratedImage.objects.all():
        assert OPAQUE_NAME.match(image.file.name), image.file.name
        assert image.public_id in image.file.name
        assert "sd15" not in image.file.name and "original" not in image.file.name
    assert {path.name for path in stored_files(media_root)} == {
        f"{image.public_id}.png" for image in GeneratedImage.objects.all()
    }


def test_it_strips_png_text_chunks(prompt_set, tmp_path, media_root):
    """A PNG's tEXt chunks (such as generation parameters) do not survive the import."""
    (tmp_path / "a.png").write_bytes(
        png_bytes(text_chunks={"parameters": "model: sd15-base, seed 1000", "Software": "secret-ui"})
    )
    run_import(prompt_set, tmp_path, manifest(row("a.png")))
    data = stored_files(media_root)[0].read_bytes()
    assert b"sd15" not in data and b"secret-ui" not in data and b"tEXt" not in data
    with Image.open(io.BytesIO(data)) as stored:
        assert stored.info == {} or set(stored.info) <= {"dpi"}
        assert stored.getpixel((0, 0)) == (200, 30, 30)


def test_it_strips_exif_and_applies_its_orientation(prompt_set, tmp_path, media_root):
    """EXIF tags are dropped; a rotated photo is stored upright."""
    (tmp_path / "a.jpg").write_bytes(jpeg_with_exif(size=(20, 10), orientation=6, software="sd15-base"))
    run_import(prompt_set, tmp_path, manifest(row("a.jpg")))
    image = GeneratedImage.objects.get()
    assert (image.width, image.height) == (10, 20)
    data = stored_files(media_root)[0].read_bytes()
    assert b"sd15" not in data and b"Exif" not in data
    with Image.open(io.BytesIO(data)) as stored:
        assert not stored.getexif()
        assert stored.format == "PNG"


def test_it_creates_unknown_models_only_when_asked(prompt_set, tmp_path):
    """An unknown model name is an error unless create_models is set."""
    names = write_images(tmp_path, 1)
    with pytest.raises(ImportRejected) as caught:
        run_import(prompt_set, tmp_path, manifest(row(names[0], model="pixart-dpo")))
    assert str(caught.value) == "line 1: " + errors.UNKNOWN_MODEL.format(name="pixart-dpo")
    result = run_import(prompt_set, tmp_path, manifest(row(names[0], model="pixart-dpo")), create_models=True)
    assert result.models_created == ["pixart-dpo"]
    assert ModelVersion.objects.get(name="pixart-dpo").kind == "base"


def test_running_the_same_import_twice_skips_what_is_there(prompt_set, tmp_path, media_root):
    """A re-run of an identical manifest creates nothing new."""
    names = write_images(tmp_path, 2)
    text = manifest(row(names[0], 0), row(names[1], 1))
    run_import(prompt_set, tmp_path, text)
    result = run_import(prompt_set, tmp_path, text)
    assert (result.created, result.skipped) == (0, 2)
    assert GeneratedImage.objects.count() == 2
    assert len(stored_files(media_root)) == 2


def test_it_rejects_an_image_identical_to_an_earlier_row(prompt_set, tmp_path):
    """Two rows with byte-identical pixels are a duplicate, whatever their file names."""
    (tmp_path / "a.png").write_bytes(png_bytes())
    (tmp_path / "b.png").write_bytes(png_bytes(text_chunks={"note": "same pixels, other metadata"}))
    with pytest.raises(ImportRejected) as caught:
        run_import(prompt_set, tmp_path, manifest(row("a.png", 0), row("b.png", 1)))
    assert str(caught.value) == "line 2: " + errors.DUPLICATE_IMAGE_IN_FILE.format(path="b.png", first_line=1)


def test_a_file_listed_twice_is_refused_before_it_is_decoded_again(prompt_set, tmp_path, monkeypatch):
    """The same bytes on two rows are a duplicate found by their hash, with one decode."""
    (tmp_path / "a.png").write_bytes(png_bytes())
    decoded = []
    decoding = canonical_png

    def counting(data, **kwargs):
        decoded.append(len(data))
        return decoding(data, **kwargs)

    monkeypatch.setattr(image_import, "canonical_png", counting)
    with pytest.raises(ImportRejected) as caught:
        run_import(prompt_set, tmp_path, manifest(row("a.png", 0), row("a.png", 1)))
    assert str(caught.value) == "line 2: " + errors.DUPLICATE_IMAGE_IN_FILE.format(path="a.png", first_line=1)
    assert len(decoded) == 1


def test_it_rejects_an_image_identical_to_a_stored_one(prompt_set, tmp_path):
    """An image already imported elsewhere is reported with where it is."""
    names = write_images(tmp_path, 1)
    run_import(prompt_set, tmp_path, manifest(row(names[0], 0)))
    with pytest.raises(
        ImportRejected,
        match=r"line 1: image .* is identical \(sha256 [0-9a-f]{12}\) to an image "
        r"already imported for model version 'sd15-base', prompt 'a red circle'",
    ):
        run_import(prompt_set, tmp_path, manifest(row(names[0], 0, prompt="a blue square")))


def test_it_rejects_a_different_image_in_an_occupied_slot(prompt_set, tmp_path):
    """The same model, prompt and index with other pixels is a conflict, not an update."""
    names = write_images(tmp_path, 2)
    run_import(prompt_set, tmp_path, manifest(row(names[0], 0)))
    with pytest.raises(ImportRejected) as caught:
        run_import(prompt_set, tmp_path, manifest(row(names[1], 0)))
    assert caught.value.detail == errors.CONFLICTING_IMAGE.format(
        model="sd15-base", index=0, prompt="a red circle"
    )


def test_it_rejects_two_rows_for_one_slot(prompt_set, tmp_path):
    """One (model, prompt, index) may appear once in a manifest."""
    names = write_images(tmp_path, 2)
    with pytest.raises(ImportRejected) as caught:
        run_import(prompt_set, tmp_path, manifest(row(names[0], 0), row(names[1], 0)))
    assert caught.value.line == 2
    assert caught.value.detail == errors.DUPLICATE_SLOT_IN_FILE.format(
        model="sd15-base", index=0, first_line=1
    )


BAD_ROWS = {
    "unknown prompt": (
        row("x.png", prompt="a green star"),
        errors.UNKNOWN_PROMPT.format(text="a green star", prompt_set="shapes"),
    ),
    "missing field": (
        {"prompt": "a red circle", "model": "sd15-base", "index": 2, "image": "x.png"},
        errors.MISSING_FIELD.format(field="seed"),
    ),
    "seed as text": (
        row("x.png", 2) | {"seed": "1234"},
        errors.WRONG_TYPE.format(field="seed", expected="an integer", got="a string"),
    ),
    "seed as boolean": (
        row("x.png", 2) | {"seed": True},
        errors.WRONG_TYPE.format(field="seed", expected="an integer", got="a boolean"),
    ),
    "fractional index": (
        row("x.png", 2) | {"index": 1.5},
        errors.WRONG_TYPE.format(field="index", expected="an integer", got="a number"),
    ),
    "negative index": (
        row("x.png", -1),
        errors.OUT_OF_RANGE.format(field="index", low=0, high=2**31 - 1, value=-1),
    ),
    "settings not an object": (
        row("x.png", 2, settings=[50]),
        errors.WRONG_TYPE.format(field="settings", expected="an object", got="a list"),
    ),
    "unknown field": (
        row("x.png", 2, modle="typo"),
        errors.UNKNOWN_FIELDS.format(fields="modle", expected="prompt, model, seed, index, settings, image"),
    ),
    "missing file": (row("nowhere.png", 2), errors.IMAGE_NOT_FOUND.format(path="nowhere.png")),
    "not an image": (row("notes.png", 2), None),
    "truncated image": (row("truncated.png", 2), None),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_bad_row_stops_the_import_and_leaves_nothing_behind(case, prompt_set, tmp_path, media_root):
    """Rows before the bad one are rolled back: no database rows, no stored files."""
    names = write_images(tmp_path, 2)
    (tmp_path / "x.png").write_bytes(png_bytes(color=(9, 9, 9)))
    (tmp_path / "notes.png").write_text("these are not pixels")
    (tmp_path / "truncated.png").write_bytes(png_bytes(color=(1, 2, 3), size=(64, 64))[:60])
    bad_row, message = BAD_ROWS[case]
    with pytest.raises(ImportRejected) as caught:
        run_import(prompt_set, tmp_path, manifest(row(names[0], 0), row(names[1], 1), bad_row))
    assert caught.value.line == 3
    if message is None:
        assert caught.value.detail.startswith(
            errors.IMAGE_UNREADABLE.split("(")[0].format(path=bad_row["image"])
        )
    else:
        assert caught.value.detail == message
    assert not GeneratedImage.objects.exists()
    assert stored_files(media_root) == []


BIGINT, POSITIVE_INT = 2**63 - 1, 2**31 - 1
RAW_ROW = '{"prompt": "a red circle", "model": "sd15-base", "seed": 7, "index": 2, "image": "x.png", '
UNSAFE_ROWS = {
    "seed beyond 64 bits": (
        row("x.png", 2) | {"seed": 2**70},
        errors.OUT_OF_RANGE.format(field="seed", low=-BIGINT - 1, high=BIGINT, value=2**70),
    ),
    "seed below 64 bits": (
        row("x.png", 2) | {"seed": -(2**63) - 1},
        errors.OUT_OF_RANGE.format(field="seed", low=-BIGINT - 1, high=BIGINT, value=-(2**63) - 1),
    ),
    "index beyond 31 bits": (
        row("x.png", 2**40),
        errors.OUT_OF_RANGE.format(field="index", low=0, high=POSITIVE_INT, value=2**40),
    ),
    "settings nested 100,000 deep": (
        RAW_ROW + '"settings": {"a": ' + nested_json(100_000) + "}}",
        errors.JSON_TOO_DEEP.format(limit=limits.MAX_JSON_DEPTH.default),
    ),
    "NaN in settings": (
        RAW_ROW + '"settings": {"guidance": NaN}}',
        errors.NOT_JSON.format(error="NaN is not a JSON number"),
    ),
    "infinite number in settings": (
        RAW_ROW + '"settings": {"guidance": 1e400}}',
        errors.NOT_FINITE.format(field="settings"),
    ),
    "NUL in a settings string": (
        row("x.png", 2, settings={"negative": ["blurry", "ugly\x00"]}),
        errors.CONTROL_CHARACTER.format(field="settings", code=0),
    ),
    "NUL in the image path": (
        row("x.png\x00.txt", 2),
        errors.CONTROL_CHARACTER.format(field="image", code=0),
    ),
    "escape sequence in the model name": (
        row("x.png", 2, model="sd15\x1b[2J"),
        errors.CONTROL_CHARACTER.format(field="model", code=0x1B),
    ),
    "model name longer than its column": (
        row("x.png", 2, model="m" * 201),
        errors.TOO_LONG.format(field="model", limit=200),
    ),
    "image declaring 10000×10000 pixels": (
        row("huge.png", 2),
        errors.IMAGE_TOO_MANY_PIXELS.format(path="huge.png", width=10000, height=10000, limit=40_000_000),
    ),
}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("case", sorted(UNSAFE_ROWS))
def test_an_unsafe_row_is_refused_with_its_line_and_leaves_nothing(case, prompt_set, tmp_path, media_root):
    """An unsafe row stops the import with its line; no row, model or file is left."""
    names = write_images(tmp_path, 2)
    (tmp_path / "x.png").write_bytes(png_bytes(color=(9, 9, 9)))
    (tmp_path / "huge.png").write_bytes(png_claiming(10000, 10000))
    bad_row, message = UNSAFE_ROWS[case]
    with pytest.raises(ImportRejected) as caught:
        run_import(
            prompt_set,
            tmp_path,
            manifest(row(names[0], 0), row(names[1], 1, model="new-model"), bad_row),
            create_models=True,
        )
    assert (caught.value.line, caught.value.detail) == (3, message)
    assert not GeneratedImage.objects.exists()
    assert not ModelVersion.objects.filter(name="new-model").exists()
    assert stored_files(media_root) == []


def test_the_pixel_limit_is_a_setting(prompt_set, tmp_path, settings):
    """EVALHUB_MAX_IMAGE_PIXELS lowers the bound; the image is refused before decoding."""
    settings.EVALHUB_MAX_IMAGE_PIXELS = 100
    (tmp_path / "a.png").write_bytes(png_bytes(size=(16, 12)))
    with pytest.raises(ImportRejected) as caught:
        run_import(prompt_set, tmp_path, manifest(row("a.png")))
    assert caught.value.detail == errors.IMAGE_TOO_MANY_PIXELS.format(
        path="a.png", width=16, height=12, limit=100
    )


def test_an_image_file_over_the_byte_limit_is_refused(prompt_set, tmp_path, settings, media_root):
    """A file past EVALHUB_MAX_IMAGE_BYTES is refused, read no further than the limit."""
    settings.EVALHUB_MAX_IMAGE_BYTES = 100
    (tmp_path / "a.png").write_bytes(png_bytes(size=(64, 64)))
    with pytest.raises(ImportRejected) as caught:
        run_import(prompt_set, tmp_path, manifest(row("a.png")))
    assert caught.value.detail == errors.IMAGE_TOO_LARGE.format(path="a.png", limit=100)
    assert stored_files(media_root) == []


def test_a_row_that_is_not_json_names_its_line(prompt_set, tmp_path, media_root):
    """Broken JSON on line 2 stops the import before anything is kept."""
    names = write_images(tmp_path, 1)
    with pytest.raises(ImportRejected, match=r"^line 2: not valid JSON"):
        run_import(prompt_set, tmp_path, manifest(row(names[0])) + '{"prompt": \n')
    assert stored_files(media_root) == []


def test_an_empty_manifest_is_an_error(prompt_set, tmp_path):
    """A manifest with only blank lines imports nothing and says so."""
    with pytest.raises(ImportRejected, match=errors.EMPTY_FILE):
        run_import(prompt_set, tmp_path, "\n \n")


def test_a_database_failure_after_files_were_written_removes_them(
    prompt_set, tmp_path, media_root, monkeypatch
):
    """Files written before an unexpected error are deleted too."""
    names = write_images(tmp_path, 2)

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(GeneratedImage.objects, "bulk_create", fail)
    with pytest.raises(RuntimeError):
        run_import(prompt_set, tmp_path, manifest(row(names[0], 0), row(names[1], 1)))
    assert not GeneratedImage.objects.exists()
    assert stored_files(media_root) == []


def test_the_command_imports_relative_to_the_manifest(prompt_set, tmp_path):
    """`import_images` reads image paths relative to the manifest's folder."""
    (tmp_path / "imgs").mkdir()
    names = write_images(tmp_path / "imgs", 2)
    path = tmp_path / "manifest.jsonl"
    path.write_text(manifest(row(f"imgs/{names[0]}", 0), row(f"imgs/{names[1]}", 1, model="new-model")))
    out = io.StringIO()
    call_command("import_images", str(path), "--prompt-set", "shapes", "--create-models", stdout=out)
    assert (
        "Imported 2 images into 'shapes' (0 already present); created model versions new-model."
        in out.getvalue()
    )


def test_the_command_reports_the_bad_line(prompt_set, tmp_path, media_root):
    """`import_images` fails with the manifest's name and the line."""
    path = tmp_path / "manifest.jsonl"
    path.write_text(manifest(row("missing.png")))
    with pytest.raises(CommandError, match=r"manifest.jsonl: line 1: image file 'missing.png' not found"):
        call_command("import_images", str(path), "--prompt-set", "shapes")
    with pytest.raises(CommandError, match="no prompt set named 'nope'"):
        call_command("import_images", str(path), "--prompt-set", "nope")


# ---------------------------------------------------------------- the write transaction


@pytest.fixture
def committed_prompt_set(transactional_db):
    """The shapes prompt set, committed, for tests where other connections look."""
    prompt_set = PromptSetFactory(name="shapes")
    PromptFactory(prompt_set=prompt_set, text="a red circle", position=0)
    PromptFactory(prompt_set=prompt_set, text="a blue square", position=1)
    ModelVersionFactory(name="sd15-base")
    return prompt_set


def write_from_another_connection(name: str, done: list) -> None:
    try:
        PromptSet.objects.create(name=name)
        done.append(name)
    finally:
        connections.close_all()


def test_other_connections_can_write_while_images_are_decoded(
    committed_prompt_set, tmp_path, media_root, monkeypatch
):
    """Another connection writes while images are decoded: no transaction is open then."""
    names = write_images(tmp_path, 3)
    decoding = canonical_png
    written = []

    def slow_decode(data, **kwargs):
        assert not connection.in_atomic_block
        writer = threading.Thread(
            target=write_from_another_connection, args=(f"meanwhile {len(written)}", written)
        )
        writer.start()
        writer.join(timeout=10)
        assert not writer.is_alive(), "the other connection's write waited for the import"
        return decoding(data, **kwargs)

    monkeypatch.setattr(image_import, "canonical_png", slow_decode)
    result = run_import(
        committed_prompt_set, tmp_path, manifest(*(row(name, i) for i, name in enumerate(names)))
    )
    assert result.created == 3
    assert written == ["meanwhile 0", "meanwhile 1", "meanwhile 2"]
    assert len(stored_files(media_root)) == 3


def test_a_slot_filled_during_decoding_is_caught_under_the_transaction(
    committed_prompt_set, tmp_path, media_root, monkeypatch
):
    """A slot filled by another import during decoding is caught under the transaction."""
    names = write_images(tmp_path, 2)
    model, prompt = ModelVersion.objects.get(), committed_prompt_set.prompts.get(text="a red circle")
    decoding = canonical_png

    def decode_then_race(data, **kwargs):
        image = decoding(data, **kwargs)
        if not GeneratedImage.objects.exists():  # another import wins slot (sd15-base, a red circle, 1)
            GeneratedImage.objects.create(
                model_version=model,
                prompt=prompt,
                seed=0,
                index=1,
                file="x.png",
                width=1,
                height=1,
                sha256="f" * 64,
            )
        return image

    monkeypatch.setattr(image_import, "canonical_png", decode_then_race)
    with pytest.raises(ImportRejected) as caught:
        run_import(committed_prompt_set, tmp_path, manifest(row(names[0], 0), row(names[1], 1)))
    assert caught.value.line == 2
    assert caught.value.detail == errors.CONFLICTING_IMAGE.format(
        model="sd15-base", index=1, prompt="a red circle"
    )
    assert list(GeneratedImage.objects.values_list("sha256", flat=True)) == ["f" * 64]
    assert stored_files(media_root) == []


def test_the_same_image_imported_meanwhile_is_skipped(
    committed_prompt_set, tmp_path, media_root, monkeypatch
):
    """The same image stored in the slot meanwhile is skipped, and our file removed."""
    names = write_images(tmp_path, 2)
    model, prompt = ModelVersion.objects.get(), committed_prompt_set.prompts.get(text="a red circle")
    first, second = (canonical_png((tmp_path / name).read_bytes()) for name in names)
    decoding = canonical_png

    def decode_then_race(data, **kwargs):
        image = decoding(data, **kwargs)
        if image.sha256 == second.sha256:  # the first row's file is stored by now
            GeneratedImage.objects.create(
                model_version=model, prompt=prompt, seed=0, index=0, file="images/theirs.png", width=16,
                height=12, sha256=first.sha256,
            )  # fmt: skip
        return image

    monkeypatch.setattr(image_import, "canonical_png", decode_then_race)
    result = run_import(committed_prompt_set, tmp_path, manifest(row(names[0], 0), row(names[1], 1)))
    assert (result.created, result.skipped) == (1, 1)
    ours = GeneratedImage.objects.get(index=1)
    assert stored_files(media_root) == [media_root / ours.file.name]
