"""An annotator labels in headless Chromium at 1366×768 with the keyboard alone: the
page, its JavaScript, the API and the database together. Chromium is Debian's package
(`make test` installs it); Playwright only drives it. The same page on a phone, by touch:
test_labeling_touch_browser.py, which shares the helpers here."""

from datetime import timedelta

import pytest

from annotate.models import ImageReport, Judgment, Lease, Study, TaskImage
from annotate.services import study_create
from tests.browser import chromium
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.browser

# What the page says next to its submit button (MESSAGES in annotate/static/annotate/messages.js).
CHOOSE_BEST_AND_WORST = "Choose the best image and the worst image."
CHOOSE_WORST = "Choose the worst image."
CHOOSE_SIDE = "Choose Left, Tie or Right — or Reject."
ANSWER_QUESTION_2 = "Answer question 2."
ANSWER_QUESTIONS_1_AND_2 = "Answer questions 1 and 2."
ALREADY_BEST_2 = "Image 2 is already the best: the worst must be another image."
BEST_2_NOW_WORST = "Image 2 was the best; now it is the worst. Choose the best image."

# Visible elements that reach past the viewport's left or right edge, as far as they are
# not clipped by an ancestor (the loupe's zoomed images are), and the page's own width
# when it scrolls sideways.
OVERFLOWING = """() => {
  const width = window.innerWidth, found = [], page = document.documentElement.scrollWidth;
  if (page > width) found.push("page " + page);
  for (const element of document.body.querySelectorAll("*")) {
    const rect = element.getBoundingClientRect();
    if (!rect.width || !rect.height || getComputedStyle(element).visibility === "hidden") continue;
    let left = rect.left, right = rect.right;
    for (let up = element.parentElement; up; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") {
        const clip = up.getBoundingClientRect();
        left = Math.max(left, clip.left);
        right = Math.min(right, clip.right);
      }
    }
    if (right > left && (right > width + 1 || left < -1)) {
      found.push(element.tagName + "#" + element.id + "." + element.className + " " + left + "–" + right);
    }
  }
  return found;
}"""


def overflowing(page) -> list[str]:
    """What sticks out of the viewport sideways on ``page``: empty when everything fits."""
    return page.evaluate(OVERFLOWING)


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


def wait_for_task(page) -> None:
    page.wait_for_selector("#lbl-task:not([hidden]) .lbl-image img")


def wait_until_done(page, count: int) -> None:
    """The "all done" page with ``count`` answers counted and saved, and nothing left to
    skip, report or press keys for."""
    page.wait_for_selector("#lbl-done:not([hidden])")
    page.wait_for_function(
        "([n]) => document.getElementById('lbl-counter').textContent === n + ' done · 0 remaining'",
        arg=[count],
    )
    page.wait_for_function("() => document.getElementById('lbl-save').textContent === 'all answers saved'")
    for hidden in ("#lbl-skip-btn", "#lbl-report-btn", "#lbl-keys", "#lbl-task"):
        assert page.locator(hidden).is_hidden(), hidden


def message(page) -> str:
    """The message next to the submit button, "" when none shows."""
    box = page.locator("#lbl-message")
    return box.text_content() if box.is_visible() else ""


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

    assert overflowing(page) == []  # the study table
    open_study(page, live_server, ab)
    assert page.locator("#lbl-prompt").is_hidden()
    for key in ["ArrowLeft", "ArrowRight", "ArrowDown", "r", "ArrowLeft", "ArrowLeft"]:
        wait_for_task(page)
        assert overflowing(page) == []
        page.keyboard.press("z")  # the loupe on and off again must not disturb the answer
        page.keyboard.press("z")
        page.keyboard.press(key)
        page.keyboard.press("Enter")
    wait_until_done(page, 6)

    open_study(page, live_server, bw)
    for _ in range(3):
        wait_for_task(page)
        assert overflowing(page) == []
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
        assert overflowing(page) == []
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


def checked_report_choice(page) -> str | None:
    """The label of the image chosen in the report dialog."""
    chosen = page.locator("#lbl-report-choices label:has(input:checked)")
    return chosen.text_content().strip() if chosen.count() else None


