"""A training job's validation samples: the grid on its page (a row per rendered step, a
column per prompt), the researcher-only view that serves each image from the run folder,
and the API's ``samples`` field. The files are written by hand where the trainer writes
them (``run/samples/prompts.json``, ``run/samples/step-{K:06d}/{i:02d}.png``)."""

import json
import re

import pytest
from PIL import Image
from rest_framework.test import APIClient

from evalhub.jobs.folders import job_folder
from evalhub.jobs.models import Job
from tests.factories import ModelVersionFactory
from tests.jobs.conftest import client_for
from tests.jobs.test_job_page import page_text

PROMPTS = ["a <b>bold</b> cat & a dog", "a red square"]


def render(job: Job, step: int, indexes=(0, 1), size=(32, 24)) -> None:
    """The trainer's render at ``step``: one PNG per prompt index."""
    folder = job_folder(job) / "run" / "samples" / f"step-{step:06d}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in indexes:
        Image.new("RGB", size, (40 * i, 80, 120)).save(folder / f"{i:02d}.png")


def write_prompts(job: Job, prompts=PROMPTS) -> None:
    path = job_folder(job) / "run" / "samples" / "prompts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"prompts": prompts, "seeds": list(range(len(prompts))), "steps": 20}))


@pytest.fixture
def training_job(db, jobs_dir, alice):
    """A running SimPO job that rendered its prompts at steps 0 and 10."""
    job = Job.objects.create(
        kind=Job.Kind.TRAINING,
        state=Job.State.RUNNING,
        model_version=ModelVersionFactory(),
        config={"options": {"method": "simpo", "loss_space": "latent+pixel"}},
        progress_total=20,
        created_by=alice,
    )
    write_prompts(job)
    render(job, 0)
    render(job, 10)
    return job


def test_the_page_shows_a_row_per_step_and_a_column_per_prompt(client, alice, training_job):
    """Newest step first, step 0 labelled as before training; the prompts head the columns,
    escaped; each image lazy-loaded from the samples view with its size and alt text."""
    client.force_login(alice)
    html = client.get(f"/jobs/{training_job.pk}/").content.decode()
    grid = re.search(r'<table class="job-samples-grid">.*?</table>', html, re.S).group(0)
    rows = re.findall(r'<tr data-step="(\d+)"><th scope="row">([^<]*)</th>', grid)
    assert rows == [("10", "Step 10"), ("0", "Step 0 (before training)")]
    assert "a &lt;b&gt;bold&lt;/b&gt; cat &amp; a dog" in grid and "<b>bold</b>" not in grid
    assert "a red square" in grid
    images = re.findall(r"<img [^>]*>", grid)
    assert len(images) == 4
    first = images[0]
    assert f'src="/jobs/{training_job.pk}/samples/10/0.png"' in first
    assert 'loading="lazy"' in first and 'width="32" height="24"' in first
    assert 'alt="Validation sample at step 10: a &lt;b&gt;bold&lt;/b&gt; cat &amp; a dog"' in first
    assert f'src="/jobs/{training_job.pk}/samples/0/1.png"' in images[3]
    assert "Validation samples" in page_text(html)
    assert 'data-signature="10:0,1;0:0,1|2"' in html


def test_a_missing_image_leaves_its_cell_empty_and_unknown_prompts_are_numbered(client, alice, training_job):
    """A render still being written shows the images there; without prompts.json the
    columns read "Prompt 1", "Prompt 2"."""
    (job_folder(training_job) / "run" / "samples" / "prompts.json").unlink()
    render(training_job, 20, indexes=(1,))
    client.force_login(alice)
    html = client.get(f"/jobs/{training_job.pk}/").content.decode()
    assert '<th scope="col">Prompt 1</th><th scope="col">Prompt 2</th>' in html
    row = re.search(r'<tr data-step="20">.*?</tr>', html).group(0)
    assert row.count("<img") == 1 and "<td></td>" in row and "/samples/20/1.png" in row


