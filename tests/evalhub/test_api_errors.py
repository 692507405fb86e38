"""One error contract: every 4xx and 5xx under /api/ is JSON ``{"detail", "code"}``, the
rest of the site answers its errors with pages in its layout (evalhub/api_errors.py,
evalhub/error_pages.py). The test runner runs with DEBUG off, as production does."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotate import errors
from evalhub.api_errors import (
    BAD_REQUEST,
    BODY_TOO_LARGE,
    CSRF_FAILED,
    NOT_FOUND,
    SERVER_ERROR,
    api_exception_handler,
    validation_error_data,
)
from tests.evalhub.error_urls import SECRET

SUBMIT = "/api/annotate/assignments/{}/submit/"
UNKNOWN_TOKEN = "0" * 32


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error(response, status: int, code: str) -> dict:
    """The response is the contract's JSON error with this status and code; its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    return body


# ---------------------------------------------------------------- the API


def test_an_unknown_api_url_is_a_json_404(client, db):
    """A URL under /api/ that nothing serves answers 404 JSON, not the site's page."""
    body = assert_error(client.get("/api/no-such-thing/"), 404, "not_found")
    assert body["detail"] == NOT_FOUND


def test_anonymous_api_calls_are_refused_in_json(client, db):
    """Without credentials the API answers 403 not_authenticated."""
    assert_error(client.get("/api/studies/"), 403, "not_authenticated")


def test_a_wrong_token_is_refused_in_json(db):
    """An unknown token answers authentication_failed, DRF's header kept."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    body = assert_error(client.get("/api/studies/"), 403, "authentication_failed")
    assert body["detail"] == "Invalid token."


def test_a_role_that_does_not_allow_it_is_refused_in_json(bob):
    """An annotator calling the researchers' API gets permission_denied."""
    assert_error(api_for(bob).get("/api/studies/"), 403, "permission_denied")


def test_a_wrong_method_is_refused_in_json(alice):
    """DELETE on a list answers 405 method_not_allowed."""
    assert_error(api_for(alice).delete("/api/studies/"), 405, "method_not_allowed")


def test_a_body_that_is_not_json_is_refused_with_the_parse_error(bob):
    """Malformed JSON answers 400 parse_error, in DRF's words."""
    response = api_for(bob).post(SUBMIT.format(UNKNOWN_TOKEN), "{nope", content_type="application/json")
    body = assert_error(response, 400, "parse_error")
    assert body["detail"].startswith("JSON parse error - ")


def test_a_form_body_is_refused_by_the_researchers_api(alice):
    """The API reads JSON only: a form body answers 415 unsupported_media_type."""
    response = api_for(alice).post("/api/studies/", {"name": "x"}, format="multipart")
    assert_error(response, 415, "unsupported_media_type")


def test_field_errors_keep_drfs_shape_beside_detail_and_code(alice):
    """A refusal of the input's fields keeps {field: [reason]}, and adds the first reason
    (with its field) as detail and "invalid" as code."""
    response = api_for(alice).post("/api/studies/", {"kind": "ab"}, format="json")
    body = assert_error(response, 400, "invalid")
    assert body["name"] == ["This field is required."]
    field = next(key for key in body if key not in ("detail", "code"))
    assert body["detail"] == f"{field}: {body[field][0]}"


def test_the_engine_keeps_its_status_and_message_and_gains_a_code(bob):
    """The annotation engine's errors keep their status and words, with the status's code."""
    body = {"client_id": "6f1c2a52-2a5c-4a0e-9a40-0d8c4f3b8c11", "answer": {"choice": "left"}}
    response = api_for(bob).post(SUBMIT.format(UNKNOWN_TOKEN), body, format="json")
    assert assert_error(response, 404, "not_found") == {
        "detail": errors.UNKNOWN_ASSIGNMENT,
        "code": "not_found",
    }


def test_a_too_large_json_body_is_refused_before_it_is_read(bob, settings):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE answers 400 too_large on the annotator endpoints."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"client_id": "x", "answer": {"text": "y" * 2000}}
    response = api_for(bob).post(SUBMIT.format(UNKNOWN_TOKEN), body, format="json")
    assert assert_error(response, 400, "too_large")["detail"] == BODY_TOO_LARGE.format(limit=1000)


def test_a_too_large_json_body_is_refused_on_the_researchers_api(alice, settings):
    """The same limit holds on every API endpoint."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api_for(alice).post("/api/studies/", {"guidelines": "y" * 2000}, format="json")
    assert_error(response, 400, "too_large")


def test_a_csrf_failure_of_a_session_call_is_json(bob):
    """A session-authenticated call without the CSRF header answers 403 csrf_failed."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post(SUBMIT.format(UNKNOWN_TOKEN), "{}", content_type="application/json")
    body = assert_error(response, 403, "csrf_failed")
    assert body["detail"].startswith("CSRF Failed: ")


