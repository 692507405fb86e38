"""A crowd participant in headless Chromium: they arrive at the study's link with their
platform's ids, answer their quota by keyboard, see their completion code and are taken
to the completion URL; closing the tab mid-way and opening the link again resumes."""

import pytest

from annotate import errors
from annotate.models import CrowdParticipant, Enrollment, Judgment
from annotate.services import study_create
from tests.browser import chromium

pytestmark = pytest.mark.browser

CODE = "C0MPLETE42"


@pytest.fixture
def browser(live_server, monkeypatch):
    with chromium(monkeypatch) as browser:
        yield browser


def new_page(browser):
    """A page in a fresh context: no cookie from an earlier tab."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(15000)
    return page


def answer_one(page) -> None:
    """Left, submitted with Enter, and saved."""
    page.wait_for_selector("#lbl-task:not([hidden]) .lbl-image img")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('lbl-save').textContent === 'all answers saved'")


def test_a_participant_does_the_quota_sees_the_code_and_goes_back_to_the_platform(
    browser, live_server, prompt_set, model_a, model_b
):
    """Two tasks with a break in between: the same account resumes; then the code, and the redirect."""
    done_url = f"{live_server.url}/healthz"
    study = study_create(
        name="crowd",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=[model_a, model_b],
        overlap=1,
        exposure="shared",
        crowd_enabled=True,
        crowd_quota_tasks=2,
        crowd_completion_url=done_url,
        crowd_completion_code=CODE,
    )
    link = f"{live_server.url}/crowd/{study.pk}/?PROLIFIC_PID=P1234&STUDY_ID=S1&SESSION_ID=X1"

    page = new_page(browser)
    page.goto(link)
    page.wait_for_url(f"{live_server.url}/annotate/studies/{study.pk}/")
    answer_one(page)
    page.context.close()  # the participant closes the tab mid-way

    page = new_page(browser)
    page.goto(link)
    page.wait_for_url(f"{live_server.url}/annotate/studies/{study.pk}/")
    answer_one(page)
    page.wait_for_selector("#lbl-completion:not([hidden])")
    assert page.locator("#lbl-completion-code").text_content() == CODE
    assert page.locator("#lbl-completion-link").get_attribute("href") == done_url
    for hidden in ("#lbl-skip-btn", "#lbl-report-btn", "#lbl-task", "#lbl-done-default"):
        assert page.locator(hidden).is_hidden(), hidden
    page.wait_for_url(done_url)

    user = CrowdParticipant.objects.get(platform_id="P1234").user
    assert Judgment.objects.filter(annotator=user).count() == 2
    assert Enrollment.objects.get(study=study, annotator=user).completed_at is not None

    # The same participant in a new session of the platform: refused, politely.
    page = new_page(browser)
    response = page.goto(link.replace("SESSION_ID=X1", "SESSION_ID=X2"))
    assert response.status == 409
    assert errors.CROWD_ALREADY_TOOK_PART in page.locator("main").text_content()
    assert Enrollment.objects.filter(annotator=user).count() == 1
    assert Judgment.objects.filter(annotator=user).count() == 2
