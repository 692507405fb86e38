"""Prompt-set import from CSV and JSONL: the service, the parser and the command."""

import re

import pytest
from django.core.management import CommandError, call_command

from evalhub.catalog import errors, limits
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.models import AlignmentQuestion, Prompt, PromptSet
from evalhub.catalog.prompt_import import parse_prompt_rows, prompt_set_import
from tests.catalog.hostile_files import nested_json

CSV = (
    "prompt,category,questions\n"
    "a dog and a cat,animals,Is there one dog? | Is there one cat? | Are there other animals present?=no\n"
    "a red circle,,\n"
    '"a cup of coffee, steaming",food,Is there a cup?=yes\n'
)

JSONL = (
    '{"prompt": "a dog and a cat", "category": "animals", "questions": ["Is there one dog?",'
    ' {"text": "Are there other animals present?", "expected": "no"}]}\n'
    "\n"
    '{"prompt": "a blue square", "questions": [{"text": "Is it blue?", "expected": true}]}\n'
)


def rejection(text: str, fmt: str) -> ImportRejected:
    with pytest.raises(ImportRejected) as caught:
        parse_prompt_rows(text, fmt)
    return caught.value


def test_it_parses_csv_questions_with_expected_answers():
    """A CSV row's questions split on '|' and '=no' marks an expected no."""
    rows = parse_prompt_rows(CSV, "csv")
    assert [row.text for row in rows] == ["a dog and a cat", "a red circle", "a cup of coffee, steaming"]
    assert [(q.text, q.expected_answer) for q in rows[0].questions] == [
        ("Is there one dog?", True),
        ("Is there one cat?", True),
        ("Are there other animals present?", False),
    ]
    assert rows[0].category == "animals"
    assert rows[1].questions == ()
    assert rows[2].questions[0].expected_answer is True


def test_it_parses_jsonl_with_string_and_object_questions():
    """JSONL questions are strings (expect yes) or objects with an expected answer."""
    rows = parse_prompt_rows(JSONL, "jsonl")
    assert [row.line for row in rows] == [1, 3]
    assert [(q.text, q.expected_answer) for q in rows[0].questions] == [
        ("Is there one dog?", True),
        ("Are there other animals present?", False),
    ]
    assert rows[1].questions[0].expected_answer is True


def test_it_accepts_a_spreadsheet_byte_order_mark(db):
    """A UTF-8 BOM before the header is not part of the first column's name."""
    from evalhub.catalog.prompt_import import decode_text

    rows = parse_prompt_rows(decode_text(("\ufeff" + CSV).encode()), "csv")
    assert len(rows) == 3


@pytest.mark.django_db
def test_it_creates_the_prompt_set_with_prompts_and_questions_in_order():
    """The import stores prompts in file order with their questions."""
    prompt_set = prompt_set_import(name="animals", rows=parse_prompt_rows(CSV, "csv"))
    prompts = list(prompt_set.prompts.order_by("position"))
    assert [p.text for p in prompts] == ["a dog and a cat", "a red circle", "a cup of coffee, steaming"]
    questions = list(prompts[0].questions.order_by("position"))
    assert [(q.text, q.expected_answer) for q in questions] == [
        ("Is there one dog?", True),
        ("Is there one cat?", True),
        ("Are there other animals present?", False),
    ]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("category\nanimals\n", 1, errors.MISSING_PROMPT_COLUMN),
        (
            "prompt,promt\na,b\n",
            1,
            errors.UNKNOWN_COLUMNS.format(columns="promt", expected="prompt, category, questions"),
        ),
        ("prompt,category\na dog,x\n  ,animals\n", 3, errors.EMPTY_VALUE.format(field="prompt")),
        ("prompt\na dog\na cat\na dog\n", 4, errors.DUPLICATE_PROMPT.format(text="a dog", first_line=2)),
        ("prompt,questions\na dog,Is it a dog?=maybe\n", 2, errors.BAD_EXPECTED_ANSWER.format(value="maybe")),
        (
            "prompt,questions\na dog,Is it a dog? | Is it a dog?\n",
            2,
            errors.DUPLICATE_QUESTION.format(text="Is it a dog?"),
        ),
        ("prompt,questions\na dog,=no\n", 2, errors.EMPTY_VALUE.format(field="question")),
        ("prompt\na,b\n", 2, errors.TOO_MANY_VALUES.format(values=2, columns=1)),
    ],
)
def test_it_rejects_a_bad_csv_row_naming_its_line(text, line, message):
    """Each CSV mistake stops the import with its line and a readable message."""
    error = rejection(text, "csv")
    assert error.line == line
    assert error.detail == message
    assert str(error) == f"line {line}: {message}"