def test_the_report_dialog_takes_the_images_keys_while_its_focus_is_inside(
    page, live_server, prompt_set, model_a, model_b
):
    """With the report dialog open (its focus inside), 1–5 choose a best/worst image, and
    1/2 or ←/→ an A/B side, whose text speaks of Left and Right; Enter reports and skips."""
    bw = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    ab = study_create(
        name="ab",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=[model_a, model_b],
        overlap=1,
        exposure="shared",
    )
    annotator = UserFactory(username="mo", role="annotators")
    log_in(page, live_server, "mo")

    open_study(page, live_server, bw)
    wait_for_task(page)
    page.keyboard.press("b")
    dialog = page.locator("#lbl-report")
    assert dialog.is_visible()
    assert page.evaluate("() => document.getElementById('lbl-report').contains(document.activeElement)")
    assert "press its number" in dialog.text_content()
    page.keyboard.press("4")
    assert checked_report_choice(page) == "Image 4"
    page.keyboard.press("2")
    assert checked_report_choice(page) == "Image 2"
    with page.expect_response(lambda response: response.url.endswith("/report/")) as reported:
        page.keyboard.press("Enter")
    assert reported.value.status == 201 and dialog.is_hidden()

    open_study(page, live_server, ab)
    wait_for_task(page)
    page.keyboard.press("b")
    text = dialog.text_content()
    assert "Left or Right" in text and "number" not in text
    assert page.locator("#lbl-report-choices label").all_text_contents() == [" Left", " Right"]
    page.keyboard.press("ArrowRight")
    assert checked_report_choice(page) == "Right"
    page.keyboard.press("1")
    assert checked_report_choice(page) == "Left"
    page.keyboard.press("2")
    with page.expect_response(lambda response: response.url.endswith("/report/")) as reported:
        page.keyboard.press("Enter")
    assert reported.value.status == 201

    positions = {
        report.task.study_id: TaskImage.objects.get(task=report.task, image=report.image).position
        for report in ImageReport.objects.filter(annotator=annotator).select_related("task")
    }
    assert positions == {bw.pk: 1, ab.pk: 1}
    assert Lease.objects.filter(annotator=annotator, state=Lease.State.SKIPPED).count() == 2


def test_an_incomplete_answer_says_what_is_missing_next_to_the_submit_button(
    page, live_server, prompt_set, model_a, model_b
):
    """Enter or a click on Submit with the answer incomplete names what is missing beside
    the button, which stays clickable; the message follows the answer and goes when it is
    complete, for each kind."""
    bw = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    ab = study_create(
        name="ab",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=[model_a, model_b],
        overlap=1,
        exposure="shared",
    )
    al = study_create(name="al", kind="alignment", prompt_set=prompt_set, model_versions=[model_a], overlap=1)
    annotator = UserFactory(username="noor", role="annotators")
    log_in(page, live_server, "noor")
    saved = "() => document.getElementById('lbl-save').textContent === 'all answers saved'"

    open_study(page, live_server, bw)
    wait_for_task(page)
    page.keyboard.press("Enter")
    assert message(page) == CHOOSE_BEST_AND_WORST
    submit = page.locator("#lbl-submit")
    assert submit.is_enabled() and "is-incomplete" in submit.get_attribute("class")
    beside, button = page.locator("#lbl-message").bounding_box(), submit.bounding_box()
    assert abs((beside["y"] + beside["height"] / 2) - (button["y"] + button["height"] / 2)) < 20
    page.keyboard.press("2")
    assert message(page) == CHOOSE_WORST
    submit.click()
    assert message(page) == CHOOSE_WORST
    page.keyboard.press("5")
    assert message(page) == "" and "is-incomplete" not in submit.get_attribute("class")
    page.keyboard.press("Enter")
    page.wait_for_function(saved)

    open_study(page, live_server, ab)
    wait_for_task(page)
    submit.click()
    assert message(page) == CHOOSE_SIDE
    page.keyboard.press("ArrowLeft")
    assert message(page) == ""
    page.keyboard.press("Enter")
    page.wait_for_function(saved)

    open_study(page, live_server, al)
    page.keyboard.press("Enter")
    assert message(page) == ANSWER_QUESTIONS_1_AND_2
    page.keyboard.press("y")
    assert message(page) == ANSWER_QUESTION_2
    page.keyboard.press("Enter")
    assert page.locator("#lbl-questions li.is-current").text_content().startswith("Are there other")
    page.keyboard.press("n")
    assert message(page) == ""
    page.keyboard.press("Enter")
    page.wait_for_function(saved)

    answers = {
        j.task.study_id: j.answer for j in Judgment.objects.filter(annotator=annotator).select_related("task")
    }
    assert answers[bw.pk] == {"positive": 1, "negative": 4}
    assert answers[ab.pk] == {"choice": "left"}
    assert sorted(answers[al.pk]["answers"].values()) == [False, True]


def badges(page) -> list[str]:
    return page.locator(".lbl-badge").all_text_contents()


