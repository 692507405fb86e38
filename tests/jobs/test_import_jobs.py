"""The import page's large archives as background jobs: stored first, queued on the CPU
queue, imported by the worker's code with progress, the upload deleted at the end; small
archives still import inside the request."""

import io
import json
import random
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from evalhub.catalog import errors
from evalhub.catalog.image_import_stream import ImportStoppedAtRow
from evalhub.catalog.models import GeneratedImage
from evalhub.catalog.views import IMPORT_QUEUED
from evalhub.jobs import runner, services
from evalhub.jobs.import_jobs import UPLOAD_GONE, UPLOADS_PREFIX
from evalhub.jobs.models import Job
from evalhub.storage import walk
from tests.factories import SHAPE_PROMPTS, shapes_prompt_set
from tests.jobs.conftest import queued

PROMPTS = SHAPE_PROMPTS
INLINE_MAX = 2000  # bytes: every archive of these tests but the smallest is "large"


@pytest.fixture
def shapes(db):
    return shapes_prompt_set()


@pytest.fixture(autouse=True)
def small_inline_limit(settings):
    settings.EVALHUB_IMPORT_INLINE_MAX_BYTES = INLINE_MAX
    settings.EVALHUB_IMPORT_CHUNK_ROWS = 4


def manifest_rows(count: int) -> list[dict]:
    return [
        {"prompt": PROMPTS[i % 3], "model": "sd15-base", "seed": i, "index": i // 3, "image": f"{i}.png"}
        for i in range(count)
    ]


def noise_png(seed: int, side: int = 24) -> bytes:
    """A PNG of random pixels (about 1.7 kB: it does not compress), different for each seed."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def archive_of(rows: list[dict], name: str = "study.zip") -> SimpleUploadedFile:
    """A ZIP of the manifest and one noise PNG per row, as a browser uploads it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
        for i, row in enumerate(rows):
            archive.writestr(row["image"], noise_png(i))
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def upload(client, prompt_set, archive, create_models=False):
    data = {"prompt_set": prompt_set.pk, "archive": archive}
    if create_models:
        data["create_models"] = "on"
    return client.post("/catalog/images/import/", data)


def uploads() -> list[str]:
    return list(walk(default_storage, UPLOADS_PREFIX))


def test_a_small_archive_still_imports_inside_the_request(client, alice, shapes, broker_queue, settings):
    """Up to EVALHUB_IMPORT_INLINE_MAX_BYTES: imported at once, no job, nothing stored."""
    archive = archive_of(manifest_rows(2))
    settings.EVALHUB_IMPORT_INLINE_MAX_BYTES = archive.size
    client.force_login(alice)
    response = upload(client, shapes, archive)
    assert response.status_code == 302 and response.url == f"/catalog/prompt-sets/{shapes.pk}/"
    assert GeneratedImage.objects.count() == 2
    assert not Job.objects.exists() and not uploads() and not queued(broker_queue, "cpu")


def test_a_large_archive_is_stored_and_queued_as_an_import_job_on_the_cpu_queue(
    client, alice, shapes, broker_queue, storage_kind, django_capture_on_commit_callbacks
):
    """Above the limit: the archive is in the default storage under uploads/, one import job
    waits on the cpu queue (none on gpu), and the researcher lands on its page."""
    archive = archive_of(manifest_rows(9))
    assert archive.size > INLINE_MAX
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, shapes, archive, create_models=True)
    job = Job.objects.get()
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    assert (job.kind, job.state, job.prompt_set, job.model_version, job.created_by) == (
        Job.Kind.IMPORT, Job.State.QUEUED, shapes, None, alice,
    )  # fmt: skip
    assert job.config["archive_name"] == "study.zip" and job.config["create_models"] is True
    assert (job.progress_step, job.progress_total) == (0, 9)
    assert uploads() == [job.config["upload"]]
    with default_storage.open(job.config["upload"], "rb") as stored:
        assert stored.read() == archive.file.getvalue()
    assert len(queued(broker_queue, "cpu")) == 1 and not queued(broker_queue, "gpu")
    assert not GeneratedImage.objects.exists()

    page = client.get(response.url).content.decode()
    assert IMPORT_QUEUED.format(size="", label=f"import job #{job.pk}").split("(")[0] in page
    assert 'id="job-progress"' in page and "Image import job" in page and "study.zip" in page


def test_an_upload_that_is_not_a_zip_is_refused_before_anything_is_stored(client, alice, shapes):
    """A large file that is no archive: the form says so; no job, no upload."""
    client.force_login(alice)
    not_a_zip = SimpleUploadedFile("big.zip", b"\x00" * (INLINE_MAX + 1), content_type="application/zip")
    response = upload(client, shapes, not_a_zip)
    assert response.status_code == 400
    assert errors.NOT_A_ZIP in response.content.decode()
    assert not Job.objects.exists() and not uploads()