def test_it_counts_lines_of_multiline_csv_fields():
    """A quoted field over two lines shifts the next row's line number."""
    error = rejection('prompt,category\n"a dog\non a sofa",x\n,y\n', "csv")
    assert error.line == 4


@pytest.mark.parametrize(
    "text, line, message",
    [
        ('{"prompt": "a"}\n{"prompt": "b"\n', 2, errors.NOT_JSON.format(error="Expecting ',' delimiter")),
        ('["a dog"]\n', 1, errors.NOT_AN_OBJECT),
        ('{"category": "x"}\n', 1, errors.MISSING_FIELD.format(field="prompt")),
        ('{"prompt": 3}\n', 1, errors.WRONG_TYPE.format(field="prompt", expected="a string", got="a number")),
        (
            '{"prompt": "a", "questions": "Is it?"}\n',
            1,
            errors.WRONG_TYPE.format(field="questions", expected="a list", got="a string"),
        ),
        (
            '{"prompt": "a", "questions": [7]}\n',
            1,
            errors.WRONG_TYPE.format(field="questions[]", expected="a string or an object", got="int"),
        ),
        (
            '{"prompt": "a", "questions": [{"expected": "no"}]}\n',
            1,
            errors.MISSING_FIELD.format(field="text"),
        ),
        (
            '{"prompt": "a", "questions": [{"text": "Is it?", "expected": 0}]}\n',
            1,
            errors.BAD_EXPECTED_ANSWER.format(value=0),
        ),
        (
            '{"prompt": "a", "tags": []}\n',
            1,
            errors.UNKNOWN_FIELDS.format(fields="tags", expected="prompt, category, questions"),
        ),
    ],
)
def test_it_rejects_a_bad_jsonl_row_naming_its_line(text, line, message):
    """Each JSONL mistake stops the import with its line and a readable message."""
    error = rejection(text, "jsonl")
    assert error.line == line
    assert error.detail == message


