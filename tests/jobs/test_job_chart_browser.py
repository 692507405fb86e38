"""The job page in headless Chromium at 1366×768 while a job runs: the loss chart has axes
with tick labels, grid lines, axis titles and a legend with readable names, and grows as
the trainer writes steps; the log shows every step. No training runs: the test writes
``metrics.jsonl`` where the trainer writes it and beats as the worker's heartbeat does.
Chromium is Debian's package (`make test` installs it); Playwright only drives it."""

import json

import pytest
from PIL import Image

from evalhub.jobs import runner
from evalhub.jobs.folders import job_folder
from evalhub.jobs.models import Job
from tests.browser import chromium
from tests.factories import PASSWORD, ModelVersionFactory
from tests.jobs.test_job_log import append, metrics_line

pytestmark = pytest.mark.browser

TOTAL = 60

CHART = """() => {
  const svg = document.getElementById("job-chart");
  const texts = (selector) => [...svg.querySelectorAll(selector)].map((t) => t.textContent);
  const line = svg.querySelector(".chart-line[data-key=loss]");
  return {
    x: texts(".chart-x-axis .tick text"),
    y: texts(".chart-y-axis .tick text"),
    titles: texts(".chart-title"),
    legend: texts(".chart-legend text"),
    grid: svg.querySelectorAll(".chart-grid line").length,
    points: line ? line.getAttribute("points").split(" ").length : 0,
    width: svg.getBoundingClientRect().width,
    viewBox: svg.getAttribute("viewBox"),
  };
}"""


@pytest.fixture
def page(live_server, monkeypatch, alice):
    """A page signed in as Alice, and the console errors it reports (a refused script or
    style among them)."""
    with chromium(monkeypatch) as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(15000)
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        yield page, errors


@pytest.fixture
def running(transactional_db, jobs_dir, alice):
    """A running training job of TOTAL steps and the heartbeat of its worker (beaten by hand)."""
    job = Job.objects.create(
        kind=Job.Kind.TRAINING,
        state=Job.State.RUNNING,
        model_version=ModelVersionFactory(name="base"),
        progress_total=TOTAL,
        created_by=alice,
    )
    monitor = runner.JobMonitor(job)
    monitor.metrics_path = job_folder(job) / "run" / "metrics.jsonl"
    monitor.metrics_path.parent.mkdir(parents=True)
    return job, monitor


def write_steps(monitor, steps) -> None:
    """The trainer appends these steps; then the heartbeat beats once."""
    append(monitor.metrics_path, "".join(metrics_line(step) + "\n" for step in steps))
    monitor.beat()


def test_the_loss_chart_has_axes_and_a_legend_and_grows_while_the_job_runs(page, live_server, running):
    """At 1366×768: ≥3 tick labels on each axis, grid lines, "step" and "loss" titles, a legend
    of readable names; new steps add points and move the ticks; the log lists every step."""
    page, errors = page
    job, monitor = running
    write_steps(monitor, range(1, 6))
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.wait_for_function("() => document.querySelectorAll('#job-chart .chart-line').length === 3")
    first = page.evaluate(CHART)
    assert len(first["x"]) >= 3 and len(first["y"]) >= 3, first
    assert first["x"][0] == "0" and first["grid"] == len(first["x"]) + len(first["y"])
    assert first["titles"] == ["step", "loss"]
    assert first["legend"] == ["Loss", "Latent loss", "Pixel loss"]
    assert first["points"] == 5
    assert first["width"] > 1000 and first["viewBox"] == f"0 0 {round(first['width'])} 260"  # fills the row

    write_steps(monitor, range(6, 38))
    write_steps(monitor, range(38, TOTAL + 1))
    page.wait_for_function(
        "([n]) => document.querySelector('#job-chart .chart-line[data-key=loss]')"
        ".getAttribute('points').split(' ').length === n",
        arg=[TOTAL],
    )
    later = page.evaluate(CHART)
    assert len(later["x"]) >= 3 and len(later["y"]) >= 3, later
    assert later["x"] != first["x"] and float(later["x"][-1]) >= TOTAL
    page.wait_for_function(
        "([n]) => document.getElementById('job-progress-text').textContent === n + ' / ' + n", arg=[TOTAL]
    )
    log = page.locator("#job-log").text_content()
    shown = [line.split(" ")[2] for line in log.splitlines() if " step " in line]
    assert shown == [f"{step}/{TOTAL}" for step in range(1, TOTAL + 1)]
    assert errors == []


