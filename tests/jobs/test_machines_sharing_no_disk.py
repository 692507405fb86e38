"""Several machines, as a scaled-out deployment runs them: the web app and two workers, each
in a working directory of its own that shares no file with the others, connected only by
PostgreSQL, Redis and an S3 bucket (the moto server).

The researcher puts a base model in the bucket and imports images through the web pages;
five annotators answer a best/worst study; a training job starts on worker 1, which is
killed mid-run after it uploaded a checkpoint; worker 2, started in a third directory,
reaps the dead job, retries it, continues from that checkpoint, registers the version by
its stored weights, generates its images and the Compare studies are made; an annotator
of the A/B study gets the right pixels through the per-task image URL.

The production configuration only: it runs in ``make test``'s PostgreSQL pass.
"""

import io
import json
import signal
import time
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from annotate.models import Study, TaskImage
from annotate.services import study_create
from evalhub.catalog.models import ModelVersion, Prompt, PromptSet
from evalhub.env import subprocess_env
from evalhub.jobs import runner
from evalhub.jobs.models import Job
from evalhub.jobs.run_sync import stored_checkpoints
from tests.annotate.conftest import unique_png
from tests.factories import UserFactory
from tests.jobs.conftest import answer_best_worst, database_url
from tests.jobs.test_worker_loop import wait_for
from tests.workers import celery_worker
from training.tiny import build_tiny_pipeline

HEARTBEAT_TIMEOUT = 3
PROMPTS = [f"a lighthouse at dusk, take {i}" for i in range(3)]


def _machine(root: Path) -> dict[str, str]:
    """The folders of one machine: nothing in them is seen by another."""
    root.mkdir()
    return {
        "EVALHUB_VAR_DIR": str(root / "var"),
        "MEDIA_ROOT": str(root / "var" / "media"),
        "EVALHUB_JOBS_DIR": str(root / "var" / "jobs"),
        "EVALHUB_WEIGHTS_CACHE_DIR": str(root / "var" / "weights-cache"),
    }


def _files(root: Path, folder: str) -> list[str]:
    base = root / "var" / folder
    return (
        sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        if base.exists()
        else []
    )


