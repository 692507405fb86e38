"""JSON bounded at the edge: nesting measured without recursion (evalhub/json_limits.py)
and the API's parser refusing deep or large bodies with a 400 (evalhub/api_parsers.py)."""

import io
import json

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from evalhub.api_parsers import BoundedJSONParser
from evalhub.json_limits import TOO_DEEP, JSONTooDeep, json_depth, json_loads_bounded

DEEP = 100_000  # the attacker's body: far past the interpreter's recursion limit


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ('"[[[["', 0),
        ("[]", 1),
        ("[[1], {}]", 2),
        ('{"a": [{"b": "]]]}}}"}]}', 3),
        ('["\\"[[", [["\\\\"]]]', 3),
        ("[" * DEEP + "]" * DEEP, DEEP),
    ],
)
def test_json_depth_counts_nesting_outside_strings(text, depth):
    """Brackets inside strings (escaped quotes included) do not count."""
    assert json_depth(text) == depth


def test_a_document_within_the_bound_is_decoded():
    """At exactly the bound, the document decodes as json.loads would."""
    text = "[" * 64 + "1" + "]" * 64
    assert json_loads_bounded(text, max_depth=64) == json.loads(text)


def test_a_document_past_the_bound_is_refused_with_a_value_error_naming_it():
    """One level more raises JSONTooDeep, a ValueError, with the bound in its message."""
    with pytest.raises(JSONTooDeep, match=f"^{TOO_DEEP.format(max_depth=64)}$") as refused:
        json_loads_bounded("[" * 65 + "]" * 65, max_depth=64)
    assert isinstance(refused.value, ValueError) and refused.value.max_depth == 64


def test_a_hundred_thousand_levels_never_reach_the_decoder():
    """The attacker's body is refused without a RecursionError, whether or not it is closed."""
    for text in ("[" * DEEP, "[" * DEEP + "]" * DEEP, '{"a":' * DEEP):
        with pytest.raises(JSONTooDeep):
            json_loads_bounded(text, max_depth=64)


def test_malformed_text_raises_the_decoders_error():
    """Text that is not JSON still fails as json.loads fails (also a ValueError)."""
    with pytest.raises(json.JSONDecodeError):
        json_loads_bounded('{"a": [1, 2}', max_depth=64)
    with pytest.raises(json.JSONDecodeError):
        json_loads_bounded('["unterminated', max_depth=64)


def test_bytes_are_decoded_as_utf8():
    """A JSONL line read as bytes decodes like its text."""
    assert json_loads_bounded('{"prompt": "café"}'.encode(), max_depth=4) == {"prompt": "café"}


# ---------------------------------------------------------------- the parser


def parse(raw: bytes, **context):
    return BoundedJSONParser().parse(io.BytesIO(raw), "application/json", context)


def test_the_parser_reads_no_more_than_the_limit_allows(settings):
    """Without a Content-Length to go by, a stream longer than the limit is refused after
    reading one byte past it."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    stream = io.BytesIO(b"[" + b"1," * 100 + b"1]")
    with pytest.raises(ParseError) as refused:
        BoundedJSONParser().parse(stream, "application/json", {})
    assert refused.value.detail.code == "too_large" and stream.tell() == 11


def test_the_parser_refuses_constants_json_does_not_define():
    """NaN and Infinity stay refused, as with DRF's parser."""
    with pytest.raises(ParseError, match="JSON parse error"):
        parse(b'{"a": NaN}')


def test_the_parser_refuses_a_charset_that_is_not_text():
    """A bytes-to-bytes codec named as the charset is refused, not decompressed."""
    with pytest.raises(ParseError, match="unsupported charset"):
        parse(b"{}", encoding="bz2_codec")


@pytest.fixture
def deep_body() -> bytes:
    return b'{"client_id": "x", "answer": ' + b"[" * DEEP + b"]" * DEEP + b"}"


def test_the_submit_endpoint_refuses_a_deep_body_with_a_400(bob, deep_body):
    """The annotator's submit answers 400 too_deep, not a 500, to a body nested 100,000 deep."""
    client = APIClient()
    client.force_authenticate(bob)
    response = client.post(
        "/api/annotate/assignments/" + "0" * 32 + "/submit/", deep_body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": TOO_DEEP.format(max_depth=32), "code": "too_deep"}


def test_the_studies_api_refuses_a_deep_body_with_a_400(alice, deep_body, settings):
    """The researchers' API refuses it too, at the depth the setting gives."""
    settings.EVALHUB_MAX_JSON_DEPTH = 8
    client = APIClient()
    client.force_authenticate(alice)
    response = client.post("/api/studies/", deep_body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": TOO_DEEP.format(max_depth=8), "code": "too_deep"}
