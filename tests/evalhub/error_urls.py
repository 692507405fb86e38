"""The site's URLs plus a few that fail on purpose, for the error-contract tests
(``@pytest.mark.urls("tests.evalhub.error_urls")``)."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from evalhub.urls import handler400, handler403, handler404, handler500
from evalhub.urls import urlpatterns as site_urls

SECRET = "a detail only the server log may show"


def broken_page(request):
    raise RuntimeError(SECRET)


@csrf_exempt
def form_reader(request):
    """A plain Django view that reads a form body, where Django itself enforces its limits."""
    return HttpResponse(f"{len(request.POST)} fields")


class BrokenApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError(SECRET)


class BusyApi(APIView):
    """Answers an error body it builds itself, without a code (as some views do)."""

    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"detail": "busy right now"}, status=409)


class OpenApi(APIView):
    """Open to anonymous callers, so the anonymous rate applies."""

    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("broken/", broken_page),
    path("api/test/broken/", broken_page),
    path("api/test/broken-drf/", BrokenApi.as_view()),
    path("api/test/form/", form_reader),
    path("api/test/busy/", BusyApi.as_view()),
    path("api/test/open/", OpenApi.as_view()),
    *site_urls,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
