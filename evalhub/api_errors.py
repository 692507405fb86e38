"""The API's one error contract: every 4xx and 5xx under ``/api/`` is JSON
``{"detail": "<for people>", "code": "<for programs>"}`` (docs/annotation-api.md, "Errors").

A refusal of the input's fields keeps DRF's per-field shape beside the two keys:
``{"<field>": ["<reason>"], "detail": "<field>: <reason>", "code": "invalid"}`` (nested
serializers nest, ``detail`` names the first reason with its path). Errors of DRF views
pass through :func:`api_exception_handler` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``);
bodies that views return themselves get their code from :class:`APIJSONRenderer`; errors
Django answers before or after any view (an unknown URL, a body it refused, a CSRF
failure, an unhandled exception) come from ``evalhub.error_pages``, with the same shapes
and codes. The OpenAPI schema declares the shape once, as the ``Error`` component
(:func:`schema_error_responses`).
"""

from collections.abc import Mapping

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

API_PREFIX = "/api/"

# The codes, each with what it means; the schema lists them as the Error component's enum.
CODES = {
    "invalid": "the input was read but refused (fields, or a rule across them)",
    "parse_error": "the body is not JSON the API can read",
    "too_deep": "the JSON body nests arrays and objects deeper than EVALHUB_MAX_JSON_DEPTH",
    "too_large": "the body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE (or has too many fields)",
    "bad_request": "the request itself is malformed (Django refused it before any view)",
    "not_authenticated": "no credentials came with the request",
    "authentication_failed": "the credentials are wrong (unknown token, inactive user)",
    "permission_denied": "the caller's role does not allow this",
    "csrf_failed": "a session-authenticated call without a valid CSRF token",
    "not_found": "no such URL, or no such object for this caller",
    "method_not_allowed": "the URL does not take this HTTP method",
    "not_acceptable": "no answer in a media type the Accept header allows",
    "unsupported_media_type": "the body's Content-Type is not application/json",
    "conflict": "the request is valid but the object's state refuses it now (paused, answered…)",
    "throttled": "too many requests; Retry-After says how many seconds to wait",
    "server_error": "the server failed; nothing about the cause is shown, the error is logged",
    "error": "any other error status",
}

# The code of a status, for errors that carry no code of their own.
STATUS_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}

# The words of the errors Django answers itself (evalhub.error_pages).
BAD_REQUEST = "the request could not be read"
BODY_TOO_LARGE = "the request body is larger than {limit} bytes"
TOO_MANY_FIELDS = "the request has too many fields or files"
PERMISSION_DENIED = "you do not have permission to do this"
CSRF_FAILED = "CSRF Failed: {reason}"
NOT_FOUND = "nothing is at this URL"
SERVER_ERROR = "the server failed to answer this request; the error is logged"
INVALID_INPUT = "invalid input"


def is_api_path(path: str) -> bool:
    """Whether ``path`` (a request's ``path_info``) is under the API, which answers JSON."""
    return path.startswith(API_PREFIX)


def code_for_status(status: int) -> str:
    return STATUS_CODES.get(status, "error")


def error_data(detail: str, code: str) -> dict:
    """The body of an error: ``{"detail": ..., "code": ...}``."""
    return {"detail": str(detail), "code": code}


def api_error_response(detail: str, *, status: int, code: str | None = None) -> Response:
    """A DRF response for an error a view reports itself, e.g. an engine's refusal
    (``annotate.api.AnnotationAPIView``); ``code`` defaults to the status's."""
    return Response(error_data(detail, code or code_for_status(status)), status=status)


def _first_reason(detail, path: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str] | None:
    """The first message of a DRF error detail (an ``ErrorDetail``, which has a ``code``,
    or a plain string), with the path of fields that leads to it (``non_field_errors``
    left out of the path)."""
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            inner = path if key == "non_field_errors" else (*path, str(key))
            found = _first_reason(value, inner)
            if found:
                return found
        return None
    if isinstance(detail, list | tuple):
        for item in detail:
            found = _first_reason(item, path)
            if found:
                return found
        return None
    return path, detail


