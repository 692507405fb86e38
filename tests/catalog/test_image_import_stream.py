"""The streamed image import: a manifest read line by line, imported a chunk of rows at a
time with progress, resumable, a refused row named with its line and what came before it;
and ``import_images``, which uses it for manifests of any size."""

import io
import json
import re

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from evalhub.catalog import errors
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_import_stream import (
    LINE_TOO_LONG,
    ImportStopped,
    ImportStoppedAtRow,
    generated_images_import_stream,
    manifest_row_count,
)
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import GeneratedImage
from evalhub.storage import walk
from tests.factories import SHAPE_PROMPTS, png_bytes, shapes_prompt_set

PROMPTS = SHAPE_PROMPTS


@pytest.fixture
def prompt_set(db):
    return shapes_prompt_set()


def write_rows(folder, count: int, first_colour: int = 0) -> list[dict]:
    """``count`` rows over the prompts (index = row // prompts), each with a PNG of its own colour."""
    rows = []
    for i in range(count):
        colour = first_colour + i
        name = f"img{colour}.png"
        (folder / name).write_bytes(png_bytes(color=(colour % 256, colour // 256, 90)))
        rows.append(
            {"prompt": PROMPTS[i % 3], "model": "sd15-base", "seed": i, "index": i // 3, "image": name}
        )
    return rows


def jsonl(rows, blank_after: int | None = None) -> bytes:
    """The rows as JSONL bytes; a blank line after row ``blank_after`` (1-based) if given."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")
    return ("\n".join(lines) + "\n").encode()


def stream(prompt_set, folder, data: bytes, **kwargs):
    return generated_images_import_stream(
        prompt_set=prompt_set, manifest=io.BytesIO(data), source=DirectorySource(folder), **kwargs
    )


def stored_images() -> list[str]:
    return list(walk(default_storage, "images"))


def test_it_imports_in_chunks_reporting_progress_after_each(prompt_set, tmp_path, storage_kind):
    """Seven rows in chunks of three: progress 0, 3, 6, 7 of 7; every image and file is in."""
    seen = []
    result = stream(
        prompt_set,
        tmp_path,
        jsonl(write_rows(tmp_path, 7)),
        chunk_rows=3,
        on_progress=lambda *p: seen.append(p),
    )
    assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]
    assert (result.rows, result.created, result.skipped) == (7, 7, 0)
    assert GeneratedImage.objects.count() == 7
    assert len(stored_images()) == 7


def test_the_total_counts_rows_not_blank_lines(prompt_set, tmp_path):
    """A blank line is not a row: the quick count skips it, like the import."""
    data = jsonl(write_rows(tmp_path, 4), blank_after=2)
    manifest = io.BytesIO(data)
    assert manifest_row_count(manifest) == 4 and manifest.tell() == 0


def test_a_refused_row_names_its_line_and_keeps_the_chunks_before_it(prompt_set, tmp_path, storage_kind):
    """Row 8 (line 9, after a blank line) names an unknown prompt: chunks 1-2 (6 rows) stay,
    its own chunk is rolled back with its stored files, and the message says so."""
    rows = write_rows(tmp_path, 9)
    rows[7]["prompt"] = "a purple hexagon"
    with pytest.raises(ImportStoppedAtRow) as stopped:
        stream(prompt_set, tmp_path, jsonl(rows, blank_after=3), chunk_rows=3)
    assert stopped.value.line == 9
    unknown = errors.UNKNOWN_PROMPT.format(text="a purple hexagon", prompt_set="shapes")
    assert str(stopped.value).startswith(f"line 9: {unknown} (the 6 rows before it are imported: 6 new")
    assert (stopped.value.result.rows, stopped.value.result.created) == (6, 6)
    assert GeneratedImage.objects.count() == 6
    assert len(stored_images()) == 6


def test_a_refused_first_chunk_keeps_nothing(prompt_set, tmp_path):
    """A bad row in the first chunk: nothing was imported, and the message says that."""
    rows = write_rows(tmp_path, 2)
    rows[1]["seed"] = "one"
    with pytest.raises(ImportStoppedAtRow) as stopped:
        stream(prompt_set, tmp_path, jsonl(rows))
    wrong = errors.WRONG_TYPE.format(field="seed", expected="an integer", got="a string")
    assert str(stopped.value) == f"line 2: {wrong} (nothing of this import was kept)"
    assert not GeneratedImage.objects.exists()


def test_an_interrupted_import_run_again_skips_the_rows_already_in(prompt_set, tmp_path, storage_kind):
    """Killed mid-way through its third chunk (an interrupt while reading an image), the
    import kept two chunks; run again, it skips those 6 rows and imports the other 4."""
    rows = write_rows(tmp_path, 10)
    data = jsonl(rows)

    class InterruptedSource(DirectorySource):
        def read(self, path):
            if path == rows[7]["image"]:
                raise KeyboardInterrupt
            return super().read(path)

    with pytest.raises(KeyboardInterrupt):
        generated_images_import_stream(
            prompt_set=prompt_set, manifest=io.BytesIO(data), source=InterruptedSource(tmp_path), chunk_rows=3
        )
    assert GeneratedImage.objects.count() == 6
    assert len(stored_images()) == 6

    seen = []
    result = stream(prompt_set, tmp_path, data, chunk_rows=3, on_progress=lambda *p: seen.append(p))
    assert (result.rows, result.created, result.skipped) == (10, 4, 6)
    assert seen[-1] == (10, 10)
    assert GeneratedImage.objects.count() == 10
    assert len(stored_images()) == 10


def test_should_stop_stops_between_chunks_and_a_second_run_finishes(prompt_set, tmp_path):
    """``should_stop`` true after the first chunk: ImportStopped with what was done; the
    next run imports the rest."""
    data = jsonl(write_rows(tmp_path, 5))
    asked = []

    def stop_after_first_chunk() -> bool:
        asked.append(True)
        return len(asked) > 1

    with pytest.raises(ImportStopped) as stopped:
        stream(prompt_set, tmp_path, data, chunk_rows=3, should_stop=stop_after_first_chunk)
    assert str(stopped.value) == "stopped after 3 of 5 rows (3 new, 0 already present)"
    result = stream(prompt_set, tmp_path, data, chunk_rows=3)
    assert (result.created, result.skipped) == (2, 3)


def test_a_slot_repeated_in_a_later_chunk_with_another_image_is_refused(prompt_set, tmp_path):
    """Across chunks the catalog decides: the same slot with a different image is a conflict
    named at the later line."""
    rows = write_rows(tmp_path, 4)
    rows[3] = {**rows[0], "image": rows[3]["image"]}  # line 4: row 1's slot, another image
    with pytest.raises(ImportStoppedAtRow) as stopped:
        stream(prompt_set, tmp_path, jsonl(rows), chunk_rows=2)
    assert stopped.value.line == 4
    assert errors.CONFLICTING_IMAGE.format(model="sd15-base", index=0, prompt="a red circle") in str(
        stopped.value
    )


def test_a_line_over_the_text_file_limit_is_refused_with_its_number(prompt_set, tmp_path, settings):
    """Each line stays within EVALHUB_MAX_TEXT_FILE_BYTES, read no further than that."""
    settings.EVALHUB_MAX_TEXT_FILE_BYTES = 300
    rows = write_rows(tmp_path, 3)
    rows[2]["settings"] = {"note": "x" * 400}
    with pytest.raises(ImportStoppedAtRow) as stopped:
        stream(prompt_set, tmp_path, jsonl(rows))
    assert stopped.value.line == 3 and stopped.value.detail.startswith(LINE_TOO_LONG.format(limit=300))


def test_a_line_that_is_not_utf8_is_named(prompt_set, tmp_path):
    """Bytes that are not UTF-8 stop the import at their line."""
    data = jsonl(write_rows(tmp_path, 1)) + b'{"prompt": "caf\xe9"}\n'
    with pytest.raises(ImportStoppedAtRow) as stopped:
        stream(prompt_set, tmp_path, data)
    assert stopped.value.line == 2 and stopped.value.detail.startswith(errors.NOT_UTF8)


def test_an_empty_manifest_is_refused(prompt_set, tmp_path):
    """Only blank lines: the empty-file error, as for a small manifest."""
    with pytest.raises(ImportRejected, match=errors.EMPTY_FILE):
        stream(prompt_set, tmp_path, b"\n\n")


# ---------------------------------------------------------------- the command


def test_the_command_imports_a_manifest_larger_than_the_text_file_limit(prompt_set, tmp_path, settings):
    """A 20-row manifest of almost 2 KB with a 1 KB text-file limit imports, with a progress
    bar on stderr and the summary on stdout; run again, everything is already present."""
    settings.EVALHUB_MAX_TEXT_FILE_BYTES = 1000
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(jsonl(write_rows(tmp_path, 20)))
    assert path.stat().st_size > 1800
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_images", str(path), "--prompt-set", "shapes", "--chunk-rows", "7", stdout=out, stderr=err
    )
    assert out.getvalue().strip() == "Imported 20 images into 'shapes' (0 already present)."
    assert re.search(r"manifest\.jsonl: 100%.*20/20", err.getvalue())
    assert GeneratedImage.objects.count() == 20

    out = io.StringIO()
    call_command("import_images", str(path), "--prompt-set", "shapes", stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip() == "Imported 0 images into 'shapes' (20 already present)."


def test_the_command_names_the_refused_line_and_what_was_imported(prompt_set, tmp_path):
    """A row that does not parse, read after two chunks of two: the command fails with the
    file, the line and the 4 rows kept; after the fix, a second run skips them and finishes."""
    rows = write_rows(tmp_path, 6)
    rows[4]["index"] = -1
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(jsonl(rows))
    with pytest.raises(CommandError, match=r"manifest\.jsonl: line 5: .*\(the 4 rows before it are imported"):
        call_command(
            "import_images", str(path), "--prompt-set", "shapes", "--chunk-rows", "2", stderr=io.StringIO()
        )
    assert GeneratedImage.objects.count() == 4

    rows[4]["index"] = 1
    path.write_bytes(jsonl(rows))
    out = io.StringIO()
    call_command("import_images", str(path), "--prompt-set", "shapes", stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip() == "Imported 2 images into 'shapes' (4 already present)."
