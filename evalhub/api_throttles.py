"""Request rates of the API (``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]``).

Three scopes, each with its rate in ``DEFAULT_THROTTLE_RATES`` (from the environment:
README, Configuration):

- ``annotator``: per user, on the endpoints that need the annotator role (the labeling
  page's calls). Generous: a person answers a few tasks a second at most, and the load
  test drives 32 bots at about 25 calls a second each.
- ``researcher``: per user, on every other endpoint (studies, results, jobs, the schema).
- ``anon``: per client address, for requests without credentials that a view lets
  through (most views refuse them first, as permissions are checked before rates).

A refused call is a 429 with ``Retry-After`` (DRF adds it from :meth:`wait`).

DRF's own throttles keep every timestamp of the window in the cache (up to 3,000 for an
annotator at the default rate) and rewrite the list on every call. These count calls in
fixed windows instead: one cache increment per call, so the hot path pays one cache
round trip (two with Redis, whose ``incr`` checks the key first). A client can pass up
to twice the rate across the edge of two windows, which is fine for a guard against
floods. Counts live in the default cache: per process with the local-memory cache,
shared by all workers once ``CACHE_URL`` points at Redis.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from evalhub.accounts.permissions import IsAnnotator


class FixedWindowRateThrottle(SimpleRateThrottle):
    """A ``SimpleRateThrottle`` counting calls per fixed window of the rate's period. The
    rate is read at each call, so a changed setting (a test's) applies at once."""

    def __init__(self):
        # SimpleRateThrottle reads its rate here; this one reads it in allow_request.
        self.wait_seconds = None

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        key = self.get_cache_key(request, view)
        rate = self.get_rate() if key is not None else None
        if rate is None:
            return True
        limit, period = self.parse_rate(rate)
        now = self.timer()
        window = int(now // period)
        key = f"{key}:{window}"
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window's first call (or its key expired)
            count = 1 if self.cache.add(key, 1, period + 1) else self.cache.incr(key)
        self.wait_seconds = (window + 1) * period - now
        return count <= limit

    def wait(self) -> float | None:
        return self.wait_seconds


def is_annotator_view(view) -> bool:
    """Whether the view is one of the annotator endpoints (it needs the annotator role)."""
    return any(
        isinstance(permission, type) and issubclass(permission, IsAnnotator)
        for permission in getattr(view, "permission_classes", ())
    )


class AnnotatorRateThrottle(FixedWindowRateThrottle):
    scope = "annotator"

    def get_cache_key(self, request, view):
        if request.user.is_authenticated and is_annotator_view(view):
            return f"throttle:{self.scope}:{request.user.pk}"
        return None


class ResearcherRateThrottle(FixedWindowRateThrottle):
    scope = "researcher"

    def get_cache_key(self, request, view):
        if request.user.is_authenticated and not is_annotator_view(view):
            return f"throttle:{self.scope}:{request.user.pk}"
        return None


class AnonymousRateThrottle(FixedWindowRateThrottle):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user.is_authenticated:
            return None
        return f"throttle:{self.scope}:{self.get_ident(request)}"
