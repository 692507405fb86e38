"""Errors that imports report to users. The messages are constants the tests reuse."""


class ImportRejected(Exception):
    """An import stopped on bad input; nothing of it was kept.

    ``line`` is the 1-based line of the offending row in the uploaded file (``None``
    when the problem is the file as a whole).
    """

    def __init__(self, message: str, *, line: int | None = None):
        self.line = line
        self.detail = message
        super().__init__(f"line {line}: {message}" if line is not None else message)


# Files as a whole
EMPTY_FILE = "the file has no rows"
UNKNOWN_FORMAT = "unknown file format {name!r}: use a .csv or .jsonl file"
NOT_UTF8 = "the file is not UTF-8 text"
MISSING_PROMPT_COLUMN = "the CSV header has no 'prompt' column"
TOO_MANY_VALUES = "{values} values for {columns} columns"
UNKNOWN_COLUMNS = "unknown column(s) {columns}; expected {expected}"
PROMPT_SET_EXISTS = "a prompt set named {name!r} already exists"
NO_MANIFEST_IN_ARCHIVE = "the archive holds no manifest.jsonl"
NOT_A_ZIP = "the upload is not a ZIP archive, or it was cut short (it has no end record)"
UPLOAD_TOO_LARGE = "the upload is {size} bytes; the limit is {limit} bytes"
FILE_TOO_LARGE = "{name!r} is larger than {limit} bytes"
BAD_CSV = "not valid CSV ({error})"
UNTERMINATED_QUOTE = "a quoted value opened on this line is never closed"

# ZIP archives
ARCHIVE_DAMAGED = "the archive is damaged ({error})"
ARCHIVE_DIRECTORY_TOO_LARGE = "the archive's directory is {size} bytes; the limit is {limit} bytes"
ARCHIVE_TOO_MANY_MEMBERS = "the archive holds {count} files; the limit is {limit}"
ARCHIVE_TOO_LARGE_UNCOMPRESSED = "the archive expands to more than {limit} bytes"
ARCHIVE_MEMBER_TOO_LARGE = "archive member {name!r} expands to {size} bytes; the limit is {limit} bytes"
ARCHIVE_MEMBER_ENCRYPTED = "archive member {name!r} is encrypted; upload an archive without a password"
ARCHIVE_MEMBER_UNSUPPORTED = (
    "archive member {name!r} uses compression method {method}; only stored and deflate are supported"
)
ARCHIVE_MEMBER_DAMAGED = "archive member {name!r} is damaged ({error})"
ARCHIVE_MEMBER_LONGER = "archive member {name!r} holds more bytes than its header declares"

# Rows
NOT_JSON = "not valid JSON ({error})"
JSON_TOO_DEEP = "JSON nested deeper than {limit} levels"
NOT_AN_OBJECT = "each line must be a JSON object"
MISSING_FIELD = "missing field {field!r}"
UNKNOWN_FIELDS = "unknown field(s) {fields}; expected {expected}"
WRONG_TYPE = "field {field!r} must be {expected}, got {got}"
EMPTY_VALUE = "field {field!r} is empty"
TOO_LONG = "field {field!r} is longer than {limit} characters"
OUT_OF_RANGE = "field {field!r} must be an integer from {low} to {high}, got {value}"
NOT_FINITE = "field {field!r} holds a number too large to store"
CONTROL_CHARACTER = (
    "field {field!r} contains the character U+{code:04X} (control characters and lone surrogates are refused)"
)
BAD_EXPECTED_ANSWER = "expected answer {value!r} must be yes or no"
DUPLICATE_PROMPT = "prompt {text!r} already appears on line {first_line}"
DUPLICATE_QUESTION = "question {text!r} appears twice for this prompt"
UNKNOWN_PROMPT = "prompt {text!r} is not in prompt set {prompt_set!r}"
UNKNOWN_MODEL = "model version {name!r} does not exist (create it first, or allow creating models)"
IMAGE_NOT_FOUND = "image file {path!r} not found"
IMAGE_TOO_LARGE = "image file {path!r} is larger than {limit} bytes"
IMAGE_UNREADABLE = "image file {path!r} is not a readable image ({error})"
IMAGE_NOT_READABLE = "image file {path!r} cannot be read ({error})"
IMAGE_TOO_MANY_PIXELS = "image file {path!r} is {width}×{height} pixels; the limit is {limit} pixels"
IMAGE_PATH_OUTSIDE = "image path {path!r} points outside the manifest's folder"
DUPLICATE_IMAGE_IN_FILE = "image {path!r} is identical to the image on line {first_line}"
DUPLICATE_IMAGE_STORED = (
    "image {path!r} is identical (sha256 {sha256}) to an image already imported "
    "for model version {model!r}, prompt {prompt!r}"
)
DUPLICATE_SLOT_IN_FILE = "model {model!r}, prompt and index {index} already appear on line {first_line}"
CATALOG_CHANGED = "the images changed while this import ran (another import?); run it again"
CONFLICTING_IMAGE = (
    "model version {model!r} already has a different image at index {index} for prompt {prompt!r}"
)
