"""Import a prompt set from CSV or JSONL.

CSV columns: ``prompt`` (required), ``category`` and ``questions`` (optional). Questions
are separated by ``|``; a question ending in ``=no`` expects the answer no, ``=yes`` or no
suffix expects yes::

    prompt,category,questions
    a dog and a cat,animals,Is there one dog? | Is there one cat? | Are there other animals present?=no

JSONL: one object per line with ``prompt``, optional ``category`` and optional
``questions``, a list of strings (expecting yes) or ``{"text": ..., "expected": "no"}``.
"""

import csv
import io
from dataclasses import dataclass, field
from pathlib import PurePath

from django.db import IntegrityError, transaction

from evalhub.catalog import errors
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.models import AlignmentQuestion, Prompt, PromptSet
from evalhub.catalog.row_checks import clean_text, json_object, reject_unknown_fields, require_type, required

PROMPT_FIELDS = ("prompt", "category", "questions")
MAX_NAME = PromptSet._meta.get_field("name").max_length
MAX_CATEGORY = Prompt._meta.get_field("category").max_length
MAX_QUESTION = AlignmentQuestion._meta.get_field("text").max_length
# What Python's csv module says when the file ends inside a quoted value (strict mode).
_CSV_OPEN_QUOTE = "unexpected end of data"
_ANSWERS = {"yes": True, "no": False, "true": True, "false": False}


@dataclass(frozen=True)
class QuestionRow:
    text: str
    expected_answer: bool = True


@dataclass(frozen=True)
class PromptRow:
    line: int
    text: str
    category: str = ""
    questions: tuple[QuestionRow, ...] = field(default_factory=tuple)


def detect_format(filename: str) -> str:
    """``csv`` or ``jsonl`` from a file name's extension."""
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ImportRejected(errors.UNKNOWN_FORMAT.format(name=filename))


