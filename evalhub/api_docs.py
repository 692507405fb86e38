"""The API's reference pages for people: Swagger UI (try a call) and Redoc (read the
reference), both from drf-spectacular-sidecar's static files, for signed-in users only
(``SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]``), beside the schema they render."""

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

# Redoc writes its styles into <style> elements at run time (styled-components) and runs
# its search in a worker made from a blob: URL. The page runs no inline script and shows
# only the schema, so only these two are allowed, and only on this page.
REDOC_POLICY = {"style-src": [SELF, UNSAFE_INLINE], "worker-src": [SELF, "blob:"]}

# Swagger UI's start-up script is served as a file (``?script=``), not inline.
swagger = SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html")


@method_decorator(csp_update(REDOC_POLICY), name="dispatch")
class RedocView(SpectacularRedocView):
    """Redoc, started by its ``<redoc>`` element (``REDOC_UI_SETTINGS`` stays unset: set,
    drf-spectacular's template would start it with an inline script)."""

    template_name = "api_redoc.html"
    url_name = "api-schema"


redoc = RedocView.as_view()
