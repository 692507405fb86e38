"""Checks shared by the line-oriented imports: each failure names its line."""

import json

from evalhub.catalog import errors
from evalhub.catalog.errors import ImportRejected

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
    """One JSONL line parsed into an object."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImportRejected(errors.NOT_JSON.format(error=exc.msg), line=line) from None
    if not isinstance(record, dict):
        raise ImportRejected(errors.NOT_AN_OBJECT, line=line)
    return record


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
