"""The loop with a real `celery worker` process: preferences → training job → new version
with lineage → generation job → A/B study against the parent; a worker killed mid-job; a
message delivered twice; the beat-driven reaper.

On PostgreSQL with Redis (the production configuration, `make test`'s second run) and on
the embedded default (SQLite file database, server-less filesystem broker).
"""

import re
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models.functions import Now
from rest_framework.test import APIClient

from annotate.models import Study
from evalhub.catalog.models import ModelVersion
from evalhub.env import subprocess_env
from evalhub.jobs import runner
from evalhub.jobs.models import Job
from evalhub.jobs.tasks import run_job
from evalhub.results.preference_export import preference_pairs_export
from tests.jobs.conftest import database_url, launch_training
from tests.workers import celery_worker

HEARTBEAT_TIMEOUT = 4


@pytest.fixture
def worker_env(broker, settings, media_root, jobs_dir):
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = HEARTBEAT_TIMEOUT
    return subprocess_env(
        DJANGO_SETTINGS_MODULE="evalhub.settings",
        DEBUG="1",
        DATABASE_URL=database_url(),
        DATABASE_CONN_MAX_AGE="0",
        MEDIA_ROOT=str(media_root),
        EVALHUB_JOBS_DIR=str(jobs_dir),
        EVALHUB_JOB_HEARTBEAT_SECONDS="1",
        EVALHUB_JOB_HEARTBEAT_TIMEOUT=str(HEARTBEAT_TIMEOUT),
        OMP_NUM_THREADS="1",
        **broker,
    )


def wait_for(client, job_id: int, states, timeout: float, log: Path) -> dict:
    """Poll the job through the API until it is in one of ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}/").json()
        if job["state"] in states:
            return job
        time.sleep(0.5)
    raise AssertionError(
        f"job {job_id} is {job['state']} after {timeout} s\n{job}\n{log.read_text()[-4000:]}"
    )


def researcher_client(alice) -> APIClient:
    """Alice's API client."""
    client = APIClient()
    client.force_authenticate(alice)
    return client


def run_the_loop(alice, base_version, preference_study, prompt_set, worker_env, tmp_path):
    """Preferences → training → version with lineage → generation → A/B study vs the parent."""
    client = researcher_client(alice)
    log = tmp_path / "worker.log"
    with celery_worker(worker_env, log, queues="celery,gpu", name="jobs@%h"):
        launched = client.post(
            "/api/jobs/training/",
            {"base_version": base_version.pk, "study": preference_study.pk, "method": "simpo",
             "loss_space": "latent+pixel", "max_steps": 3, "batch_size": 2, "version_name": "tiny-simpo"},
            format="json",
        )  # fmt: skip
        assert launched.status_code == 201, launched.json()
        trained = wait_for(client, launched.json()["id"], {"succeeded", "failed"}, 240, log)
        assert trained["state"] == "succeeded", trained["error"] + trained["log_tail"]
        assert [p["step"] for p in trained["metrics"]] == [1, 2, 3]

        child_id = trained["produced_version_id"]
        from evalhub.catalog.models import ModelVersion

        child = ModelVersion.objects.get(pk=child_id)
        assert (child.name, child.parent, child.kind) == ("tiny-simpo", base_version, "simpo")
        export = preference_pairs_export(study=preference_study, folder=tmp_path / "export")
        assert child.training_data_hash == export.content_hash
        assert child.training_config["method"] == "simpo" and child.final_metrics["step"] == 3

        generation = client.post(
            "/api/jobs/generation/",
            {"model_version": child_id, "prompt_set": prompt_set.pk, "images_per_prompt": 1, "steps": 2},
            format="json",
        )
        assert generation.status_code == 201, generation.json()
        generated = wait_for(client, generation.json()["id"], {"succeeded", "failed"}, 240, log)
        assert generated["state"] == "succeeded", generated["error"] + generated["log_tail"]
        assert generated["result"]["imported"] == 3

    # The tiny model draws 64×64 and the parent's images are 8×6: the A/B study needs a common size.
    compared = client.post(
        f"/api/model-versions/{child_id}/compare/",
        {"prompt_set": prompt_set.pk, "display_size": "16x12"},
        format="json",
    )
    assert compared.status_code == 201, compared.json()
    ab = Study.objects.get(pk=compared.json()["studies"][0])
    assert ab.kind == Study.Kind.AB
    assert {sm.role: sm.model_version_id for sm in ab.study_models.all()} == {
        "A": child_id,
        "B": base_version.pk,
    }
    assert ab.tasks.count() == 3 * 2  # three prompts × (flaws, appeal)
    assert ab.config["display_size"] == [16, 12]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_loop_on_postgres_redis_and_a_real_worker(
    alice, base_version, preference_study, prompt_set, worker_env, tmp_path
):
    """The production configuration: PostgreSQL, Redis and a worker process."""
    if connection.vendor != "postgresql":
        pytest.skip("the production configuration runs in make test's PostgreSQL pass")
    run_the_loop(alice, base_version, preference_study, prompt_set, worker_env, tmp_path)


