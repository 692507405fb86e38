"""A researcher's whole path in headless Chromium, through the pages alone: a study of each
kind created with the form, its table, the preference pairs downloaded, a training job
launched from the study and its chart followed while the worker's code runs it.

The job runs in this process through the worker's code (evalhub.jobs.runner, as
tests/jobs/test_runner.py does), on a thread, while the page polls it."""

import io
import json
import threading
import zipfile

import pytest

from annotate.models import Study
from evalhub.jobs import runner
from evalhub.jobs.models import Job
from tests.browser import chromium
from tests.factories import PASSWORD
from tests.jobs.conftest import answer_best_worst

pytestmark = pytest.mark.browser

SERIES_POINTS = "() => [...document.querySelectorAll('#job-chart polyline')].map(l => l.points.numberOfItems)"


@pytest.fixture
def page(live_server, monkeypatch, alice):
    with chromium(monkeypatch) as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
        page.set_default_timeout(20000)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.press("#id_password", "Enter")
        yield page


def create_study(page, live_server, name: str, kind: str, models) -> Study:
    """Fill the new-study form as a researcher would and land on the study's page."""
    page.goto(f"{live_server.url}/annotate/research/studies/new/")
    page.select_option("#id_kind", kind)
    page.fill("#id_name", name)
    page.select_option("#id_prompt_set", label="animals")
    page.select_option("#id_model_a", str(models[0].pk))
    if kind == "ab":
        page.select_option("#id_model_b", str(models[1].pk))
    with page.expect_navigation():
        page.click("#study-form button[type=submit]")
    study = Study.objects.get(name=name)
    assert page.url.endswith(f"/results/studies/{study.pk}/")
    assert page.locator("h1").text_content().startswith(name)
    return study


def test_a_researcher_goes_from_a_study_form_to_a_trained_version(
    page, live_server, alice, as_worker, base_version, other_version, annotators, jobs_dir
):
    """Three studies from the form, each with its table; the best/worst one answered, its
    pairs downloaded as a ZIP and trained on from the train form, the chart filled in."""
    ab = create_study(page, live_server, "flaws and appeal", "ab", [base_version, other_version])
    roles = {m.role: m.model_version for m in ab.study_models.all()}
    assert ab.kind == "ab" and roles == {"A": base_version, "B": other_version}
    assert page.locator("text=Win rates").count() == 1

    create_study(page, live_server, "does it match", "alignment", [base_version])
    assert page.locator("h2", has_text="Text alignment").count() == 1

    best_worst = create_study(page, live_server, "best of five", "best_worst", [base_version])
    answer_best_worst(best_worst, annotators)
    page.reload()
    pairs_row = page.locator("tr", has_text="pairs decided")
    assert pairs_row.locator("td").text_content().strip() == "3"  # one per prompt

    with page.expect_download() as download:
        page.click("text=Download preference pairs")
    assert download.value.suggested_filename == "best-of-five-preferences.zip"
    archive = zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read()))
    names = set(archive.namelist())
    assert {"best-of-five-preferences/pairs.jsonl", "best-of-five-preferences/manifest.json"} <= names
    pairs = [json.loads(line) for line in archive.read("best-of-five-preferences/pairs.jsonl").splitlines()]
    assert len(pairs) == 3

    with page.expect_navigation():
        page.click("text=Train on these preferences")
    page.fill("[name=version_name]", "from-the-page")
    page.select_option("[name=method]", "simpo")
    page.fill("[name=max_steps]", "3")
    page.fill("[name=batch_size]", "2")
    page.fill("[name=validation_every]", "3")  # renders before step 1 and after step 3
    page.fill("[name=validation_prompts]", "1")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    job = Job.objects.get(source_study=best_worst)
    assert page.url.endswith(f"/jobs/{job.pk}/")
    assert page.evaluate(SERIES_POINTS) == []  # nothing run yet, nothing drawn

    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(state=runner.job_run(job.pk, worker="test")))
    worker.start()
    try:
        # The page polls the job's API every 2 s and reloads once the job has ended, showing
        # the new version; its chart then holds the run's three steps.
        page.wait_for_selector("#job-produced a", timeout=240000)
    finally:
        worker.join(timeout=240)
    assert outcome["state"] == Job.State.SUCCEEDED
    page.wait_for_function(f"() => ({SERIES_POINTS})().length > 0")
    assert set(page.evaluate(SERIES_POINTS)) == {3}
    assert page.locator("#job-produced a").text_content() == "from-the-page"
    assert page.locator("#job-state").text_content() == "succeeded"
    ticks = page.locator("#job-chart text").all_text_contents()
    assert "step" in ticks and len(ticks) >= 6
    # The validation grid: the study's first prompt, rendered before training and at the end.
    rows = page.locator("#job-samples tbody tr")
    assert rows.locator("th").all_text_contents() == ["Step 3", "Step 0 (before training)"]
    first_prompt = best_worst.prompt_set.prompts.order_by("pk").first().text
    assert page.locator("#job-samples thead th").all_text_contents() == ["Step", first_prompt]
    for image in rows.locator("img").all():
        image.scroll_into_view_if_needed()  # lazy-loaded
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
