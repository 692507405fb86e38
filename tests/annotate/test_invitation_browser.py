"""A newcomer joins through an invitation link in headless Chromium: signs up, lands on
the study and labels a task; a revoked link shows its polite page. Chromium is Debian's
package (`make test` installs it); Playwright only drives it."""

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from annotate.enrollment import invitation_create, invitation_revoke
from annotate.models import Enrollment, Judgment
from annotate.services import study_create
from tests.annotate.test_labeling_browser import wait_for_task
from tests.browser import chromium

pytestmark = pytest.mark.browser

PASSWORD = "a quiet brown heron 42"


@pytest.fixture
def page(live_server, monkeypatch):
    cache.clear()  # the sign-up counts
    with chromium(monkeypatch) as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(15000)
        yield page


@pytest.fixture
def study(prompt_set, model_a):
    return study_create(
        name="bw-private-name",
        title="Pick the best and the worst",
        kind="best_worst",
        prompt_set=prompt_set,
        model_versions=[model_a],
        overlap=1,
        access="enrolled",
    )


def test_a_newcomer_signs_up_through_the_link_and_labels_a_task(page, live_server, study, alice):
    """The link's page names the study by its title; the sign-up lands on the study, whose
    first task the newcomer answers with the keyboard."""
    invitation = invitation_create(studies=[study], created_by=alice, email_domain="example.org")
    page.goto(f"{live_server.url}/join/{invitation.token}/")
    assert page.locator("#join-studies").text_content().strip() == "Pick the best and the worst"
    assert "bw-private-name" not in page.content()
    page.fill("#id_username", "ines")
    page.fill("#id_email", "ines@example.org")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("#join-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/annotate/studies/{study.pk}/")
    wait_for_task(page)
    page.keyboard.press("2")
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('lbl-save').textContent === 'all answers saved'")
    ines = User.objects.get(username="ines")
    assert Enrollment.objects.filter(study=study, annotator=ines, invitation=invitation).exists()
    assert [j.answer for j in Judgment.objects.filter(annotator=ines)] == [{"positive": 1, "negative": 4}]


def test_a_revoked_link_shows_a_polite_page(page, live_server, study, alice):
    """No form, the reason, and a way home."""
    invitation = invitation_create(studies=[study], created_by=alice)
    invitation_revoke(invitation=invitation)
    response = page.goto(f"{live_server.url}/join/{invitation.token}/")
    assert response.status == 410
    assert "withdrawn" in page.locator("#join-closed-reason").text_content()
    assert page.locator("main form").count() == 0
