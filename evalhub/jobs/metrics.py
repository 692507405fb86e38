"""Reading the trainer's ``metrics.jsonl`` while the trainer is still writing it.

The trainer appends one JSON object per optimizer step and flushes after each, yet a
reader can still catch the last line half written. Only complete lines (ended by a
newline) that parse as a JSON object count; anything else is skipped, never raised.
"""

import json
from collections.abc import Iterator
from pathlib import Path

TAIL_BYTES = 64 * 1024  # far more than one record; the heartbeat reads only this much


def _records(text: str) -> Iterator[dict]:
    """The JSON objects of the complete lines of ``text``."""
    for line in text.split("\n")[:-1]:  # what follows the last newline is unfinished
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def metrics_read(path: Path) -> list[dict]:
    """Every complete record of ``path``; none when the file does not exist yet."""
    if not path.is_file():
        return []
    return list(_records(path.read_bytes().decode("utf-8", errors="replace")))


def metrics_last(path: Path) -> dict:
    """The last complete record of ``path`` (``{}`` if none), reading only its end."""
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        start = max(0, handle.seek(0, 2) - TAIL_BYTES)
        handle.seek(start)
        text = handle.read().decode("utf-8", errors="replace")
    if start:
        text = text.partition("\n")[2]  # the first line was cut by the seek
    records = list(_records(text))
    return records[-1] if records else {}
