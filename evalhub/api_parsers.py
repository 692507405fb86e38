"""The API's JSON parser: DRF's, with the body's size and nesting bounded before decoding.

DRF reads a JSON body straight from the request stream, so Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (which guards ``request.body`` and form fields) never
applies to it, and ``json.load`` recurses once per level of nesting. Here a body larger
than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` or nested deeper than ``EVALHUB_MAX_JSON_DEPTH`` is
refused with a 400 (``evalhub.api_errors`` words it) before anything is decoded.
"""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from evalhub.api_errors import BODY_TOO_LARGE
from evalhub.json_limits import JSONTooDeep, json_loads_bounded

UNKNOWN_CHARSET = "unsupported charset {encoding!r} in the Content-Type header"


class BodyTooLarge(ParseError):
    default_code = "too_large"


class BoundedJSONParser(JSONParser):
    """``application/json`` bodies of at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes and
    ``EVALHUB_MAX_JSON_DEPTH`` levels of nesting; refusals are 400s with a reason."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = parser_context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if limit is not None and declared and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(BODY_TOO_LARGE.format(limit=limit))
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise BodyTooLarge(BODY_TOO_LARGE.format(limit=limit))
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except LookupError:  # an unknown charset, or one that is not text (bz2_codec)
            raise ParseError(UNKNOWN_CHARSET.format(encoding=encoding)) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        try:
            return json_loads_bounded(
                text,
                max_depth=settings.EVALHUB_MAX_JSON_DEPTH,
                parse_constant=json.strict_constant if self.strict else None,
            )
        except JSONTooDeep as exc:
            raise ParseError(str(exc), code="too_deep") from None
        except ValueError as exc:
            # DRF's wording, which clients and tests already match on.
            raise ParseError(f"JSON parse error - {exc}") from None
