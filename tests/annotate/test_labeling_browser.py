"""An annotator labels in headless Chromium with the keyboard alone: the page, its
JavaScript, the API and the database together. Chromium is Debian's package
(`make test` installs it); Playwright only drives it."""

import shutil
import threading

import pytest

from annotate.models import Judgment, Study
from annotate.services import study_create
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def page(live_server, monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM
    # calls are still synchronous, so Django's async guard does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is missing: apt-get install chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(15000)
        yield page
        browser.close()
    # Let the live server finish requests the page left in flight, so their database
    # connections are closed before the test database is dropped.
    for thread in threading.enumerate():
        if thread.name.endswith("(process_request_thread)"):
            thread.join(timeout=10)


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.focus("#id_username")
    page.keyboard.type(username)
    page.focus("#id_password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/annotate/")


def open_study(page, live_server, study: Study) -> None:
    page.goto(f"{live_server.url}/annotate/studies/{study.pk}/")
    page.wait_for_selector("#lbl-task:not([hidden])")


def wait_until_done(page, count: int) -> None:
    page.wait_for_selector("#lbl-done:not([hidden])")
    page.wait_for_function(
        "([n]) => document.getElementById('lbl-counter').textContent === n + ' done · 0 remaining'",
        arg=[count],
    )
    page.wait_for_function("() => document.getElementById('lbl-save').textContent === 'all answers saved'")


def test_an_annotator_completes_ab_and_best_of_five_with_the_keyboard(
    page, live_server, prompt_set, model_a, model_b, tmp_path
):
    """Arrow keys answer A/B tasks (both criteria), digits and Enter answer best-of-five tasks."""
    ab = study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=1
    )
    bw = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    annotator = UserFactory(username="ines", role="annotators")
    log_in(page, live_server, "ines")

    open_study(page, live_server, ab)
    assert page.locator("#lbl-prompt").is_hidden()
    for key in ["ArrowLeft", "ArrowRight", "ArrowDown", "r", "ArrowLeft", "ArrowLeft"]:
        page.wait_for_selector("#lbl-task:not([hidden]) .lbl-image img")
        page.keyboard.press("z")  # the loupe on and off again must not disturb the answer
        page.keyboard.press("z")
        page.keyboard.press(key)
        page.keyboard.press("Enter")
    wait_until_done(page, 6)

    open_study(page, live_server, bw)
    for _ in range(3):
        page.wait_for_selector("#lbl-task:not([hidden]) .lbl-image img")
        page.keyboard.press("2")
        page.keyboard.press("5")
        page.keyboard.press("Enter")
    wait_until_done(page, 3)

    ab_choices = sorted(
        j.answer["choice"] for j in Judgment.objects.filter(task__study=ab, annotator=annotator)
    )
    assert ab_choices == sorted(["left", "right", "tie", "reject", "left", "left"])
    assert set(ab.tasks.values_list("criterion", flat=True)) == {"flaws", "appeal"}
    bw_answers = [j.answer for j in Judgment.objects.filter(task__study=bw, annotator=annotator)]
    assert bw_answers == [{"positive": 1, "negative": 4}] * 3


def test_an_annotator_answers_alignment_questions_with_y_and_n(page, live_server, prompt_set, model_a):
    """Y and N answer the highlighted question and move on; Enter submits, S skips."""
    study = study_create(
        name="al", kind="alignment", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    annotator = UserFactory(username="jo", role="annotators")
    log_in(page, live_server, "jo")
    asks = []  # whether each "next" asked for the counter
    page.on(
        "request",
        lambda request: asks.append(request.post_data_json["progress"]) if "/next/" in request.url else None,
    )
    open_study(page, live_server, study)
    for key in ["Enter", "Enter", "s"]:  # answer two tasks, skip the third
        page.wait_for_selector("#lbl-task:not([hidden]) #lbl-questions li")
        page.keyboard.press("y")
        page.keyboard.press("n")
        page.keyboard.press(key)
    wait_until_done(page, 2)
    for judgment in Judgment.objects.filter(annotator=annotator).select_related("task__prompt"):
        first, second = judgment.task.prompt.questions.order_by("position").values_list("pk", flat=True)
        assert judgment.answer == {"answers": {str(first): True, str(second): False}}
    assert Judgment.objects.filter(annotator=annotator).count() == 2
    # The counter comes with the first "next", then with each answer's acknowledgement;
    # after the skip, which reports no counter, "next" asks once more.
    assert asks[0] is True and asks.count(True) == 2, asks


def test_an_answer_survives_a_server_error_and_is_recorded_once(page, live_server, prompt_set, model_a):
    """A submit that fails with a 503 is retried with the same client_id until it is acknowledged."""
    study = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    annotator = UserFactory(username="kim", role="annotators")
    log_in(page, live_server, "kim")
    failures = {"left": 2}
    seen_ids = []

    def flaky(route):
        seen_ids.append(route.request.post_data_json["client_id"])
        if failures["left"]:
            failures["left"] -= 1
            route.fulfill(status=503, body="{}", content_type="application/json")
        else:
            route.continue_()

    page.route("**/submit/", flaky)
    open_study(page, live_server, study)
    page.keyboard.press("1")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('lbl-save').textContent === 'all answers saved'")
    assert len(seen_ids) == 3 and len(set(seen_ids)) == 1
    assert [j.answer for j in Judgment.objects.filter(annotator=annotator)] == [
        {"positive": 0, "negative": 2}
    ]