def decode_text(data: bytes) -> str:
    """UTF-8 text, with the byte-order mark spreadsheets like to add removed."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRejected(errors.NOT_UTF8) from None


def parse_prompt_rows(text: str, fmt: str) -> list[PromptRow]:
    """Parse and validate every row; the first bad one raises with its line number."""
    rows = _parse_csv(text) if fmt == "csv" else _parse_jsonl(text)
    if not rows:
        raise ImportRejected(errors.EMPTY_FILE)
    first_seen: dict[str, int] = {}
    for row in rows:
        if row.text in first_seen:
            raise ImportRejected(
                errors.DUPLICATE_PROMPT.format(text=row.text, first_line=first_seen[row.text]),
                line=row.line,
            )
        first_seen[row.text] = row.line
    return rows


@transaction.atomic
def prompt_set_import(*, name: str, rows: list[PromptRow], description: str = "") -> PromptSet:
    """Create a prompt set with its prompts and alignment questions, all or nothing."""
    name = clean_text(name.strip(), "name", None)
    if not name:
        raise ImportRejected(errors.EMPTY_VALUE.format(field="name"))
    if len(name) > MAX_NAME:
        raise ImportRejected(errors.TOO_LONG.format(field="name", limit=MAX_NAME))
    description = clean_text(description, "description", None, multiline=True)
    if PromptSet.objects.filter(name=name).exists():
        raise ImportRejected(errors.PROMPT_SET_EXISTS.format(name=name))
    try:
        prompt_set = PromptSet.objects.create(name=name, description=description)
    except IntegrityError:  # created by a concurrent import since the check above
        raise ImportRejected(errors.PROMPT_SET_EXISTS.format(name=name)) from None
    prompts = Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, text=row.text, category=row.category, position=position)
        for position, row in enumerate(rows)
    )
    AlignmentQuestion.objects.bulk_create(
        AlignmentQuestion(prompt=prompt, text=q.text, expected_answer=q.expected_answer, position=position)
        for prompt, row in zip(prompts, rows, strict=True)
        for position, q in enumerate(row.questions)
    )
    return prompt_set


# ---------------------------------------------------------------- CSV


def _parse_csv(text: str) -> list[PromptRow]:
    # Strict: a quote left open is an error, not the rest of the file read as one value.
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        raise _csv_error(exc, line=1) from None
    if "prompt" not in header:
        raise ImportRejected(errors.MISSING_PROMPT_COLUMN, line=1)
    unknown = [column for column in header if column not in PROMPT_FIELDS]
    if unknown:
        raise ImportRejected(_unknown_columns(unknown), line=1)

    rows, line = [], reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_error(exc, line=line) from None
        if any(value.strip() for value in values):
            if len(values) > len(header):
                raise ImportRejected(
                    errors.TOO_MANY_VALUES.format(values=len(values), columns=len(header)), line=line
                )
            # Spreadsheets drop trailing empty cells, so a short row is complete.
            record = dict(zip(header, values, strict=False))
            questions = [
                _question_from_csv(item, line)
                for item in record.get("questions", "").split("|")
                if item.strip()
            ]
            rows.append(_prompt_row(line, record.get("prompt", ""), record.get("category", ""), questions))
        line = reader.line_num + 1
    return rows


def _csv_error(exc: csv.Error, line: int) -> ImportRejected:
    if str(exc) == _CSV_OPEN_QUOTE:
        return ImportRejected(errors.UNTERMINATED_QUOTE, line=line)
    return ImportRejected(errors.BAD_CSV.format(error=exc), line=line)


def _question_from_csv(item: str, line: int) -> QuestionRow:
    text, sep, answer = item.strip().rpartition("=")
    if not sep:
        return _question_row(item, True, line)
    return _question_row(text, _expected_answer(answer, line), line)


# ---------------------------------------------------------------- JSONL


def _parse_jsonl(text: str) -> list[PromptRow]:
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        record = json_object(raw, line)
        reject_unknown_fields(record, PROMPT_FIELDS, line)
        prompt = require_type(required(record, "prompt", line), str, "prompt", "a string", line)
        category = require_type(record.get("category", ""), str, "category", "a string", line)
        raw_questions = require_type(record.get("questions", []), list, "questions", "a list", line)
        rows.append(
            _prompt_row(line, prompt, category, [_question_from_json(q, line) for q in raw_questions])
        )
    return rows


def _question_from_json(item: object, line: int) -> QuestionRow:
    if isinstance(item, str):
        return _question_row(item, True, line)
    if isinstance(item, dict):
        text = require_type(required(item, "text", line), str, "questions[].text", "a string", line)
        expected = item.get("expected", "yes")
        if isinstance(expected, bool):
            return _question_row(text, expected, line)
        if not isinstance(expected, str):
            raise ImportRejected(errors.BAD_EXPECTED_ANSWER.format(value=expected), line=line)
        return _question_row(text, _expected_answer(expected, line), line)
    raise ImportRejected(
        errors.WRONG_TYPE.format(
            field="questions[]", expected="a string or an object", got=type(item).__name__
        ),
        line=line,
    )


# ---------------------------------------------------------------- shared checks


def _prompt_row(line: int, text: str, category: str, questions: list[QuestionRow]) -> PromptRow:
    text = clean_text(text.strip(), "prompt", line, multiline=True)
    category = clean_text(category.strip(), "category", line)
    if not text:
        raise ImportRejected(errors.EMPTY_VALUE.format(field="prompt"), line=line)
    if len(category) > MAX_CATEGORY:
        raise ImportRejected(errors.TOO_LONG.format(field="category", limit=MAX_CATEGORY), line=line)
    seen = set()
    for question in questions:
        if question.text in seen:
            raise ImportRejected(errors.DUPLICATE_QUESTION.format(text=question.text), line=line)
        seen.add(question.text)
    return PromptRow(line=line, text=text, category=category, questions=tuple(questions))


def _question_row(text: str, expected: bool, line: int) -> QuestionRow:
    text = clean_text(text.strip(), "question", line)
    if not text:
        raise ImportRejected(errors.EMPTY_VALUE.format(field="question"), line=line)
    if len(text) > MAX_QUESTION:
        raise ImportRejected(errors.TOO_LONG.format(field="question", limit=MAX_QUESTION), line=line)
    return QuestionRow(text=text, expected_answer=expected)


def _expected_answer(value: str, line: int) -> bool:
    try:
        return _ANSWERS[value.strip().lower()]
    except KeyError:
        raise ImportRejected(errors.BAD_EXPECTED_ANSWER.format(value=value.strip()), line=line) from None


def _unknown_columns(unknown: list[str]) -> str:
    return errors.UNKNOWN_COLUMNS.format(columns=", ".join(unknown), expected=", ".join(PROMPT_FIELDS))
