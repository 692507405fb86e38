"""Fixtures for the jobs tests: a base version with real (tiny) weights, a best/worst
study over its images answered by five annotators through the real submit path, an SFT
image folder, a private broker, and real database outages."""

import json
import shutil
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from django.db import connection
from PIL import Image
from rest_framework.test import APIClient

from annotate.assignment import assignments_next
from annotate.models import Study
from annotate.services import study_create
from annotate.submission import judgment_submit
from evalhub.jobs import services
from tests.annotate.conftest import MODEL_A, MODEL_B, annotators, prompt_set  # noqa: F401  (fixtures)
from tests.workers import broker_at, filesystem_broker_options
from training.tiny import build_tiny_pipeline

# No validation renders: each costs far more than a tiny step (tests/jobs/test_run_events.py
# covers what the worker does with them).
TINY_RUN = {
    "method": "simpo",
    "loss_space": "latent+pixel",
    "max_steps": 3,
    "batch_size": 2,
    "validation_every": 0,
}


def launch_training(user, base_version, study, version_name="", **options):
    """Queue a tiny SimPO run (``options`` override it)."""
    return services.training_launch(
        user=user,
        base_version=base_version,
        study=study,
        options={**TINY_RUN, **options},
        version_name=version_name,
    )


def client_for(user) -> APIClient:
    """An API client signed in as ``user``."""
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(scope="session")
def tiny_unet_folder(tmp_path_factory):
    return build_tiny_pipeline("unet", tmp_path_factory.mktemp("weights") / "tiny-unet", seed=0)


@pytest.fixture
def jobs_dir(settings, tmp_path):
    """Each test's runs write under its own folder."""
    settings.EVALHUB_JOBS_DIR = tmp_path / "jobs"
    return settings.EVALHUB_JOBS_DIR


@pytest.fixture(autouse=True)
def broker_queue(tmp_path):
    """Messages this test publishes land in its own filesystem broker (no worker reads
    them unless a test starts one); the folder of queued message files."""
    options = filesystem_broker_options(tmp_path)
    with broker_at("filesystem://localhost/", options):
        yield tmp_path / "celery" / "queue"


def queued(queue_folder, queue: str = "gpu") -> list:
    """The message files waiting in ``queue`` (the filesystem transport names them ``….<queue>.msg``)."""
    return sorted(queue_folder.glob(f"*.{queue}.msg"))


@pytest.fixture
def as_worker(transactional_db, jobs_dir):
    """For tests that run a job in this process, as a worker would: outside a test
    transaction, on committed rows. The job's heartbeat thread writes through its own
    connection; an open test transaction would hold SQLite's write lock (``BEGIN
    IMMEDIATE`` takes it at the start) so every beat waited out the 30 s busy timeout and
    failed, and on PostgreSQL it would not see the uncommitted job at all."""


SFT_SET = "squares"


@pytest.fixture
def sft_folder(jobs_dir):
    """The SFT data set ``squares``: captioned images in the imagefolder layout
    (metadata.jsonl with file_name, text), where SFT data sets live (evalhub.jobs.folders)."""
    root = jobs_dir / "sft-data" / SFT_SET
    root.mkdir(parents=True)
    lines = []
    for i, colour in enumerate(("red", "green", "blue")):
        Image.new("RGB", (40, 40), colour).save(root / f"{i}.png")
        lines.append({"file_name": f"{i}.png", "text": f"a {colour} square"})
    (root / "metadata.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


@contextmanager
def sqlite_locked(seconds: float):
    """Another process-like writer holds the SQLite file's exclusive lock for ``seconds``
    (from inside the block); the block runs while it is held."""
    taken, path = threading.Event(), connection.settings_dict["NAME"]

    def hold():
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        taken.set()
        time.sleep(seconds)
        other.execute("ROLLBACK")
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait()
    try:
        yield
    finally:
        holder.join()


def drop_connections(*, mine: bool) -> None:
    """PostgreSQL ends connections to the test database as a restart or a network cut
    would: this thread's own (``mine``), or every other one."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND "
    if not mine:
        with connection.cursor() as cursor:
            cursor.execute(sql + "pid <> pg_backend_pid()")
        return

    def from_elsewhere():
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql + "pid = %s", [own])
        finally:
            connection.close()

    other = threading.Thread(target=from_elsewhere)
    other.start()
    other.join()


@pytest.fixture
def base_version(prompt_set, tiny_unet_folder, tmp_path):  # noqa: F811
    from evalhub.catalog.models import ModelVersion

    weights = tmp_path / "weights"
    shutil.copytree(tiny_unet_folder, weights)
    version = ModelVersion.objects.get(name=MODEL_A)
    version.weights_uri = str(weights)
    version.save()
    return version


@pytest.fixture
def other_version(prompt_set):  # noqa: F811
    from evalhub.catalog.models import ModelVersion

    return ModelVersion.objects.get(name=MODEL_B)


def answer_best_worst(study: Study, users) -> None:
    """Each user answers every task: image 0 best, image 1 worst, so every prompt is decided."""
    for user in users:
        while leases := assignments_next(study_id=study.pk, annotator=user).leases:
            judgment_submit(
                token=leases[0].token,
                annotator=user,
                client_id=uuid.uuid4(),
                answer={"positive": 0, "negative": 1},
            )


@pytest.fixture
def preference_study(prompt_set, base_version, annotators):  # noqa: F811
    study = study_create(
        name="prefs", kind=Study.Kind.BEST_WORST, prompt_set=prompt_set, model_versions=[base_version]
    )
    answer_best_worst(study, annotators)
    return study


def database_url() -> str:
    """The test database's URL, for the worker process."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def broker(request, tmp_path, broker_queue):
    """Point this process's Celery app and the worker at the same broker: Redis on
    PostgreSQL runs given ``--redis-url``, else the test's filesystem broker (whose folders
    the worker derives from ``EVALHUB_VAR_DIR``). Flushes the Redis database first."""
    redis_url = request.config.getoption("--redis-url")
    if redis_url and connection.vendor == "postgresql":
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        with broker_at(redis_url):
            yield {"CELERY_BROKER_URL": redis_url}
    else:
        yield {"EVALHUB_VAR_DIR": str(tmp_path)}
