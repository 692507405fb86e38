"""WSGI entry point (``gunicorn evalhub.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
application = get_wsgi_application()
# Import every view now (the statistics libraries behind the results pages take seconds),
# not in each worker's first request.
get_resolver().url_patterns  # noqa: B018 (the attribute imports them)