@pytest.mark.django_db(transaction=True)
def test_the_loop_on_the_embedded_default(
    alice, base_version, preference_study, prompt_set, worker_env, tmp_path
):
    """The embedded default: SQLite and the filesystem broker, as in the demo."""
    if connection.vendor != "sqlite":
        pytest.skip("the embedded default is SQLite with the filesystem broker")
    run_the_loop(alice, base_version, preference_study, prompt_set, worker_env, tmp_path)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_job_leaves_the_job_failed_with_a_reason(
    alice, base_version, preference_study, worker_env, tmp_path
):
    """SIGKILL mid-training: the job ends failed with the reason within the timeout, by the
    deployment's celery beat (reads of the job never write)."""
    client = researcher_client(alice)
    log = tmp_path / "worker.log"
    with celery_worker(worker_env, log, queues="gpu", name="jobs@%h") as worker:
        launched = client.post(
            "/api/jobs/training/",
            {"base_version": base_version.pk, "study": preference_study.pk, "max_steps": 100000},
            format="json",
        )
        job_id = launched.json()["id"]
        deadline = time.monotonic() + 180
        while Job.objects.get(pk=job_id).progress_step < 1:
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_at = time.monotonic()
    time.sleep(1)
    assert client.get(f"/api/jobs/{job_id}/").json()["state"] == "running"  # a read changes nothing
    with celery_worker(worker_env, tmp_path / "beat.log", queues="celery", name="beat@%h", beat=True):
        failed = wait_for(client, job_id, {"failed"}, HEARTBEAT_TIMEOUT + 30, log)
    assert time.monotonic() - killed_at < HEARTBEAT_TIMEOUT + 30
    assert "stopped reporting" in failed["error"] and "probably died mid-job" in failed["error"]
    assert failed["finished_at"] is not None


@pytest.mark.django_db(transaction=True)
def test_a_message_delivered_twice_runs_once(alice, base_version, preference_study, worker_env, tmp_path):
    """The launch's message and a second copy of it reach a worker with two processes at
    once: one claims and runs the job, the other finds it claimed; one version."""
    log = tmp_path / "worker.log"
    job = launch_training(alice, base_version, preference_study, max_steps=2)  # the first message
    run_job.delay(job.pk)  # the duplicate
    with celery_worker(worker_env, log, queues="gpu", name="jobs@%h", concurrency=2):
        deadline = time.monotonic() + 240
        while len(re.findall(r"run_job\[[^]]+\] succeeded", log.read_text())) < 2:
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
    outcomes = re.findall(r"run_job\[[^]]+\] succeeded in [0-9.]+s: '(\w+)'", log.read_text())
    assert sorted(outcomes) == ["skipped", "succeeded"], log.read_text()[-4000:]
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED and job.produced_version is not None
    assert ModelVersion.objects.filter(parent=base_version).count() == 1


@pytest.mark.django_db(transaction=True)
def test_celery_beat_fails_a_dead_workers_job_with_no_page_read(
    alice, base_version, preference_study, worker_env, tmp_path
):
    """With beat embedded in the worker (as ``scripts/serve.sh`` runs it), a job whose
    heartbeat went stale is failed on the schedule, though nobody opens a jobs page."""
    log = tmp_path / "worker.log"
    job = launch_training(alice, base_version, preference_study)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, worker="gone@host")
    with celery_worker(worker_env, log, queues="celery", name="beat@%h", beat=True):
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():  # the worker's own reap at start is done
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        Job.objects.filter(pk=job.pk).update(heartbeat_at=Now() - timedelta(seconds=HEARTBEAT_TIMEOUT + 1))
        while Job.objects.get(pk=job.pk).state == Job.State.RUNNING:
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "worker gone@host stopped reporting" in job.error
    assert "reap_stale_jobs" in log.read_text()


@pytest.mark.django_db(transaction=True)
def test_a_run_past_the_time_limit_fails_with_that_reason(
    alice, base_version, preference_study, worker_env, tmp_path
):
    """A run longer than ``EVALHUB_JOB_TIME_LIMIT`` is stopped by the (prefork) pool and the
    job fails naming the limit, rather than running on."""
    log = tmp_path / "worker.log"
    env = {**worker_env, "EVALHUB_JOB_TIME_LIMIT": "15"}  # past the imports, into training
    with celery_worker(env, log, queues="gpu", name="limited@%h", concurrency=1):
        job = launch_training(alice, base_version, preference_study, max_steps=100_000)
        deadline = time.monotonic() + 120
        while Job.objects.get(pk=job.pk).state in (Job.State.QUEUED, Job.State.RUNNING):
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED, job.error + job.log_tail
    assert job.error == runner.TIME_LIMIT_REACHED.format(limit=15)
    assert job.progress_step >= 1 and "failed: " + job.error in job.log_tail
    assert job.produced_version is None
