"""Reading what users send without trusting its size: a request's declared length is
checked before its body is parsed, and a file is read in chunks up to its limit."""

from evalhub.catalog import errors, limits
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.prompt_import import decode_text

CHUNK_BYTES = 1024 * 1024


class TooLarge(Exception):
    """A file turned out longer than its limit; the caller says which file to the user."""


def request_too_large(request, limit: int) -> str | None:
    """The message for a request whose body is over ``limit`` bytes, else ``None``.

    Django reads no further than the Content-Length (a body without one reads as empty),
    so checking it before ``request.POST`` or ``request.FILES`` bounds what is parsed.
    """
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # Django's own parser refuses it
    if size > limit:
        return errors.UPLOAD_TOO_LARGE.format(size=size, limit=limit)
    return None


def read_limited(fileobj, limit: int) -> bytes:
    """All of ``fileobj``, or ``TooLarge`` as soon as it passes ``limit`` bytes (or says it
    will: an uploaded file knows its size)."""
    size = getattr(fileobj, "size", None)
    if isinstance(size, int) and size > limit:
        raise TooLarge
    chunks, total = [], 0
    while chunk := fileobj.read(min(CHUNK_BYTES, limit + 1 - total)):
        total += len(chunk)
        if total > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def read_text_file(fileobj, name: str) -> str:
    """A prompt file or manifest: at most the text-file limit, UTF-8."""
    limit = limits.MAX_TEXT_FILE_BYTES.value
    try:
        data = read_limited(fileobj, limit)
    except TooLarge:
        raise ImportRejected(errors.FILE_TOO_LARGE.format(name=name, limit=limit)) from None
    return decode_text(data)
