"""An annotator labels in headless Chromium with the keyboard alone: the page, its
JavaScript, the API and the database together. Chromium is Debian's package
(`make test` installs it); Playwright only drives it."""

from datetime import timedelta

import pytest

from annotate.models import Judgment, Study
from annotate.services import study_create
from tests.browser import chromium
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def page(live_server, monkeypatch):
    with chromium(monkeypatch) as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(15000)
        yield page


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
    # Shared exposure: one annotator answers both studies over the same images here, which
    # an isolated A/B study would not allow (tests/annotate/test_exposure.py).
    ab = study_create(
        name="ab",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=[model_a, model_b],
        overlap=1,
        exposure="shared",
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


# Hiding the page as a switch to another tab or window does: the window loses focus and the
# document becomes hidden; showing it undoes both.
HIDE = """() => {
  Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
  window.dispatchEvent(new FocusEvent("blur"));
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  delete document.visibilityState;
  document.dispatchEvent(new Event("visibilitychange"));
  window.dispatchEvent(new FocusEvent("focus"));
}"""


def test_a_preloaded_task_is_timed_from_when_it_appears_and_only_while_on_screen(
    page, live_server, prompt_set, model_a
):
    """A task counts from when it is visible: the first once its background tab is shown, the
    second (fetched with it) once it replaced the first; the seconds the page spends hidden are
    left out of the time on screen, and a resend repeats the figures."""
    study = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    annotator = UserFactory(username="lou", role="annotators")
    log_in(page, live_server, "lou")
    attempts = []  # (token, timing) of every submit the page makes

    def fail_the_second_answer_once(route):
        token = route.request.url.split("/")[-3]
        attempts.append((token, route.request.post_data_json.get("timing")))
        if len(attempts) == 2:
            route.fulfill(status=503, body="{}", content_type="application/json")
        else:
            route.continue_()

    page.route("**/submit/", fail_the_second_answer_once)
    page.add_init_script(f"({HIDE})()")  # opened in a background tab
    open_study(page, live_server, study)
    page.wait_for_selector("#lbl-task:not([hidden]) .lbl-image img")
    page.wait_for_timeout(1000)
    page.evaluate(SHOW)
    page.wait_for_timeout(1500)
    for key in ("1", "3", "Enter"):
        page.keyboard.press(key)
    page.wait_for_timeout(500)
    page.evaluate(HIDE)
    page.wait_for_timeout(2500)
    page.evaluate(SHOW)
    page.wait_for_timeout(500)
    for key in ("2", "4", "Enter"):
        page.keyboard.press(key)
    page.wait_for_function("() => document.getElementById('lbl-save').textContent === 'all answers saved'")

    first, second = Judgment.objects.filter(annotator=annotator).order_by("answered_at")
    # Both were fetched together, when the page opened; the first appeared when its tab was shown.
    assert abs(second.fetched_at - first.fetched_at) < timedelta(milliseconds=500)
    assert first.displayed_at - first.fetched_at > timedelta(seconds=0.9)
    # The second appeared when the first was answered, not when it was fetched.
    assert second.displayed_at - second.fetched_at > timedelta(seconds=2.4)
    assert abs(second.displayed_at - first.answered_at) < timedelta(milliseconds=500)
    # The first was on screen all along; the second not while the page was hidden.
    first_shown = (first.answered_at - first.displayed_at).total_seconds()
    assert first_shown > 1.4 and first.on_screen_seconds == pytest.approx(first_shown, abs=0.3)
    second_shown = (second.answered_at - second.displayed_at).total_seconds()
    assert second_shown > 3.4
    assert 0.9 < second.on_screen_seconds < second_shown - 2.4
    # The page sends durations only; the resend repeats them, answered longer ago.
    assert [token for token, _ in attempts[1:]] == [attempts[1][0]] * 2
    assert all(set(timing) == {"shown_for_ms", "on_screen_ms", "answered_ms_ago"} for _, timing in attempts)
    lost, resent = attempts[1][1], attempts[2][1]
    assert (lost["shown_for_ms"], lost["on_screen_ms"]) == (resent["shown_for_ms"], resent["on_screen_ms"])
    assert lost["answered_ms_ago"] < 100 and resent["answered_ms_ago"] >= 500
