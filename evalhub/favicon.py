"""``/favicon.ico``: browsers ask for it whatever a page's ``<link rel="icon">`` names."""

from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_safe


@require_safe
def favicon(request):
    # Resolved per request: in production the static file's name carries its hash, which
    # the manifest knows only after collectstatic.
    return HttpResponsePermanentRedirect(static("evalhub/favicon.svg"))
