"""An annotator labels on a phone (390×844, touch) in headless Chromium by tapping alone:
each kind of task fits the screen, with images large enough to judge and targets large
enough for a finger, and every answer reaches the database. The keyboard at 1366×768:
test_labeling_browser.py, whose helpers these tests share."""

import pytest

from annotate.models import ImageReport, Judgment
from annotate.services import study_create
from tests.annotate.test_labeling_browser import (
    ALREADY_BEST_2,
    ANSWER_QUESTION_2,
    CHOOSE_BEST_AND_WORST,
    CHOOSE_SIDE,
    badges,
    log_in,
    message,
    overflowing,
    wait_for_task,
    wait_until_done,
)
from tests.browser import chromium
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 2,
}

# Visible buttons of the labeling page (and its open dialogs) smaller than a fingertip.
SMALL_TARGETS = """() => Array.from(document.querySelectorAll("#labeling button, .lbl-report-choice"))
  .map((element) => [element.textContent.trim(), element.getBoundingClientRect()])
  .filter(([, rect]) => rect.width && (rect.width < 44 || rect.height < 44))
  .map(([text, rect]) => text + " " + rect.width + "×" + rect.height)"""

# Badges not wholly inside their image's frame, or cut off inside their own box.
CUT_BADGES = """() => Array.from(document.querySelectorAll(".lbl-badge")).filter((badge) => {
  if (!badge.textContent) return false;
  const rect = badge.getBoundingClientRect(), frame = badge.closest(".lbl-frame").getBoundingClientRect();
  return rect.left < frame.left || rect.right > frame.right || badge.scrollWidth > badge.clientWidth;
}).map((badge) => badge.textContent)"""


@pytest.fixture
def phone(live_server, monkeypatch):
    """A page in a phone-sized, touch-screen browser."""
    with chromium(monkeypatch) as browser:
        page = browser.new_context(**PHONE).new_page()
        page.set_default_timeout(15000)
        yield page


def start(page, live_server, study) -> None:
    """Tap the study's Start button on the annotator's home, which fits the phone."""
    assert overflowing(page) == []
    button = page.locator(f"a.button[href='/annotate/studies/{study.pk}/']")
    assert button.bounding_box()["height"] >= 44
    button.tap()
    wait_for_task(page)


def assert_fits_a_finger(page) -> None:
    assert overflowing(page) == []
    assert page.evaluate(SMALL_TARGETS) == []
    assert page.locator("#lbl-keys").is_hidden()  # no keyboard here
    assert all(not hint.is_visible() for hint in page.locator(".lbl-key-hint").all())


def tap_submit(page) -> None:
    submit = page.locator("#lbl-submit")
    box = submit.bounding_box()
    assert box["y"] + box["height"] <= 844  # kept in reach at the bottom of the screen
    submit.tap()


def test_an_annotator_picks_best_and_worst_by_tap_on_a_phone(phone, live_server, prompt_set, model_a):
    """Five images of at least 150 px in two columns; a tap marks the best, the next the worst,
    the Best/Worst buttons and the enlarged view mark directly; badges show whole, and the
    page says what is missing or that an image is already the best."""
    study = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    annotator = UserFactory(username="rosa", role="annotators")
    log_in(phone, live_server, "rosa")
    start(phone, live_server, study)
    frames = phone.locator(".lbl-frame")
    widths = phone.eval_on_selector_all(".lbl-frame img", "images => images.map((i) => i.offsetWidth)")
    assert len(widths) == 5 and min(widths) >= 150, widths
    assert_fits_a_finger(phone)

    tap_submit(phone)  # nothing chosen yet
    assert message(phone) == CHOOSE_BEST_AND_WORST
    frames.nth(1).tap()
    frames.nth(1).tap()
    assert message(phone) == ALREADY_BEST_2
    frames.nth(4).tap()
    assert badges(phone) == ["", "BEST", "", "", "WORST"]
    assert phone.evaluate(CUT_BADGES) == []
    assert_fits_a_finger(phone)
    tap_submit(phone)
    assert phone.locator("#lbl-counter").text_content() == "1 done · 2 remaining"

    wait_for_task(phone)
    phone.locator(".lbl-image").nth(0).get_by_role("button", name="Best").tap()
    phone.locator(".lbl-image").nth(3).get_by_role("button", name="Worst").tap()
    assert badges(phone) == ["BEST", "", "", "WORST", ""]
    pressed = phone.locator(".lbl-pick button[aria-pressed=true]").all_text_contents()
    assert pressed == ["Best", "Worst"]
    tap_submit(phone)

    wait_for_task(phone)
    phone.get_by_role("button", name="Enlarge image 3").tap()
    enlarged = phone.locator("#lbl-enlarge")
    assert enlarged.is_visible() and phone.locator("#lbl-enlarge-img").bounding_box()["width"] >= 300
    assert_fits_a_finger(phone)
    enlarged.get_by_role("button", name="Best").tap()
    assert enlarged.is_hidden()
    frames.nth(0).tap()
    assert badges(phone) == ["WORST", "", "BEST", "", ""]
    tap_submit(phone)

    wait_until_done(phone, 3)
    assert overflowing(phone) == []
    answers = [j.answer for j in Judgment.objects.filter(annotator=annotator).order_by("answered_at")]
    assert answers == [
        {"positive": 1, "negative": 4},
        {"positive": 0, "negative": 3},
        {"positive": 2, "negative": 0},
    ]


