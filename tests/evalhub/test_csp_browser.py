"""The Content-Security-Policy in a real browser: the labeling page, the jobs page, the
results page and the API's pages render and work with no inline code refused. Chromium
is Debian's package (`make test` installs it); Playwright only drives it."""

import pytest

from annotate.services import study_create
from evalhub.jobs.models import Job
from tests.annotate.conftest import MODEL_A, MODEL_B, prompt_set  # noqa: F401  (fixtures)
from tests.browser import chromium
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(live_server, monkeypatch):
    """A headless Chromium; each page it opens records what the policy refused."""
    with chromium(monkeypatch) as launched:
        yield launched


def signed_in_page(browser, live_server, username: str):
    """A page logged in as ``username`` through the login form, and the list of the
    policy's refusals the browser reports on it."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(15000)
    refused = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page, refused


def test_the_labeling_page_works_under_the_policy(browser, live_server, prompt_set):  # noqa: F811
    """An annotator answers an A/B task with the keyboard; nothing is refused."""
    from evalhub.catalog.models import ModelVersion

    models = [ModelVersion.objects.get(name=MODEL_A), ModelVersion.objects.get(name=MODEL_B)]
    study = study_create(name="ab", kind="ab", prompt_set=prompt_set, model_versions=models, overlap=1)
    UserFactory(username="ines", role="annotators")
    page, refused = signed_in_page(browser, live_server, "ines")
    page.goto(f"{live_server.url}/annotate/studies/{study.pk}/")
    page.wait_for_selector("#lbl-task:not([hidden]) .lbl-image img")
    counter = page.locator("#lbl-counter").text_content()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "([before]) => document.getElementById('lbl-counter').textContent !== before", arg=[counter]
    )
    assert refused == []


def test_the_researchers_pages_work_under_the_policy(browser, live_server, alice, prompt_set):  # noqa: F811
    """The jobs, results and catalog pages and the API's Swagger page load with nothing refused."""
    from evalhub.catalog.models import ModelVersion

    model = ModelVersion.objects.get(name=MODEL_A)
    study = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model], overlap=1
    )
    job = Job.objects.create(kind=Job.Kind.TRAINING, model_version=model, created_by=alice)
    page, refused = signed_in_page(browser, live_server, "alice")
    for path in ("/jobs/", f"/results/studies/{study.pk}/", "/catalog/prompt-sets/"):
        assert page.goto(f"{live_server.url}{path}").status == 200, path
    with page.expect_response(lambda response: f"/api/jobs/{job.pk}/" in response.url) as polled:
        page.goto(f"{live_server.url}/jobs/{job.pk}/")  # its script polls the job's API
    assert polled.value.status == 200
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".swagger-ui .opblock")
    page.goto(f"{live_server.url}/api/redoc/")
    page.wait_for_selector("redoc h1")  # the API's title, rendered from the schema
    page.wait_for_selector("redoc [data-section-id^='operation/']")
    # Redoc's sidebar credit names an image on its CDN: the policy keeps the request from
    # leaving, and Redoc drops the image when it fails. Nothing else may be refused.
    credit = "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg'"
    assert [text for text in refused if not text.startswith(credit)] == []