def _images_zip(model: str) -> io.BytesIO:
    """Five images per prompt of ``model`` and their manifest, as the import page takes them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        rows = []
        for p, prompt in enumerate(PROMPTS):
            for index in range(5):
                name = f"images/{p}-{index}.png"
                archive.writestr(name, unique_png())
                rows.append({"prompt": prompt, "model": model, "seed": index, "index": index, "image": name})
        archive.writestr("manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    buffer.seek(0)
    buffer.name = "images.zip"
    return buffer


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_web_and_workers_share_only_the_database_the_broker_and_the_bucket(
    s3_bucket, broker, alice, annotators, settings, client, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("the production configuration runs in make test's PostgreSQL pass")
    web, first, second = tmp_path / "web", tmp_path / "worker-1", tmp_path / "worker-2"
    for name, value in _machine(web).items():
        setattr(settings, name, Path(value))
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = HEARTBEAT_TIMEOUT
    shared = {
        "DJANGO_SETTINGS_MODULE": "evalhub.settings",
        "DEBUG": "1",
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "EVALHUB_JOB_HEARTBEAT_SECONDS": "1",
        "EVALHUB_JOB_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "EVALHUB_JOB_AUTO_RETRIES": "1",
        "EVALHUB_JOB_UPLOAD_SECONDS": "1",
        "OMP_NUM_THREADS": "1",
        **s3_bucket,
        **broker,
    }
    worker_env = {root: subprocess_env(**shared, **_machine(root)) for root in (first, second)}

    # The researcher's machine: a base model into the bucket, prompts and images through the pages.
    weights = build_tiny_pipeline("unet", tmp_path / "researcher" / "tiny-base", seed=0)
    call_command(
        "upload_weights", str(weights), "--model-version", "tiny-base", "--create", stdout=io.StringIO()
    )
    base = ModelVersion.objects.get(name="tiny-base")
    prompt_set = PromptSet.objects.create(name="lighthouses")
    Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, text=t, position=i) for i, t in enumerate(PROMPTS)
    )
    client.force_login(alice)
    imported = client.post(
        "/catalog/images/import/", {"prompt_set": prompt_set.pk, "archive": _images_zip("tiny-base")}
    )
    assert imported.status_code == 302, imported.content.decode()[-2000:]
    assert base.images.count() == 15 and _files(web, "media") == []
    study = study_create(
        name="lighthouse prefs", kind=Study.Kind.BEST_WORST, prompt_set=prompt_set, model_versions=[base]
    )
    answer_best_worst(study, annotators)

    api = APIClient()
    api.force_authenticate(alice)
    launched = api.post(
        "/api/jobs/training/",
        {"base_version": base.pk, "study": study.pk, "method": "dpo", "loss_space": "latent+pixel",
         "max_steps": 24, "batch_size": 2, "checkpoint_every": 2, "validation_every": 0,
         "version_name": "tiny-dpo"},
        format="json",
    )  # fmt: skip
    assert launched.status_code == 201, launched.json()
    job_id = launched.json()["id"]

    log_1 = tmp_path / "worker-1.log"
    with celery_worker(worker_env[first], log_1, queues="celery,gpu", name="one@%h", cwd=first) as worker:
        deadline = time.monotonic() + 240
        while not stored_checkpoints(job_id):
            assert time.monotonic() < deadline and worker.poll() is None, log_1.read_text()[-4000:]
            time.sleep(0.2)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    stopped = Job.objects.get(pk=job_id)
    assert stopped.state == Job.State.RUNNING and stopped.progress_step < 24
    checkpoint = stored_checkpoints(job_id)[-1]
    time.sleep(HEARTBEAT_TIMEOUT + 1)

    log_2 = tmp_path / "worker-2.log"
    with celery_worker(worker_env[second], log_2, queues="celery,gpu", name="two@%h", cwd=second):
        failed = wait_for(api, job_id, {"failed"}, 60, log_2)  # reaped by worker 2 as it starts
        assert "stopped reporting" in failed["error"]
        retry = Job.objects.get(retry_of_id=job_id)
        trained = wait_for(api, retry.pk, {"succeeded", "failed"}, 300, log_2)
        assert trained["state"] == "succeeded", trained["error"] + trained["log_tail"]
        assert runner.CONTINUING.format(job=job_id, checkpoint=checkpoint) in trained["log_tail"]
        assert [point["step"] for point in trained["metrics"]] == list(range(1, 25))
        child = ModelVersion.objects.get(pk=trained["produced_version_id"])
        assert child.name == "tiny-dpo" and child.parent == base
        assert child.weights_uri.startswith("storage://models/")

        compared = api.post(
            f"/api/model-versions/{child.pk}/compare/",
            {"prompt_set": prompt_set.pk, "display_size": "16x12", "images_per_prompt": 2, "steps": 2},
            format="json",
        )
        assert compared.status_code == 201, compared.json()
        generation = compared.json()["job"]
        generated = wait_for(api, generation["id"], {"succeeded", "failed"}, 300, log_2)
        assert generated["state"] == "succeeded", generated["error"] + generated["log_tail"]
    assert child.images.count() == 3 * 2

    # A new annotator of the A/B study (the five who saw the parent's images in the
    # best/worst study are kept out of it): the bytes come from the bucket via the token URL.
    ab = Study.objects.get(pk__in=generated["result"]["studies"], kind=Study.Kind.AB)
    opened = client.post(f"/annotate/research/studies/{ab.pk}/status/", {"status": "open"})
    assert opened.status_code == 302 and Study.objects.get(pk=ab.pk).status == Study.Status.OPEN
    assert client.get(f"/results/studies/{ab.pk}/").status_code == 200
    annotator = Client()  # the labeling page's session: its API calls and its images
    annotator.force_login(UserFactory(username="ivy", role="annotators"))
    answered = annotator.post(f"/api/annotate/studies/{ab.pk}/next/", {}, content_type="application/json")
    assert answered.status_code == 200 and answered.json()["assignments"], answered.json()
    lease = answered.json()["assignments"][0]
    bucket = s3_bucket["EVALHUB_S3_BUCKET"]
    assert all(bucket not in image["url"] and "media/" not in image["url"] for image in lease["images"])
    served = annotator.get(lease["images"][0]["url"])
    assert served.status_code == 200 and served["Content-Type"] == "image/png" and "Location" not in served
    stored = TaskImage.objects.select_related("resampled").get(
        task__study=ab, position=0, task__leases__token=lease["token"]
    )
    with stored.resampled.file.open("rb") as handle, Image.open(handle) as expected:
        expected_pixels = expected.convert("RGB").tobytes()
    with Image.open(
        io.BytesIO(b"".join(served.streaming_content) if served.streaming else served.content)
    ) as got:
        assert got.size == (16, 12) and got.convert("RGB").tobytes() == expected_pixels

    # No machine saw another's files: images and artifacts only in the bucket.
    assert _files(web, "media") == [] and _files(web, "jobs") == []
    for root in (first, second):
        assert _files(root, "media") == []
    assert _files(first, "weights-cache") and _files(second, "weights-cache")  # each fetched its own