def test_an_archive_whose_manifest_has_no_rows_is_refused_before_anything_is_stored(client, alice, shapes):
    """A large archive with an empty manifest: the form says so at once; no job, no upload."""
    client.force_login(alice)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.jsonl", "\n")
        archive.writestr("padding.png", noise_png(0, side=40))
    response = upload(client, shapes, SimpleUploadedFile("empty.zip", buffer.getvalue()))
    assert response.status_code == 400 and errors.EMPTY_FILE in response.content.decode()
    assert not Job.objects.exists() and not uploads()


def launch(client, researcher, prompt_set, rows) -> Job:
    """Upload the rows' archive (above the inline limit) as ``researcher``; the queued job."""
    client.force_login(researcher)
    archive = archive_of(rows)
    assert archive.size > INLINE_MAX
    response = upload(client, prompt_set, archive)
    job = Job.objects.latest("pk")
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    return job


def test_the_worker_imports_the_archive_with_progress_and_deletes_the_upload(
    client, alice, shapes, as_worker, storage_kind, monkeypatch
):
    """``job_run`` downloads the archive, imports its 10 rows a chunk of 4 at a time with
    progress 0, 4, 8, 10 of 10, records the counts and deletes the upload."""
    job = launch(client, alice, shapes, manifest_rows(10))
    seen = []
    original = runner.JobMonitor.set_progress
    monkeypatch.setattr(
        runner.JobMonitor, "set_progress", lambda self, *p: (seen.append(p), original(self, *p))[1]
    )
    assert runner.job_run(job.pk, worker="test") == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert seen == [(0, 10), (4, 10), (8, 10), (10, 10)]
    assert (job.progress_step, job.progress_total) == (10, 10)
    assert job.result["created"] == 10 and job.result["skipped"] == 0
    assert GeneratedImage.objects.filter(prompt__prompt_set=shapes).count() == 10
    assert not uploads()
    assert "imported 10 rows: 10 images imported, 0 already present" in job.log_tail

    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "10 rows: 10 images imported, 0 already present" in page
    api = APIClient()
    api.force_authenticate(alice)
    shown = api.get(f"/api/jobs/{job.pk}/").json()
    assert (shown["kind"], shown["model_version"], shown["progress_percent"]) == ("import", None, 100.0)
    assert "Image import" in client.get("/jobs/").content.decode()


def test_a_bad_row_fails_the_job_with_its_line_and_keeps_the_chunks_before_it(
    client, alice, shapes, as_worker
):
    """Line 7 names an unknown prompt: the job fails with the line and the 4 rows imported
    before its chunk, shown on its page; the upload is deleted (a retry would fail alike)."""
    rows = manifest_rows(9)
    rows[6]["prompt"] = "a purple hexagon"
    job = launch(client, alice, shapes, rows)
    assert runner.job_run(job.pk) == Job.State.FAILED
    job.refresh_from_db()
    unknown = errors.UNKNOWN_PROMPT.format(text="a purple hexagon", prompt_set="shapes")
    assert job.error.startswith(f"{ImportStoppedAtRow.__name__}: line 7: {unknown} (the 4 rows before it")
    assert job.result["created"] == 4 and GeneratedImage.objects.count() == 4
    assert not uploads()
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "line 7: prompt" in page


def test_a_cancelled_import_keeps_its_upload_and_its_retry_finishes_it(
    client, alice, shapes, as_worker, storage_kind
):
    """Cancel asked before the first chunk: the job ends cancelled, the upload stays; the
    retry imports every row and deletes it."""
    job = launch(client, alice, shapes, manifest_rows(6))
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    assert runner.job_run(job.pk) == Job.State.CANCELLED
    assert uploads() == [job.config["upload"]] and not GeneratedImage.objects.exists()

    retry = services.job_retry(Job.objects.get(pk=job.pk), user=alice)
    assert runner.job_run(retry.pk) == Job.State.SUCCEEDED
    retry.refresh_from_db()
    assert (retry.result["created"], retry.progress_step, retry.progress_total) == (6, 6, 6)
    assert not uploads()


def test_an_import_whose_upload_is_gone_fails_saying_so(client, alice, shapes, as_worker):
    """The upload deleted meanwhile: the job fails asking for a new upload."""
    job = launch(client, alice, shapes, manifest_rows(6))
    default_storage.delete(job.config["upload"])
    assert runner.job_run(job.pk) == Job.State.FAILED
    job.refresh_from_db()
    assert UPLOAD_GONE.format(name="study.zip") in job.error


def test_annotators_cannot_see_an_import_job(client, alice, bob, shapes):
    """Bob, an annotator, gets 403 on the job's page."""
    job = launch(client, alice, shapes, manifest_rows(6))
    client.force_login(bob)
    assert client.get(f"/jobs/{job.pk}/").status_code == 403


def test_the_api_schema_lists_every_job_kind(alice):
    """The jobs API's ``kind`` enum holds the import and export kinds; ``model_version`` may be null."""
    import yaml

    api = APIClient()
    api.force_authenticate(alice)
    components = yaml.safe_load(api.get("/api/schema/").content)["components"]["schemas"]
    assert components["Job"]["properties"]["kind"]["$ref"].endswith("/JobKindEnum")
    assert components["JobKindEnum"]["enum"] == ["training", "generation", "import", "export"]
    assert components["Job"]["properties"]["model_version"]["nullable"] is True
