"""Checks shared by the line-oriented imports: each failure names its line."""

import json
import math
import re

from evalhub.catalog import errors, limits
from evalhub.catalog.errors import ImportRejected
from evalhub.json_limits import JSONTooDeep, json_loads_bounded

# Control characters (C0, DEL, C1) and lone surrogates, which no database column takes
# well (PostgreSQL refuses NUL); text that may span lines keeps tab, newline and return.
_NOT_IN_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_IN_MULTILINE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

_JSON_TYPE_NAMES = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def json_object(raw: str, line: int) -> dict:
    """One JSONL line parsed into an object, nested no deeper than the limit (checked
    before decoding, so a line nested 100,000 deep is an error, not a RecursionError)."""
    max_depth = limits.MAX_JSON_DEPTH.value
    try:
        record = json_loads_bounded(raw, max_depth=max_depth, parse_constant=_reject_constant)
    except JSONTooDeep:
        raise ImportRejected(errors.JSON_TOO_DEEP.format(limit=max_depth), line=line) from None
    except json.JSONDecodeError as exc:
        raise ImportRejected(errors.NOT_JSON.format(error=exc.msg), line=line) from None
    except ValueError as exc:  # NaN or Infinity, or an integer of over 4300 digits
        raise ImportRejected(errors.NOT_JSON.format(error=exc), line=line) from None
    if not isinstance(record, dict):
        raise ImportRejected(errors.NOT_AN_OBJECT, line=line)
    return record


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def clean_text(value: str, name: str, line: int | None, *, multiline: bool = False) -> str:
    """``value`` if it holds no control character (tab and line breaks allowed where
    ``multiline``) and no lone surrogate."""
    found = (_NOT_IN_MULTILINE_TEXT if multiline else _NOT_IN_TEXT).search(value)
    if found:
        raise ImportRejected(errors.CONTROL_CHARACTER.format(field=name, code=ord(found.group())), line=line)
    return value


def clean_json_values(value: object, name: str, line: int) -> None:
    """Every key and string in a parsed JSON value passes ``clean_text`` (multiline), and
    every number is finite (``1e400`` parses as infinity, which no JSON column stores)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            clean_text(item, name, line, multiline=True)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ImportRejected(errors.NOT_FINITE.format(field=name), line=line)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def require_int_in(value: int, name: str, bounds: tuple[int, int], line: int) -> int:
    """``value`` if it fits the column ``bounds`` (inclusive)."""
    low, high = bounds
    if not low <= value <= high:
        shown = str(value) if len(str(value)) <= 40 else f"a number of {len(str(value))} digits"
        raise ImportRejected(
            errors.OUT_OF_RANGE.format(field=name, low=low, high=high, value=shown), line=line
        )
    return value


def reject_unknown_fields(record: dict, allowed: tuple[str, ...], line: int) -> None:
    """A misspelt field is an error, not a silently dropped value."""
    unknown = sorted(set(record) - set(allowed))
    if unknown:
        raise ImportRejected(
            errors.UNKNOWN_FIELDS.format(fields=", ".join(unknown), expected=", ".join(allowed)),
            line=line,
        )


def required(record: dict, name: str, line: int) -> object:
    """The field's value, or a rejection saying it is missing."""
    if name not in record:
        raise ImportRejected(errors.MISSING_FIELD.format(field=name), line=line)
    return record[name]


def require_type(value: object, kind: type, name: str, expected: str, line: int):
    """``value`` if it is a ``kind``; JSON booleans never pass for numbers."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        got = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        raise ImportRejected(errors.WRONG_TYPE.format(field=name, expected=expected, got=got), line=line)
    return value