def test_choosing_the_best_image_again_or_as_the_worst_says_so(page, live_server, prompt_set, model_a):
    """Pressing the best image's number again leaves it the best and says the worst must be
    another; marking it the worst moves the mark and says so; the badges follow."""
    study = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    annotator = UserFactory(username="omar", role="annotators")
    log_in(page, live_server, "omar")
    open_study(page, live_server, study)
    wait_for_task(page)
    page.keyboard.press("2")
    assert badges(page) == ["", "BEST", "", "", ""] and message(page) == ""
    page.keyboard.press("2")
    assert message(page) == ALREADY_BEST_2
    assert badges(page) == ["", "BEST", "", "", ""]
    page.keyboard.press("Shift+2")
    assert message(page) == BEST_2_NOW_WORST
    assert badges(page) == ["", "WORST", "", "", ""]
    page.keyboard.press("4")
    assert message(page) == "" and badges(page) == ["", "WORST", "", "BEST", ""]
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('lbl-save').textContent === 'all answers saved'")
    assert [j.answer for j in Judgment.objects.filter(annotator=annotator)] == [
        {"positive": 3, "negative": 1}
    ]


def test_the_loupe_shows_its_zoom_and_s_skips_while_it_is_on(page, live_server, prompt_set, model_a, model_b):
    """Z shows "Loupe 3.0×", + and − change the figure, Shift+arrows and I J K L move both
    images alike without answering, and S skips the task with the loupe on."""
    study = study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=1
    )
    annotator = UserFactory(username="pia", role="annotators")
    log_in(page, live_server, "pia")
    open_study(page, live_server, study)
    wait_for_task(page)
    keys = page.locator("#lbl-keys").text_content()
    assert "I J K L" in keys and "W A S D" not in keys
    zoom = page.locator("#lbl-loupe-state")
    assert zoom.is_hidden()
    page.keyboard.press("z")
    assert zoom.text_content() == "Loupe 3.0×"
    page.keyboard.press("+")
    assert zoom.text_content() == "Loupe 3.8×"
    page.keyboard.press("-")
    assert zoom.text_content() == "Loupe 3.0×"

    def transforms() -> list[str]:
        return page.eval_on_selector_all(
            ".lbl-frame img", "images => images.map((img) => img.style.transform)"
        )

    seen = [transforms()]
    for key in ("Shift+ArrowRight", "Shift+ArrowDown", "l", "k"):
        page.keyboard.press(key)
        left, right = transforms()
        assert left == right and [left, right] not in seen, key
        seen.append([left, right])
    assert "is-incomplete" in page.locator("#lbl-submit").get_attribute("class")  # nothing chosen
    token = page.locator(".lbl-frame img").first.get_attribute("src").split("/")[-2]
    page.keyboard.press("s")
    page.wait_for_function(
        "([token]) => !document.querySelector('.lbl-frame img').src.includes(token)", arg=[token]
    )
    assert Lease.objects.get(token=token).state == Lease.State.SKIPPED
    assert zoom.is_hidden()  # the next task starts without the loupe
    assert not Judgment.objects.filter(annotator=annotator).exists()


def test_the_counter_counts_each_answer_the_moment_it_is_submitted(page, live_server, prompt_set, model_a):
    """After k submits the counter reads "k done" at once, before the server acknowledges
    the answers, and still does once it has."""
    study = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    annotator = UserFactory(username="quinn", role="annotators")
    log_in(page, live_server, "quinn")
    held = []  # submissions the server gets only once released

    def hold(route):
        if held is None:
            route.continue_()
        else:
            held.append(route)

    page.route("**/submit/", hold)
    open_study(page, live_server, study)
    counter = page.locator("#lbl-counter")
    page.wait_for_function("() => document.getElementById('lbl-counter').textContent.includes('done')")
    assert counter.text_content() == "0 done · 3 remaining"
    for k in (1, 2):
        wait_for_task(page)
        for key in ("1", "3", "Enter"):
            page.keyboard.press(key)
        assert counter.text_content() == f"{k} done · {3 - k} remaining"
    assert len(held) == 1  # the answers go one at a time
    released, held = held, None
    released[0].continue_()
    wait_for_task(page)
    assert counter.text_content() == "2 done · 1 remaining"
    for key in ("1", "3", "Enter"):
        page.keyboard.press(key)
    assert counter.text_content() == "3 done · 0 remaining"
    wait_until_done(page, 3)
    assert Judgment.objects.filter(annotator=annotator, task__study=study).count() == 3