def validation_error_data(detail) -> dict:
    """A ValidationError's body: its per-field errors as DRF shapes them, plus ``detail``
    (the first reason, prefixed by its field path) and ``code`` ``"invalid"``."""
    found = _first_reason(detail)
    if found is None:
        summary = INVALID_INPUT
    else:
        path, message = found
        summary = f"{'.'.join(path)}: {message}" if path else str(message)
    fields = dict(detail) if isinstance(detail, Mapping) else {}
    return {**fields, **error_data(summary, "invalid")}


def api_exception_handler(exc, context):
    """DRF's handler (it sets ``WWW-Authenticate`` and ``Retry-After`` and rolls back),
    with the body put in the contract's shape. Anything that is not an API error is left
    to Django (``None``): ``evalhub.error_pages`` answers it as JSON."""
    # Imported here: rest_framework.views reads DEFAULT_RENDERER_CLASSES, which names
    # this module's renderer, when it is first imported.
    from rest_framework.views import exception_handler

    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    if request is not None and not isinstance(getattr(request, "accepted_renderer", None), JSONRenderer):
        # A view that answers YAML or HTML when it succeeds (the schema, its page) still
        # answers its errors in JSON; DRF renders the response with the request's renderer.
        request.accepted_renderer, request.accepted_media_type = APIJSONRenderer(), "application/json"
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_error_data(exc.detail)
        return response
    found = _first_reason(exc.detail)
    message = str(found[1]) if found else ""
    code = getattr(found and found[1], "code", None) or code_for_status(response.status_code)
    if code == "permission_denied" and message.startswith("CSRF Failed"):
        code = "csrf_failed"
    response.data = error_data(message, code)
    return response


class APIJSONRenderer(JSONRenderer):
    """JSON, with the contract's ``code`` added to an error body that a view returned
    itself (``Response({"detail": ...}, status=409)``) and that has none. Every other
    answer is rendered untouched: a status check is all a success costs."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code >= 400 and isinstance(data, Mapping):
            if "code" not in data:
                data = {**data, "code": code_for_status(response.status_code)}
            if "detail" not in data:
                found = _first_reason({k: v for k, v in data.items() if k != "code"})
                data = {**data, "detail": str(found[1]) if found else ""}
        return super().render(data, accepted_media_type, renderer_context)


# ---------------------------------------------------------------- OpenAPI

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Every 4xx and 5xx answer of the API. A refusal of the input's fields (code "
        "`invalid`) also carries DRF's per-field errors, `{field: [reason]}`, nested like "
        "the input, beside these two keys; no input field is named `detail` or `code`."
    ),
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in words for people."},
        "code": {
            "type": "string",
            "enum": list(CODES),
            "description": "What went wrong, for programs: "
            + "; ".join(f"`{code}`: {meaning}" for code, meaning in CODES.items()),
        },
    },
    "required": ["detail", "code"],
    "additionalProperties": {"description": "A field's errors (code `invalid` only)."},
}
ERROR_RESPONSES = {
    "400": "The input was refused (codes invalid, parse_error, too_deep, too_large).",
    "403": "No or wrong credentials, a role that does not allow this, or a CSRF failure "
    "(not_authenticated, authentication_failed, permission_denied, csrf_failed).",
    "404": "No such object for this caller (not_found).",
    "429": "Too many requests (throttled); the Retry-After header says when to try again.",
}


def schema_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: the ``Error`` component, and a reference to it
    for the error statuses of every operation (404 where the path names an object, 400
    where the operation takes a body) that does not describe them itself."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in ERROR_RESPONSES.items():
                if status == "404" and "{" not in path:
                    continue
                if status == "400" and "requestBody" not in operation:
                    continue
                operation["responses"].setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": reference}}},
                )
    return result
