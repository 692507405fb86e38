"""How the login lockout (django-axes) sees a client and answers it once locked."""

import math

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.conf import settings
from django.shortcuts import render


def lockout_response(request, original_response=None, credentials=None):
    """``AXES_LOCKOUT_CALLABLE``: 429 in the site's layout, with ``Retry-After`` when the
    lock expires by itself."""
    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else None
    context = {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": get_failure_limit(request, credentials),
        "retry_minutes": math.ceil(seconds / 60) if seconds else None,
    }
    response = render(request, "registration/locked_out.html", context, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


def client_address(request) -> str | None:
    """The client's address as the API's rates read it (DRF's ``get_ident`` with
    ``NUM_PROXIES``): the socket's peer, or with ``PROXY_COUNT`` proxies in front, the
    address the outermost of them saw, from X-Forwarded-For."""
    proxies = settings.PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        addresses = [address.strip() for address in forwarded.split(",")]
        return addresses[-min(proxies, len(addresses))]
    return request.META.get("REMOTE_ADDR")
