"""The OpenAPI schema and its interactive page: for signed-in users only, with the error
contract declared once as the ``Error`` component."""

import pytest
import yaml
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

from evalhub.api_errors import CODES, ERROR_COMPONENT

ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}


@pytest.fixture
def schema(alice) -> dict:
    client = APIClient()
    client.force_authenticate(alice)
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/", "/api/docs/?script=", "/api/redoc/"])
def test_the_schema_and_its_page_are_closed_to_anonymous_users(client, db, url):
    """Anonymous callers get the contract's 403, not the API's map."""
    response = client.get(url)
    assert response.status_code == 403
    assert response.json()["code"] == "not_authenticated"


def test_the_error_component_lists_every_code(schema):
    """``Error`` has detail and code (required), the code an enum of the documented codes."""
    error = schema["components"]["schemas"][ERROR_COMPONENT]
    assert error["required"] == ["detail", "code"]
    assert error["properties"]["code"]["enum"] == list(CODES)


def test_every_operation_declares_its_errors_with_the_component(schema):
    """403 and 429 everywhere, 404 where the path names an object, 400 where a body is taken."""
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"403", "429"} | ({"404"} if "{" in path else set())
            expected |= {"400"} if "requestBody" in operation else set()
            for status in expected:
                assert responses[status]["content"]["application/json"]["schema"] == ERROR_REF, (
                    method,
                    path,
                    status,
                )


def test_no_input_field_is_named_like_the_contracts_keys(schema):
    """Field errors sit beside ``detail`` and ``code``: no input may have a field of those names."""
    components = schema["components"]["schemas"]
    for operations in schema["paths"].values():
        for operation in operations.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                ref = content["schema"].get("$ref", "")
                properties = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
                assert not {"detail", "code"} & set(properties), ref


def test_a_signed_in_user_gets_the_interactive_page_without_inline_code(client, alice):
    """/api/docs/ is Swagger UI from this site's static files, its start-up script a file too."""
    client.force_login(alice)
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200 and "swagger-ui-bundle.js" in html and "/static/" in html
    assert "<style" not in html and "<script>" not in html and 'src="/api/docs/?script="' in html
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


def test_redoc_comes_from_this_site_with_no_inline_script(client, alice):
    """/api/redoc/ loads Redoc from the sidecar's static files and starts it from its element;
    only this page lets Redoc's injected styles and its search worker through the policy."""
    client.force_login(alice)
    page = client.get("/api/redoc/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<script src="/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js">' in html
    assert '<redoc spec-url="/api/schema/">' in html
    assert "<script>" not in html and "<style" not in html and "googleapis" not in html
    policy = dict(part.strip().split(" ", 1) for part in page["Content-Security-Policy"].split(";"))
    assert policy["style-src"] == "'self' 'unsafe-inline'" and policy["worker-src"] == "'self' blob:"
    assert policy["script-src"] == "'self'"
    elsewhere = client.get("/api/docs/")["Content-Security-Policy"]
    assert "unsafe-inline" not in elsewhere and "blob:" not in elsewhere


def test_the_favicon_answers_where_browsers_look(client, db):
    """/favicon.ico leads to the site's icon, which every page names too."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("evalhub/favicon.svg")
    assert finders.find("evalhub/favicon.svg")


def test_the_researchers_menu_links_both_pages(client, alice):
    """A researcher reaches Swagger UI and Redoc from every page's menu."""
    client.force_login(alice)
    html = client.get("/catalog/prompt-sets/").content.decode()
    assert 'href="/api/docs/"' in html and 'href="/api/redoc/"' in html
