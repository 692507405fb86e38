"""Bounds on what an import accepts, declared once.

Integer ranges are the database columns' (Django's ``integer_field_ranges``: a value
outside them is an error naming its line, not a 500 when the row is stored). Sizes,
counts and depths have their default here; a deployment overrides one with the setting
of the same name (read from the environment in ``evalhub/settings.py``, which imports
these declarations). Code asks for
a limit's value when it runs, so a test's ``settings`` override applies.
"""

from dataclasses import dataclass

from django.conf import settings

MiB = 1024 * 1024

# GeneratedImage.seed is a BigIntegerField.
SEED_RANGE = (-(2**63), 2**63 - 1)
# GeneratedImage.index and the positions of prompts and questions are PositiveIntegerFields.
POSITION_RANGE = (0, 2**31 - 1)


@dataclass(frozen=True)
class Limit:
    setting: str
    default: int
    help: str

    @property
    def value(self) -> int:
        return getattr(settings, self.setting, self.default)


MAX_UPLOAD_BYTES = Limit(
    "EVALHUB_MAX_UPLOAD_BYTES",
    512 * MiB,
    "Largest request body of an image import in the UI (the ZIP archive and the form); "
    "a larger one is refused from its Content-Length before it is read.",
)
MAX_TEXT_FILE_BYTES = Limit(
    "EVALHUB_MAX_TEXT_FILE_BYTES",
    10 * MiB,
    "Largest prompt file (CSV or JSONL) or image manifest, uploaded or in an archive; on disk "
    "(``import_images``, which streams a manifest of any size) the longest line of a manifest.",
)
IMPORT_INLINE_MAX_BYTES = Limit(
    "EVALHUB_IMPORT_INLINE_MAX_BYTES",
    8 * MiB,
    "Largest image archive the import page imports inside its request; a larger one is "
    "stored and imported by a background job on a CPU worker, its progress on the job's page.",
)
IMPORT_CHUNK_ROWS = Limit(
    "EVALHUB_IMPORT_CHUNK_ROWS",
    200,
    "Rows per transaction of a streamed image import (``import_images``, a background import "
    "job): progress moves a chunk at a time, and a refused row rolls back its chunk only.",
)
MAX_IMAGE_BYTES = Limit(
    "EVALHUB_MAX_IMAGE_BYTES",
    50 * MiB,
    "Largest image file, on disk or uncompressed in an archive.",
)
MAX_IMAGE_PIXELS = Limit(
    "EVALHUB_MAX_IMAGE_PIXELS",
    40_000_000,
    "Most pixels (width × height) an imported image may declare; checked from its header "
    "before it is decoded (Pillow's own limit is 179 million).",
)
MAX_ARCHIVE_MEMBERS = Limit(
    "EVALHUB_MAX_ARCHIVE_MEMBERS",
    10_000,
    "Most files and folders an uploaded ZIP archive may hold.",
)
MAX_ARCHIVE_UNCOMPRESSED_BYTES = Limit(
    "EVALHUB_MAX_ARCHIVE_UNCOMPRESSED_BYTES",
    2048 * MiB,
    "Most bytes an uploaded ZIP archive may expand to, all members together.",
)
MAX_JSON_DEPTH = Limit(
    "EVALHUB_MAX_JSON_DEPTH",
    32,
    "Deepest nesting of objects and lists in a line of a JSONL prompt file or manifest "
    "(the line's own object is level 1), and in an API request's JSON body.",
)

ALL = (
    MAX_UPLOAD_BYTES,
    MAX_TEXT_FILE_BYTES,
    IMPORT_INLINE_MAX_BYTES,
    IMPORT_CHUNK_ROWS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_ARCHIVE_MEMBERS,
    MAX_ARCHIVE_UNCOMPRESSED_BYTES,
    MAX_JSON_DEPTH,
)

# The form fields around a prompt file: its request may be this much larger than the file.
FORM_OVERHEAD_BYTES = 1 * MiB
# A central-directory entry is 46 bytes plus its name and extra fields; an archive whose
# directory is larger than this per allowed member is refused before it is parsed.
CENTRAL_DIRECTORY_BYTES_PER_MEMBER = 1024