UNSAFE_INPUT = {
    "CSV quote never closed": (
        "csv",
        'prompt,category\na dog,x\n"a cat,y\na cow,z\na hen,w\n',
        3,
        errors.UNTERMINATED_QUOTE,
    ),
    "CSV text after a closing quote": (
        "csv",
        'prompt,category\na dog,x\n"a cat"s,y\n',
        3,
        errors.BAD_CSV.format(error="',' expected after '\"'"),
    ),
    "NUL byte in a CSV prompt": (
        "csv",
        "prompt\na dog\na c\x00t\n",
        3,
        errors.CONTROL_CHARACTER.format(field="prompt", code=0),
    ),
    "control character in a CSV category": (
        "csv",
        "prompt,category\na dog,anim\x07ls\n",
        2,
        errors.CONTROL_CHARACTER.format(field="category", code=7),
    ),
    "NUL byte in a CSV question": (
        "csv",
        "prompt,questions\na dog,Is it\x00a dog?\n",
        2,
        errors.CONTROL_CHARACTER.format(field="question", code=0),
    ),
    "escaped NUL in a JSONL prompt": (
        "jsonl",
        '{"prompt": "a dog"}\n{"prompt": "a c\\u0000t"}\n',
        2,
        errors.CONTROL_CHARACTER.format(field="prompt", code=0),
    ),
    "lone surrogate in a JSONL question": (
        "jsonl",
        '{"prompt": "a dog", "questions": ["Is it \\ud800?"]}\n',
        1,
        errors.CONTROL_CHARACTER.format(field="question", code=0xD800),
    ),
    "JSONL line nested 100,000 deep": (
        "jsonl",
        '{"prompt": "a dog"}\n{"prompt": "a cat", "questions": ' + nested_json(100_000) + "}\n",
        2,
        errors.JSON_TOO_DEEP.format(limit=limits.MAX_JSON_DEPTH.default),
    ),
    "JSONL integer of 5000 digits": (
        "jsonl",
        '{"prompt": "a dog", "questions": [' + "9" * 5000 + "]}\n",
        1,
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(UNSAFE_INPUT))
def test_it_refuses_unsafe_input_naming_its_line(case):
    """Open quotes, control characters and deep nesting are errors naming their line."""
    fmt, text, line, message = UNSAFE_INPUT[case]
    error = rejection(text, fmt)
    assert error.line == line
    if message is None:
        assert error.detail.startswith(errors.NOT_JSON.split("(")[0])
    else:
        assert error.detail == message


def test_a_prompt_keeps_its_tabs_and_line_breaks():
    """Tab and newline are text, not control characters, in a prompt."""
    rows = parse_prompt_rows('prompt\n"a dog\ton a\nsofa"\n', "csv")
    assert rows[0].text == "a dog\ton a\nsofa"


@pytest.mark.parametrize("text, fmt", [("", "csv"), ("prompt,category\n", "csv"), ("\n\n", "jsonl")])
def test_it_rejects_a_file_without_rows(text, fmt):
    """An empty file is an error, not an empty prompt set."""
    assert rejection(text, fmt).detail == errors.EMPTY_FILE


@pytest.mark.django_db
def test_it_refuses_a_name_already_taken_and_keeps_the_existing_set():
    """Importing under an existing name changes nothing."""
    prompt_set_import(name="animals", rows=parse_prompt_rows(CSV, "csv"))
    with pytest.raises(ImportRejected, match="already exists"):
        prompt_set_import(name="animals", rows=parse_prompt_rows(JSONL, "jsonl"))
    assert PromptSet.objects.count() == 1
    assert Prompt.objects.count() == 3


@pytest.mark.django_db
def test_the_command_imports_a_jsonl_file(tmp_path):
    """`import_prompts` reads the file and reports what it created."""
    path = tmp_path / "animals.jsonl"
    path.write_text(JSONL)
    out = _call("import_prompts", str(path))
    assert "Imported prompt set 'animals': 2 prompts, 3 alignment questions." in out
    assert AlignmentQuestion.objects.filter(expected_answer=False).count() == 1


@pytest.mark.django_db
def test_the_command_names_the_line_and_leaves_nothing_behind(tmp_path):
    """A bad row in the file stops the command; no prompt set is created."""
    path = tmp_path / "bad.csv"
    path.write_text("prompt,category\na dog,x\n,y\n")
    with pytest.raises(CommandError, match=r"bad.csv: line 3: field 'prompt' is empty"):
        _call("import_prompts", str(path), "--name", "bad")
    assert not PromptSet.objects.exists()
    assert not Prompt.objects.exists()


@pytest.mark.django_db
def test_the_command_rejects_an_unknown_extension(tmp_path):
    """A .txt file needs --format."""
    path = tmp_path / "prompts.txt"
    path.write_text(CSV)
    with pytest.raises(CommandError, match="unknown file format"):
        _call("import_prompts", str(path))
    _call("import_prompts", str(path), "--format", "csv")
    assert PromptSet.objects.get().name == "prompts"


@pytest.mark.django_db
def test_the_command_refuses_a_file_over_the_size_limit_unread(tmp_path, settings):
    """A prompt file past EVALHUB_MAX_TEXT_FILE_BYTES stops the command; nothing is created."""
    settings.EVALHUB_MAX_TEXT_FILE_BYTES = 1000
    path = tmp_path / "big.csv"
    path.write_text("prompt\n" + "".join(f"prompt number {i}\n" for i in range(200)))
    message = errors.FILE_TOO_LARGE.format(name="big.csv", limit=1000)
    with pytest.raises(CommandError, match=re.escape(f"big.csv: {message}")):
        _call("import_prompts", str(path))
    assert not PromptSet.objects.exists()


@pytest.mark.django_db
def test_the_command_refuses_a_control_character_in_the_name(tmp_path):
    """A set's name is text like any other: no control characters, no more than its column holds."""
    path = tmp_path / "p.csv"
    path.write_text(CSV)
    with pytest.raises(
        CommandError, match=re.escape(errors.CONTROL_CHARACTER.format(field="name", code=0x1B))
    ):
        _call("import_prompts", str(path), "--name", "bad\x1b[31m")
    with pytest.raises(CommandError, match=re.escape(errors.TOO_LONG.format(field="name", limit=200))):
        _call("import_prompts", str(path), "--name", "n" * 201)
    assert not PromptSet.objects.exists()


def _call(*args) -> str:
    import io

    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
