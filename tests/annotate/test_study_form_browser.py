"""The new-study form in headless Chromium: its script shows the chosen kind's fields only,
and the hidden fields are not sent, so a study created with it carries what its kind takes."""

import pytest

from annotate.models import Study
from tests.browser import chromium
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def shown(page) -> set[str]:
    """The fields whose wrapper is in view."""
    return {
        wrapper.get_attribute("id").removeprefix("field-")
        for wrapper in page.query_selector_all(".field:not([hidden])")
    }


def test_the_form_shows_the_fields_of_the_chosen_kind(
    live_server, monkeypatch, alice, prompt_set, model_a, model_b
):
    """Best/worst hides the A/B and alignment fields; A/B shows its own; alignment its models and index."""
    with chromium(monkeypatch) as browser:
        page = browser.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.press("#id_password", "Enter")
        page.goto(f"{live_server.url}/annotate/research/studies/new/")
        every = {
            "name",
            "title",
            "kind",
            "prompt_set",
            "model_a",
            "overlap",
            "lease_seconds",
            "guidelines",
            "skip_incomplete",
            "access",
            "quality_action",
            "quality_min_gold",
            "quality_gold_accuracy",
            "quality_floor_seconds",
            "quiz_size",
            "quiz_pass_percent",
            "gold_rate_percent",
            "crowd_enabled",
            "crowd_quota_tasks",
            "crowd_quota_minutes",
            "crowd_completion_url",
            "crowd_completion_code",
        }
        page.select_option("#id_kind", "best_worst")
        assert shown(page) == every
        page.select_option("#id_kind", "ab")
        assert shown(page) == every | {"model_b", "criteria", "image_index", "exposure", "display_size"}
        page.fill("#id_display_size", "8x8")  # an A/B setting, which alignment refuses if sent
        page.select_option("#id_kind", "alignment")
        assert shown(page) == every | {"more_models", "image_index"}
        page.fill("#id_name", "aligned")
        page.select_option("#id_prompt_set", str(prompt_set.pk))
        page.select_option("#id_model_a", str(model_a.pk))
        page.check(f"#field-more_models input[value='{model_b.pk}']")
        with page.expect_navigation():
            page.click("#study-form button[type=submit]")
    study = Study.objects.get(name="aligned")
    assert (study.kind, study.exposure, study.model_versions.count()) == ("alignment", "", 2)