def test_a_run_without_samples_says_none_yet_and_a_finished_one_hides_the_section(
    client, alice, db, jobs_dir
):
    """Before the first render the section says so (job.js fills it); a finished job that
    rendered nothing (validation_every = 0) has no section."""
    job = Job.objects.create(
        kind=Job.Kind.TRAINING, state=Job.State.RUNNING, model_version=ModelVersionFactory(), created_by=alice
    )
    client.force_login(alice)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="job-samples-empty">None yet' in html and "job-samples-grid" not in html
    Job.objects.filter(pk=job.pk).update(state=Job.State.SUCCEEDED)
    assert "Validation samples" not in client.get(f"/jobs/{job.pk}/").content.decode()


def test_the_sample_view_serves_the_png_to_researchers(client, alice, training_job):
    """The owner researcher gets the image as image/png, byte for byte."""
    client.force_login(alice)
    response = client.get(f"/jobs/{training_job.pk}/samples/10/1.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    path = job_folder(training_job) / "run" / "samples" / "step-000010" / "01.png"
    assert b"".join(response.streaming_content) == path.read_bytes()


def test_the_sample_view_refuses_annotators_and_anonymous_users(client, bob, charlie, training_job):
    """Annotators and users without a role get 403; anonymous users are sent to log in."""
    url = f"/jobs/{training_job.pk}/samples/10/0.png"
    for user in (bob, charlie):
        client.force_login(user)
        assert client.get(url).status_code == 403
    client.logout()
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_sample_view_answers_404_for_anything_not_rendered(client, alice, training_job, db):
    """Another job, a generation job, a step or prompt not rendered, numbers past what a run
    writes, and a folder where an image should be: 404 each, never a 500."""
    generation = Job.objects.create(kind=Job.Kind.GENERATION, model_version=ModelVersionFactory())
    render(generation, 10)  # files where a training job's would be: still not a training job's
    (job_folder(training_job) / "run" / "samples" / "step-000030" / "00.png").mkdir(parents=True)
    client.force_login(alice)
    pk = training_job.pk
    for url in (
        f"/jobs/{pk + 1000}/samples/10/0.png",
        f"/jobs/{generation.pk}/samples/10/0.png",
        f"/jobs/{pk}/samples/5/0.png",
        f"/jobs/{pk}/samples/10/2.png",
        f"/jobs/{pk}/samples/10/16.png",
        f"/jobs/{pk}/samples/{10**40}/0.png",
        f"/jobs/{pk}/samples/30/0.png",
    ):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/jobs/{pk}/samples/10/..%2F..%2Fmetrics.png").status_code == 404


def test_the_api_lists_the_samples_with_their_urls(alice, training_job, db):
    """The job's detail has ``samples``: the prompts, the image size and each step's images
    with their URLs, newest first; null for a job that rendered nothing."""
    samples = client_for(alice).get(f"/api/jobs/{training_job.pk}/").json()["samples"]
    assert samples["prompts"] == PROMPTS and (samples["width"], samples["height"]) == (32, 24)
    assert [row["step"] for row in samples["steps"]] == [10, 0]
    assert samples["steps"][1]["images"] == [
        {"index": 0, "url": f"/jobs/{training_job.pk}/samples/0/0.png"},
        {"index": 1, "url": f"/jobs/{training_job.pk}/samples/0/1.png"},
    ]
    other = Job.objects.create(kind=Job.Kind.TRAINING, model_version=ModelVersionFactory())
    assert client_for(alice).get(f"/api/jobs/{other.pk}/").json()["samples"] is None
    assert APIClient().get(f"/api/jobs/{training_job.pk}/").status_code in (401, 403)


def test_foreign_files_in_the_samples_folder_are_not_listed(alice, training_job):
    """Only the trainer's names count: no other folder or file, no non-canonical number."""
    samples = job_folder(training_job) / "run" / "samples"
    (samples / "step-10").mkdir()
    Image.new("RGB", (4, 4)).save(samples / "step-10" / "00.png")
    (samples / "step-000010" / "0.png").write_bytes(b"x")
    (samples / "step-000010" / "notes.txt").write_text("hi")
    (samples / "other").mkdir()
    listed = client_for(alice).get(f"/api/jobs/{training_job.pk}/").json()["samples"]["steps"]
    assert [(row["step"], [image["index"] for image in row["images"]]) for row in listed] == [
        (10, [0, 1]),
        (0, [0, 1]),
    ]