ERRORS = ("model_err_w_latent", "model_err_l_latent", "ref_err_w_latent", "ref_err_l_latent")
PROMPTS = ["a <i>small</i> red square on a long table", "a blue circle", "a green triangle", "a white cat"]

SAMPLES = """() => {
  const grid = document.querySelector("#job-samples table");
  const images = grid ? [...grid.querySelectorAll("img")] : [];
  const box = document.getElementById("job-samples");
  return {
    rows: grid ? [...grid.querySelectorAll("tbody th")].map((th) => th.textContent) : [],
    columns: grid ? [...grid.querySelectorAll("thead th")].map((th) => th.textContent) : [],
    loaded: images.filter((img) => img.complete && img.naturalWidth === 32).length,
    lazy: images.every((img) => img.loading === "lazy" && img.width > 0 && img.alt.startsWith("Validation")),
    empty: document.getElementById("job-samples-empty").hidden,
    boxScrolls: box.scrollWidth > box.clientWidth,
    pageWidth: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
  };
}"""


def error_line(step: int) -> str:
    """A DPO record with the model's and the reference's errors on winners and losers."""
    record = json.loads(metrics_line(step))
    record |= {key: 0.5 + 0.1 * i - 0.001 * step * (i < 2) for i, key in enumerate(ERRORS)}
    return json.dumps(record)


def render(job, step: int) -> None:
    folder = job_folder(job) / "run" / "samples" / f"step-{step:06d}"
    folder.mkdir(parents=True)
    for i in range(len(PROMPTS)):
        Image.new("RGB", (32, 32), (60 * i, 100, 140)).save(folder / f"{i:02d}.png")
    with (job_folder(job) / "run" / "metrics.jsonl").open("a") as handle:
        handle.write(
            json.dumps({"event": "samples", "step": step, "folder": f"samples/step-{step:06d}"}) + "\n"
        )


@pytest.mark.parametrize("viewport", [(1366, 768), (390, 844)])
def test_the_error_chart_and_the_samples_grid_follow_the_run(page, live_server, running, viewport):
    """A DPO job: the second chart draws the four errors under readable names (its legend
    wrapping on a phone); the samples grid appears with the first render and gains a row,
    newest first, with each later one; its images load; on a phone the grid scrolls inside
    its box and the page never scrolls sideways."""
    page, errors = page
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    job, monitor = running
    Job.objects.filter(pk=job.pk).update(config={"options": {"method": "dpo", "loss_space": "latent"}})
    append(monitor.metrics_path, "".join(error_line(step) + "\n" for step in range(1, 6)))
    monitor.beat()
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.wait_for_function("() => document.querySelectorAll('#job-error-chart .chart-line').length === 4")
    legend = page.evaluate(
        """() => [...document.querySelectorAll('#job-error-chart .chart-legend text')].map((t) => {
             const box = t.getBBox(); return [t.textContent, box.x + box.width]; })"""
    )
    assert [name for name, _ in legend] == [
        "Model error (winner, latent)", "Model error (loser, latent)",
        "Reference error (winner, latent)", "Reference error (loser, latent)",
    ]  # fmt: skip
    width = page.evaluate("() => document.getElementById('job-error-chart').getBoundingClientRect().width")
    assert all(right <= width for _, right in legend), (legend, width)
    assert page.evaluate(SAMPLES)["empty"] is False  # "none yet" shows

    (job_folder(job) / "run" / "samples").mkdir()
    (job_folder(job) / "run" / "samples" / "prompts.json").write_text(json.dumps({"prompts": PROMPTS}))
    render(job, 0)
    page.wait_for_function("() => document.querySelectorAll('#job-samples tbody tr').length === 1")
    render(job, 10)
    page.wait_for_function("() => document.querySelectorAll('#job-samples tbody tr').length === 2")
    page.locator("#job-samples").scroll_into_view_if_needed()
    page.wait_for_function(f"() => ({SAMPLES})().loaded === 8")
    grid = page.evaluate(SAMPLES)
    assert grid["rows"] == ["Step 10", "Step 0 (before training)"]
    assert grid["columns"] == ["Step", *PROMPTS] and grid["lazy"] and grid["empty"] is True
    assert grid["pageWidth"] <= grid["viewport"], grid
    if viewport[0] < 700:
        assert grid["boxScrolls"], grid
    assert errors == []
