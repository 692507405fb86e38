"""Generated-image import from a JSONL manifest: opaque names, stripped metadata,
duplicates, and all-or-nothing rejection of bad rows."""

import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from evalhub.catalog import errors
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import GeneratedImage, ModelVersion
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


def manifest(*rows: dict) -> str:
    return "\n".join(json.dumps(row) for row in rows) + "\n"


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
    "negative index": (row("x.png", -1), errors.NEGATIVE_INDEX.format(value=-1)),
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
    original = GeneratedImage.objects.create
    calls = []

    def fail_on_second(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return original(**kwargs)

    monkeypatch.setattr(GeneratedImage.objects, "create", fail_on_second)
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
