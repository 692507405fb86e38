"""What Django answers for the errors no view answers itself: ``handler400/403/404/500``
of ``evalhub/urls.py`` and ``CSRF_FAILURE_VIEW``.

Under ``/api/`` each answers JSON in the API's contract (``evalhub.api_errors``), never
a page; elsewhere a page in the site's layout (``templates/400.html`` …). With
``DEBUG=1`` Django shows its debug pages for 404 and 500 instead, as it does for any
handler. The 400 and 500 pages render without the request, as Django's own do: the
request may be what is broken (a bad Host header), or the database behind the context
processors.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

from evalhub.api_errors import (
    BAD_REQUEST,
    BODY_TOO_LARGE,
    CSRF_FAILED,
    NOT_FOUND,
    PERMISSION_DENIED,
    SERVER_ERROR,
    TOO_MANY_FIELDS,
    error_data,
    is_api_path,
)

logger = logging.getLogger(__name__)

# Shown on the site's CSRF page: the usual cause is a form left open past a log-in elsewhere.
CSRF_PAGE_REASON = "The form was out of date or your browser did not send its cookie."


def _json(detail: str, code: str, status: int) -> JsonResponse:
    return JsonResponse(error_data(detail, code), status=status)


def _page_without_request(template_name: str, status: int) -> HttpResponse:
    """A page rendered with no request context; a bare line if even that fails."""
    try:
        body = loader.get_template(template_name).render()
    except Exception:  # the page of last resort must not raise
        logger.exception("error page %s could not be rendered", template_name)
        body = f"<!doctype html><title>Error {status}</title><h1>Error {status}</h1>"
    return HttpResponse(body, status=status)


@requires_csrf_token
def bad_request(request, exception=None):
    if is_api_path(request.path_info):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _json(BODY_TOO_LARGE.format(limit=limit), "too_large", 400)
        if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
            return _json(TOO_MANY_FIELDS, "too_large", 400)
        return _json(BAD_REQUEST, "bad_request", 400)
    return _page_without_request("400.html", 400)


@requires_csrf_token
def permission_denied(request, exception=None):
    reason = str(exception or "") or PERMISSION_DENIED
    if is_api_path(request.path_info):
        return _json(reason, "permission_denied", 403)
    return render(request, "403.html", {"reason": reason}, status=403)


@requires_csrf_token
def page_not_found(request, exception=None):
    if is_api_path(request.path_info):
        return _json(NOT_FOUND, "not_found", 404)
    return render(request, "404.html", {"request_path": request.path}, status=404)


@requires_csrf_token
def server_error(request):
    if is_api_path(request.path_info):
        return _json(SERVER_ERROR, "server_error", 500)
    return _page_without_request("500.html", 500)


def csrf_failure(request, reason=""):
    """``CSRF_FAILURE_VIEW``: a form posted without a valid CSRF token."""
    if is_api_path(request.path_info):
        return _json(CSRF_FAILED.format(reason=reason), "csrf_failed", 403)
    return render(request, "403.html", {"reason": CSRF_PAGE_REASON, "csrf": True}, status=403)
