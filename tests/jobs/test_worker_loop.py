"""The loop with a real `celery worker` process: preferences → training job → new version
with lineage → generation job → A/B study against the parent; a worker killed mid-job.

On PostgreSQL with Redis (the production configuration, `make test`'s second run) and on
the embedded default (SQLite file database, server-less filesystem broker).
"""

import signal
import time
from pathlib import Path

import pytest
from django.db import connection
from kombu import pools
from rest_framework.test import APIClient

from annotate.models import Study
from evalhub.celery import app
from evalhub.env import subprocess_env
from evalhub.jobs.models import Job
from evalhub.results.preference_export import preference_pairs_export
from tests.workers import celery_worker

HEARTBEAT_TIMEOUT = 4


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def broker(request, tmp_path):
    """Point this process's Celery app and the worker at the same broker; restored after."""
    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options")}
    redis_url = request.config.getoption("--redis-url")
    if redis_url and connection.vendor == "postgresql":
        app.conf.broker_url, env = redis_url, {"CELERY_BROKER_URL": redis_url}
    else:
        folders = {name: tmp_path / "celery" / name for name in ("queue", "processed", "control", "results")}
        for folder in folders.values():
            folder.mkdir(parents=True)
        app.conf.broker_url = "filesystem://localhost/"
        app.conf.broker_transport_options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
        }
        env = {"EVALHUB_VAR_DIR": str(tmp_path)}  # the worker derives the same folders from it
    _drop_connections()
    yield env
    for key, value in saved.items():
        app.conf[key] = value
    _drop_connections()


def _drop_connections():
    # Celery caches its connection and producer pools on first use; a new broker URL only
    # takes effect once they are rebuilt.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


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
    client = APIClient()
    client.force_authenticate(alice)
    return client


def run_the_loop(alice, base_version, preference_study, prompt_set, worker_env, tmp_path):
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

    compared = client.post(
        f"/api/model-versions/{child_id}/compare/", {"prompt_set": prompt_set.pk}, format="json"
    )
    assert compared.status_code == 201, compared.json()
    ab = Study.objects.get(pk=compared.json()["studies"][0])
    assert ab.kind == Study.Kind.AB
    assert {sm.role: sm.model_version_id for sm in ab.study_models.all()} == {
        "A": child_id,
        "B": base_version.pk,
    }
    assert ab.tasks.count() == 3 * 2  # three prompts × (flaws, appeal)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_loop_on_postgres_redis_and_a_real_worker(
    alice, base_version, preference_study, prompt_set, worker_env, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("the production configuration runs in make test's PostgreSQL pass")
    run_the_loop(alice, base_version, preference_study, prompt_set, worker_env, tmp_path)


@pytest.mark.django_db(transaction=True)
def test_the_loop_on_the_embedded_default(
    alice, base_version, preference_study, prompt_set, worker_env, tmp_path
):
    if connection.vendor != "sqlite":
        pytest.skip("the embedded default is SQLite with the filesystem broker")
    run_the_loop(alice, base_version, preference_study, prompt_set, worker_env, tmp_path)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_job_leaves_the_job_failed_with_a_reason(
    alice, base_version, preference_study, worker_env, tmp_path
):
    client = researcher_client(alice)
    log = tmp_path / "worker.log"
    with celery_worker(worker_env, log, queues="celery,gpu", name="jobs@%h") as worker:
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
        failed = wait_for(client, job_id, {"failed"}, HEARTBEAT_TIMEOUT + 30, log)
    assert time.monotonic() - killed_at < HEARTBEAT_TIMEOUT + 30
    assert "stopped reporting" in failed["error"] and "probably died mid-job" in failed["error"]
    assert failed["finished_at"] is not None
