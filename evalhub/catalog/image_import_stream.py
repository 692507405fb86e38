"""Import a generated-images manifest of any size: read line by line, imported in chunks.

A study of 600 prompts × 5 images × several models lists thousands of images; its
manifest need not fit in memory, nor its import in one transaction. The manifest (a binary
file: a file on disk, a member of an archive) is read a line at a time, and every
``EVALHUB_IMPORT_CHUNK_ROWS`` rows (limits.py; 200 unless set) go through
:func:`~evalhub.catalog.image_import.generated_images_import_rows`, all or nothing,
exactly as a small manifest does. What that gives:

- **Progress**: ``on_progress(rows_done, rows_total)`` after each chunk (and once at the
  start), ``rows_total`` from :func:`manifest_row_count`, a quick pass over the lines.
- **Resumable**: a row whose slot (model, prompt, index) already holds the same image is
  skipped, so an import interrupted after some chunks, run again, skips what is in and
  imports the rest.
- **A bad row** stops the import with :class:`ImportStoppedAtRow`: its line, and how many
  rows before it were imported (the chunks before the chunk that holds it: that chunk is
  rolled back whole). The user fixes the line and runs the import again.
- **Stopping**: ``should_stop()`` is asked between chunks; ``True`` raises
  :class:`ImportStopped` with what was imported (a cancelled job).

Checks that compare rows (a slot or an image listed twice) hold within a chunk; across
chunks the catalog decides, with memory flat however long the file: a slot listed again
with the same image counts as already present (as in a second run), with another image it
is refused as a conflict, and an image listed again for another slot is refused as
already imported.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from evalhub.catalog import errors, limits
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_import import ManifestRow, generated_images_import_rows, parse_manifest_row
from evalhub.catalog.models import PromptSet

# Messages users see; tests reuse them.
LINE_TOO_LONG = "the line is longer than {limit} bytes"
ROWS_BEFORE = (
    "{detail} (the {done} rows before it are imported: {created} new, {skipped} already present; "
    "fix the line and run the import again, they are skipped)"
)
NONE_BEFORE = "{detail} (nothing of this import was kept)"
STOPPED = "stopped after {done} of {total} rows ({created} new, {skipped} already present)"

ProgressCallback = Callable[[int, int], None]


@dataclass
class StreamImportResult:
    """What a streamed import did: rows read, images created, rows already present."""

    rows: int = 0
    created: int = 0
    skipped: int = 0
    models_created: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a person: counts, and the model versions created."""
        created_models = (
            f"; created model versions {', '.join(self.models_created)}" if self.models_created else ""
        )
        counts = f"{self.rows} rows: {self.created} images imported, {self.skipped} already present"
        return counts + created_models


class ImportStoppedAtRow(ImportRejected):
    """A row was refused; the chunks before its chunk are imported (``result``)."""

    def __init__(self, rejected: ImportRejected, result: StreamImportResult):
        self.result = result
        template = ROWS_BEFORE if result.rows else NONE_BEFORE
        detail = template.format(
            detail=rejected.detail, done=result.rows, created=result.created, skipped=result.skipped
        )
        super().__init__(detail, line=rejected.line)


class ImportStopped(Exception):
    """``should_stop`` asked the import to stop between chunks; ``result`` is what it did."""

    def __init__(self, result: StreamImportResult, total: int):
        self.result = result
        super().__init__(
            STOPPED.format(done=result.rows, total=total, created=result.created, skipped=result.skipped)
        )


def manifest_row_count(manifest: BinaryIO) -> int:
    """The rows of a manifest (its non-blank lines), read once in C-speed line iteration;
    the file is left at its start."""
    manifest.seek(0)
    count = sum(1 for line in manifest if line.strip())
    manifest.seek(0)
    return count


def manifest_rows(manifest: BinaryIO) -> Iterator[ManifestRow]:
    """Each non-blank line of ``manifest`` parsed, with its line number; a line longer than
    the text-file limit, not UTF-8 or not a valid row raises ``ImportRejected`` naming it."""
    max_line = limits.MAX_TEXT_FILE_BYTES.value
    line = 0
    while raw := manifest.readline(max_line + 1):
        line += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            raise ImportRejected(LINE_TOO_LONG.format(limit=max_line), line=line)
        try:
            text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError:
            raise ImportRejected(errors.NOT_UTF8, line=line) from None
        if text.strip():
            yield parse_manifest_row(text, line)


def generated_images_import_stream(
    *,
    prompt_set: PromptSet,
    manifest: BinaryIO,
    source,
    create_models: bool = False,
    total: int | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    chunk_rows: int | None = None,
) -> StreamImportResult:
    """Import every image ``manifest`` lists into ``prompt_set``, ``chunk_rows`` at a time.

    Args:
        prompt_set: the set the rows' prompts are in.
        manifest: the JSONL manifest, binary, read from its current position.
        source: where the image paths are read (``image_sources``).
        create_models: create model versions the manifest names that do not exist.
        total: the rows, if known (:func:`manifest_row_count`); else counted here when the
            file can seek, else reported as 0 (unknown).
        on_progress: called with (rows done, rows total) at the start and after each chunk.
        should_stop: asked before each chunk; ``True`` stops with :class:`ImportStopped`.
        chunk_rows: rows per all-or-nothing chunk; ``EVALHUB_IMPORT_CHUNK_ROWS`` if not given.

    Returns:
        The rows read, images created and rows already present.

    Raises:
        ImportStoppedAtRow: a row was refused; the chunks before it are imported.
        ImportStopped: ``should_stop`` said so.
    """
    chunk_rows = chunk_rows or limits.IMPORT_CHUNK_ROWS.value
    assert chunk_rows > 0, "a chunk holds at least one row"
    if total is None:
        total = manifest_row_count(manifest) if manifest.seekable() else 0
    progress = on_progress or (lambda done, total: None)
    result = StreamImportResult()
    progress(0, total)
    chunk: list[ManifestRow] = []
    try:
        for row in manifest_rows(manifest):
            chunk.append(row)
            if len(chunk) == chunk_rows:
                _import_chunk(prompt_set, chunk, source, create_models, result, should_stop, total)
                progress(result.rows, max(total, result.rows))
                chunk = []
        if chunk:
            _import_chunk(prompt_set, chunk, source, create_models, result, should_stop, total)
            progress(result.rows, max(total, result.rows))
    except ImportStoppedAtRow:
        raise
    except ImportRejected as exc:
        raise ImportStoppedAtRow(exc, result) from None
    if not result.rows:
        raise ImportRejected(errors.EMPTY_FILE)
    return result


def _import_chunk(prompt_set, chunk, source, create_models, result, should_stop, total) -> None:
    """One chunk, all or nothing, added to ``result``."""
    if should_stop is not None and should_stop():
        raise ImportStopped(result, total)
    imported = generated_images_import_rows(
        prompt_set=prompt_set, rows=chunk, source=source, create_models=create_models
    )
    result.rows += len(chunk)
    result.created += imported.created
    result.skipped += imported.skipped
    result.models_created += imported.models_created
