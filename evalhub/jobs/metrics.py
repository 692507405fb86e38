"""Reading the trainer's ``metrics.jsonl`` while the trainer is still writing it.

The trainer appends one JSON object per optimizer step and flushes after each, yet a
reader can still catch the last line half written. Only complete lines (ended by a
newline) that parse as a JSON object count; anything else is skipped, never raised.
"""

import json
from collections.abc import Iterator
from pathlib import Path

# The most one read of new lines takes: far more than the job log keeps (runner.LOG_LINES
# lines of a few hundred bytes each), so what a read skips had left the log's tail anyway.
NEW_BYTES_MAX = 4 * 1024 * 1024


def _records(text: str) -> Iterator[dict]:
    """The JSON objects of the complete lines of ``text``."""
    for line in text.split("\n")[:-1]:  # what follows the last newline is unfinished
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def metrics_parse(data: bytes) -> list[dict]:
    """Every complete record of a ``metrics.jsonl``'s bytes (as read from a storage)."""
    return list(_records(data.decode("utf-8", errors="replace")))


def metrics_since(path: Path, offset: int) -> tuple[list[dict], int]:
    """The complete records written to ``path`` after byte ``offset``, and the offset to
    read from next time (just past the last complete line).

    A file shorter than ``offset`` was rewritten (a resumed run keeps only its lines up to
    the checkpoint): it is read again from the start. Of more than ``NEW_BYTES_MAX`` new
    bytes only the last ``NEW_BYTES_MAX`` are read.

    Args:
        path: the trainer's ``metrics.jsonl``; none yet is no record.
        offset: where the previous read stopped (0 the first time).

    Returns:
        The records in file order, and the next offset.
    """
    if not path.is_file():
        return [], 0
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        if end < offset:
            offset = 0
        start = max(offset, end - NEW_BYTES_MAX)
        handle.seek(start)
        data = handle.read(end - start)
    if start > offset:
        cut = data.find(b"\n") + 1  # the first line was cut by the seek
        data, start = data[cut:], start + cut
    complete = data.rfind(b"\n") + 1  # what follows the last newline is unfinished
    text = data[:complete].decode("utf-8", errors="replace")
    return list(_records(text)), start + complete
