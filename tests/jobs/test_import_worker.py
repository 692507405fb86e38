"""A background import through the UI with a real `celery worker` process on the cpu
queue: the page that queued it answers at once, other pages keep answering while the
worker imports, and the job's progress moves chunk by chunk to the total.

On the embedded default (SQLite file database, filesystem broker), as in the demo.
"""

import io
import json
import random
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image
from rest_framework.test import APIClient

from evalhub.catalog.models import GeneratedImage, ModelVersion, Prompt, PromptSet
from evalhub.jobs.models import Job
from tests.jobs.test_worker_loop import worker_env  # noqa: F401  (a fixture)
from tests.workers import celery_worker

IMAGES = 60
SIDE = 512  # noise PNGs of about 0.8 MB: a few seconds of decoding, so beats fall mid-import
CHUNK_ROWS = 5
SLOWEST_PAGE_SECONDS = 2.0


def noise_archive(prompts: list[str]) -> SimpleUploadedFile:
    """A ZIP of IMAGES noise PNGs over ``prompts`` and their manifest."""
    buffer = io.BytesIO()
    rows = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(IMAGES):
            png = io.BytesIO()
            pixels = random.Random(i).randbytes(SIDE * SIDE * 3)
            Image.frombytes("RGB", (SIDE, SIDE), pixels).save(png, "PNG", compress_level=1)
            archive.writestr(f"{i}.png", png.getvalue())
            prompt, index = prompts[i % len(prompts)], i // len(prompts)
            image = f"{i}.png"
            rows.append({"prompt": prompt, "model": "sd15-base", "seed": i, "index": index, "image": image})
        archive.writestr("manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    return SimpleUploadedFile("study.zip", buffer.getvalue(), content_type="application/zip")


@pytest.mark.django_db(transaction=True)
def test_a_background_import_keeps_the_site_responsive_and_shows_progress(
    client, alice, request, settings, tmp_path
):
    """60 images through the import page: 302 to the job at once; while the worker imports,
    the prompt-set list answers within 2 s each time and the job's progress is seen between
    0 and 60; it ends succeeded at 60/60 with every image in."""
    if connection.vendor != "sqlite":
        pytest.skip("the embedded default is SQLite with the filesystem broker")
    environment = request.getfixturevalue("worker_env") | {"EVALHUB_IMPORT_CHUNK_ROWS": str(CHUNK_ROWS)}
    settings.EVALHUB_IMPORT_INLINE_MAX_BYTES = 1024 * 1024
    prompt_set = PromptSet.objects.create(name="lighthouses")
    texts = [f"a lighthouse at dusk, view {i}" for i in range(20)]
    Prompt.objects.bulk_create(Prompt(prompt_set=prompt_set, text=t, position=i) for i, t in enumerate(texts))
    ModelVersion.objects.create(name="sd15-base")
    archive = noise_archive(texts)
    api = APIClient()
    api.force_authenticate(alice)
    client.force_login(alice)
    log = tmp_path / "worker.log"

    with celery_worker(environment, log, queues="cpu", name="cpu@%h"):
        started = time.monotonic()
        response = client.post("/catalog/images/import/", {"prompt_set": prompt_set.pk, "archive": archive})
        assert response.status_code == 302, response.content.decode()[-2000:]
        job_id = Job.objects.get(kind=Job.Kind.IMPORT).pk
        assert response.url == f"/jobs/{job_id}/"
        queued_in = time.monotonic() - started

        progress, page_seconds, deadline = [], [], time.monotonic() + 180
        while True:
            job = api.get(f"/api/jobs/{job_id}/").json()
            if job["state"] == "running":
                progress.append(job["progress_step"])
                before = time.monotonic()
                assert client.get("/catalog/prompt-sets/").status_code == 200
                page_seconds.append(time.monotonic() - before)
            if job["state"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)

    assert job["state"] == "succeeded", job["error"] + job["log_tail"]
    assert (job["progress_step"], job["progress_total"]) == (IMAGES, IMAGES)
    assert GeneratedImage.objects.filter(prompt__prompt_set=prompt_set).count() == IMAGES
    assert queued_in < 10, f"the upload's request took {queued_in:.1f} s"
    assert any(0 < step < IMAGES for step in progress), progress
    assert progress == sorted(progress), progress
    assert page_seconds and max(page_seconds) < SLOWEST_PAGE_SECONDS, page_seconds
