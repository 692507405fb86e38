"""JSON decoding with a bound on nesting, for text that comes from outside.

``json.loads`` descends one level of the C stack per level of nesting, so a body nested
100,000 deep raises ``RecursionError`` (a 500) before any validation sees it. Here the
depth is measured first, without recursing: strings are cut out with one regular
expression, the brackets left are summed as +1/-1, and only text within the bound is
decoded. The API's JSON parser (``evalhub.api_parsers``) and line-by-line imports call
:func:`json_loads_bounded`.
"""

import json
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

# A JSON string: a quote, then runs of plain characters and escapes, then a quote; or, when
# no quote closes it, the rest of the text. A match therefore never fails, and the scan
# stays linear even on text full of lone quotes and backslashes. (Unterminated, the text
# is refused by json.loads when it reaches that quote, at a depth already counted.)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}

TOO_DEEP = "JSON nested deeper than {max_depth} levels"


class JSONTooDeep(ValueError):
    """The text nests arrays and objects deeper than allowed; the message says the bound."""

    def __init__(self, max_depth: int):
        self.max_depth = max_depth
        super().__init__(TOO_DEEP.format(max_depth=max_depth))


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (0 for a scalar), counted
    outside strings and without recursion. Meant to be called before decoding: on text
    that is not JSON it returns a number that ``json.loads`` will refuse anyway."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets))))


def json_loads_bounded(
    text: str | bytes, *, max_depth: int, parse_constant: Callable[[str], Any] | None = None
) -> Any:
    """``json.loads(text)``, refused with :class:`JSONTooDeep` when arrays and objects
    nest deeper than ``max_depth``; other malformed text raises ``json.JSONDecodeError``
    (both are ``ValueError``).

    Args:
        text: the JSON document (bytes are decoded as UTF-8).
        max_depth: the deepest nesting accepted; ``[[1]]`` is 2.
        parse_constant: as for ``json.loads`` (called on NaN and Infinity).
    Returns:
        The decoded value.
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    # Fewer openers than the bound cannot nest past it: the common case skips the sum.
    if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
        raise JSONTooDeep(max_depth)
    return json.loads(text, parse_constant=parse_constant)