def pinch(page, selector: str, start: float, end: float) -> None:
    """Two fingers on the middle of ``selector``, moved from ``start`` to ``end`` px apart."""
    box = page.locator(selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp = page.context.new_cdp_session(page)

    def fingers(kind: str, apart: float | None) -> None:
        points = (
            []
            if apart is None
            else [{"x": x - apart / 2, "y": y, "id": 0}, {"x": x + apart / 2, "y": y, "id": 1}]
        )
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    fingers("touchStart", start)
    for step in range(1, 6):
        fingers("touchMove", start + (end - start) * step / 5)
    fingers("touchEnd", None)


def test_an_annotator_compares_two_images_by_tap_and_pinches_the_loupe_on_a_phone(
    phone, live_server, prompt_set, model_a, model_b
):
    """Left and Right side by side; a pinch turns the loupe on, sets its zoom (shown) for
    both images alike and leaves the page unzoomed; taps on an image or a choice answer."""
    study = study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=1
    )
    annotator = UserFactory(username="sam", role="annotators")
    log_in(phone, live_server, "sam")
    start(phone, live_server, study)
    assert_fits_a_finger(phone)
    tap_submit(phone)
    assert message(phone) == CHOOSE_SIDE

    pinch(phone, ".lbl-image:first-child .lbl-frame", 40, 100)
    assert phone.locator("#lbl-loupe-state").text_content() == "Loupe 7.5×"
    left, right = phone.eval_on_selector_all(
        ".lbl-frame img", "images => images.map((i) => i.style.transform)"
    )
    assert left == right and "scale(7.5)" in left
    assert phone.evaluate("() => window.visualViewport.scale") == 1
    assert_fits_a_finger(phone)
    phone.locator(".lbl-frame").nth(0).tap()  # with the loupe on, a tap still chooses
    tap_submit(phone)

    choice = "#lbl-choices button[data-choice={}]".format
    taps = [".lbl-frame >> nth=1", choice("tie"), choice("reject"), choice("right"), choice("left")]
    for target in taps:
        wait_for_task(phone)
        assert phone.locator("#lbl-loupe-state").is_hidden()
        phone.locator(target).tap()
        tap_submit(phone)
    wait_until_done(phone, 6)
    choices = [
        j.answer["choice"] for j in Judgment.objects.filter(annotator=annotator).order_by("answered_at")
    ]
    assert choices == ["left", "right", "tie", "reject", "right", "left"]


def test_an_annotator_answers_alignment_questions_by_tap_on_a_phone(phone, live_server, prompt_set, model_a):
    """The image above its questions; Yes and No side by side of equal size under each
    question; a broken image is reported by tap from a dialog that fits."""
    study = study_create(
        name="al", kind="alignment", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    annotator = UserFactory(username="tara", role="annotators")
    log_in(phone, live_server, "tara")
    start(phone, live_server, study)
    for _ in range(2):
        phone.wait_for_selector("#lbl-task:not([hidden]) #lbl-questions li")
        assert_fits_a_finger(phone)
        for row in phone.locator(".lbl-yesno").all():
            yes, no = (button.bounding_box() for button in row.get_by_role("button").all())
            assert yes["y"] == no["y"] and abs(yes["width"] - no["width"]) < 1
        phone.get_by_role("button", name="Yes", exact=True).first.tap()
        tap_submit(phone)
        assert message(phone) == ANSWER_QUESTION_2
        phone.get_by_role("button", name="No", exact=True).nth(1).tap()
        tap_submit(phone)

    wait_for_task(phone)
    phone.get_by_role("button", name="Report image").tap()
    assert phone.locator("#lbl-report").is_visible()
    assert_fits_a_finger(phone)
    with phone.expect_response(lambda response: response.url.endswith("/report/")) as reported:
        phone.get_by_role("button", name="Report and skip").tap()
    assert reported.value.status == 201
    wait_until_done(phone, 2)

    assert ImageReport.objects.filter(annotator=annotator, task__study=study).count() == 1
    for judgment in Judgment.objects.filter(annotator=annotator):
        assert sorted(judgment.answer["answers"].values()) == [False, True]
    assert Judgment.objects.filter(annotator=annotator).count() == 2