@pytest.mark.urls("tests.evalhub.error_urls")
def test_a_body_django_refuses_is_a_json_400(client, db, settings):
    """A form body over DATA_UPLOAD_MAX_MEMORY_SIZE, refused by Django before any API code,
    still answers the contract's 400 too_large."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post("/api/test/form/", {"field": "x" * 500})
    assert assert_error(response, 400, "too_large")["detail"] == BODY_TOO_LARGE.format(limit=100)


def test_a_host_the_site_does_not_serve_is_a_json_400(client, db):
    """Django's refusal of the Host header answers bad_request under /api/."""
    body = assert_error(client.get("/api/studies/", HTTP_HOST="evil.example"), 400, "bad_request")
    assert body["detail"] == BAD_REQUEST


@pytest.mark.urls("tests.evalhub.error_urls")
@pytest.mark.parametrize("url", ["/api/test/broken/", "/api/test/broken-drf/"])
def test_an_unhandled_exception_is_a_json_500_without_the_traceback(db, url):
    """A crash in a Django or a DRF view answers 500 server_error, and shows nothing of the cause."""
    response = Client(raise_request_exception=False).get(url)
    body = assert_error(response, 500, "server_error")
    assert body == {"detail": SERVER_ERROR, "code": "server_error"}
    assert SECRET not in response.content.decode() and "Traceback" not in response.content.decode()


@pytest.mark.urls("tests.evalhub.error_urls")
def test_an_error_body_a_view_builds_itself_gets_the_code_of_its_status(client, db):
    """Response({"detail": ...}, status=409) from a view is completed with code "conflict"."""
    response = client.get("/api/test/busy/")
    assert assert_error(response, 409, "conflict") == {"detail": "busy right now", "code": "conflict"}


def test_a_validation_error_without_fields_is_one_reason():
    """A ValidationError raised with a message (not per field) is {detail, code}."""
    from rest_framework.exceptions import ValidationError

    assert validation_error_data(ValidationError("too late").detail) == {
        "detail": "too late",
        "code": "invalid",
    }
    nested = ValidationError({"timing": {"on_screen_ms": ["must not exceed"]}}).detail
    assert validation_error_data(nested)["detail"] == "timing.on_screen_ms: must not exceed"


def test_anything_but_an_api_error_is_left_to_django():
    """The handler answers None for other exceptions, so Django's handler500 answers them."""
    assert api_exception_handler(RuntimeError("x"), {}) is None


# ---------------------------------------------------------------- the site's pages


def test_an_unknown_page_is_the_sites_404_page(client, db):
    """Outside /api/ a 404 is an HTML page in the site's layout."""
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Page not found" in page and "/static/evalhub/site.css" in page and "/no-such-page/" in page


@pytest.mark.urls("tests.evalhub.error_urls")
def test_a_crashing_page_is_the_sites_500_page_without_the_traceback(db):
    """Outside /api/ a crash answers the site's 500 page, never a debug page."""
    response = Client(raise_request_exception=False).get("/broken/")
    page = response.content.decode()
    assert response.status_code == 500 and "Server error" in page and "/static/evalhub/site.css" in page
    assert SECRET not in page and "Traceback" not in page


def test_a_form_posted_without_its_csrf_token_is_the_sites_403_page(db):
    """The login form posted without a CSRF token answers the site's styled 403 page."""
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "a", "password": "b"})
    page = response.content.decode()
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")
    assert "Forbidden" in page and "reload the page" in page and "/static/evalhub/site.css" in page


def test_a_page_a_role_may_not_see_is_the_sites_403_page(client, bob):
    """An annotator opening a researchers' page gets the styled 403 page, not a bare one."""
    client.force_login(bob)
    response = client.get("/catalog/prompt-sets/")
    page = response.content.decode()
    assert response.status_code == 403 and "Forbidden" in page and "/static/evalhub/site.css" in page


def test_csrf_failure_reason_is_shown_to_api_callers(rf):
    """The CSRF view names Django's reason for API callers."""
    from evalhub.error_pages import csrf_failure

    response = csrf_failure(rf.post("/api/studies/"), reason="CSRF cookie not set.")
    assert response.status_code == 403
    assert response.content.decode() == (
        '{"detail": "' + CSRF_FAILED.format(reason="CSRF cookie not set.") + '", "code": "csrf_failed"}'
    )
