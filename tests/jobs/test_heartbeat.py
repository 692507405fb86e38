"""The heartbeat of a running job, the reaper that fails silent jobs, and the clock both go by:
beats outlive database errors and half-written metrics, the end of a run is recorded even
when its last beat fails, and every time is the database's."""

import logging
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from evalhub.celery import app
from evalhub.jobs import reaper, runner
from evalhub.jobs.models import Job
from evalhub.jobs.tasks import reap_stale_jobs
from tests.jobs.conftest import drop_connections, launch_training, sqlite_locked

HEARTBEAT_FAILED = "heartbeat failed"


@pytest.fixture
def running_job(alice, base_version, preference_study):
    """A training job claimed by worker w1 (nothing runs it)."""
    return runner.job_claim(launch_training(alice, base_version, preference_study).pk, "w1")


def wait_until(condition, timeout: float = 30, message: str = "") -> None:
    """Poll ``condition`` every 50 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message or "condition never held"
        time.sleep(0.05)


def database_now():
    """The database server's clock."""
    return Job.objects.annotate(now=Now()).values_list("now", flat=True).first()


def failures(caplog) -> int:
    return sum(HEARTBEAT_FAILED in record.getMessage() for record in caplog.records)


def test_the_heartbeat_outlives_a_database_error(as_worker, running_job, monkeypatch, caplog):
    """A beat that fails — SQLite locked by another writer past the busy timeout, or the
    PostgreSQL connection cut — is logged, and the next beat writes again on a fresh
    connection: the reaper does not fail a job that is still training."""
    caplog.set_level(logging.ERROR, logger="evalhub.jobs.runner")
    if connection.vendor == "sqlite":  # the heartbeat thread's connection, opened after this
        monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    monitor = runner.JobMonitor(running_job, interval=0.1)
    monitor.start()
    try:
        first = Job.objects.get(pk=running_job.pk).heartbeat_at
        wait_until(lambda: Job.objects.get(pk=running_job.pk).heartbeat_at > first, message="no beat")
        if connection.vendor == "sqlite":
            with sqlite_locked(seconds=1.0):
                wait_until(lambda: failures(caplog), message="the lock failed no beat")
        else:
            drop_connections(mine=False)
            wait_until(lambda: failures(caplog), message="the cut failed no beat")
        after_outage = database_now()
        wait_until(
            lambda: Job.objects.get(pk=running_job.pk).heartbeat_at > after_outage,
            message="the heartbeat stopped after a database error",
        )
    finally:
        monitor.stop()
    assert Job.objects.get(pk=running_job.pk).state == Job.State.RUNNING


def test_the_end_is_recorded_even_when_the_last_beat_fails(as_worker, running_job, caplog):
    """The final beat in ``stop()`` fails (this connection cut, or SQLite locked): it is
    logged, and the job's end is still written once the database answers again."""
    caplog.set_level(logging.WARNING, logger="evalhub.jobs.runner")
    monitor = runner.JobMonitor(running_job, interval=3600)
    monitor.start()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 100")
        try:
            with sqlite_locked(seconds=1.5):
                monitor.stop()
                assert runner.job_end(running_job.pk, state=Job.State.SUCCEEDED)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout = 30000")
    else:
        drop_connections(mine=True)
        monitor.stop()
        assert runner.job_end(running_job.pk, state=Job.State.SUCCEEDED)
    assert failures(caplog) == 1
    job = Job.objects.get(pk=running_job.pk)
    assert job.state == Job.State.SUCCEEDED and job.finished_at is not None


def test_a_half_written_metrics_line_waits_for_the_next_beat(running_job, tmp_path):
    """The trainer may be mid-line when a beat reads ``metrics.jsonl``: the beat takes the
    last complete line and skips what does not parse, instead of dying."""
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"step": 1, "loss": 0.9}\n{"step": 2, "loss": 0.8}\n{"step": 3, "lo')
    monitor = runner.JobMonitor(running_job)
    monitor.metrics_path = metrics
    monitor.beat()
    assert Job.objects.get(pk=running_job.pk).progress_step == 2
    with metrics.open("a") as handle:
        handle.write('ss": 0.7}\n')
    monitor.beat()
    assert Job.objects.get(pk=running_job.pk).progress_step == 3
    with metrics.open("a") as handle:
        handle.write("\x00garbage\n")
    monitor.beat()
    job = Job.objects.get(pk=running_job.pk)
    assert job.progress_step == 3 and "step 3/3 loss 0.7" in job.log_tail


def test_heartbeats_are_written_and_judged_by_the_database_clock(running_job, monkeypatch, settings):
    """A worker whose clock is ten minutes slow, judged by a web server whose clock is ten
    minutes fast, is not declared dead: both go by the database's clock."""
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = 60
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(minutes=10))  # the worker
    runner.JobMonitor(running_job).beat()
    beat_at = Job.objects.get(pk=running_job.pk).heartbeat_at
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=10))  # the web server
    assert reaper.jobs_reap_stale() == 0
    assert abs(beat_at - database_now()) < timedelta(seconds=5)
    assert Job.objects.get(pk=running_job.pk).state == Job.State.RUNNING


def test_a_claim_and_an_end_are_stamped_by_the_database_clock(
    alice, base_version, preference_study, monkeypatch
):
    """Start and end times come from the database too, whatever the worker's clock says."""
    queued = launch_training(alice, base_version, preference_study)
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(hours=3))
    runner.job_claim(queued.pk, "w1")
    runner.job_end(queued.pk, state=Job.State.SUCCEEDED)
    job = Job.objects.get(pk=queued.pk)
    for stamp in (job.started_at, job.heartbeat_at, job.finished_at):
        assert abs(stamp - database_now()) < timedelta(seconds=5)


def test_celery_beat_runs_the_reaper_every_half_timeout(settings):
    """The beat schedule sends ``reap_stale_jobs`` every half heartbeat timeout, to the
    default queue that every CPU worker consumes."""
    entry = app.conf.beat_schedule["reap-stale-jobs"]
    assert entry["task"] == reap_stale_jobs.name
    assert entry["schedule"] == settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT / 2
    assert app.amqp.router.route({}, reap_stale_jobs.name)["queue"].name == "celery"


def test_the_reaper_task_fails_a_job_whose_heartbeat_is_stale(running_job, settings):
    """The task itself (what beat sends) fails the silent job with the reason."""
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = 30
    Job.objects.filter(pk=running_job.pk).update(heartbeat_at=Now() - timedelta(seconds=31))
    assert reap_stale_jobs.apply().get() == 1
    job = Job.objects.get(pk=running_job.pk)
    assert job.state == Job.State.FAILED and job.finished_at is not None
    since = job.heartbeat_at
    assert job.error == reaper.WORKER_SILENT.format(worker="w1", since=since, timeout=30)


def test_reading_jobs_writes_nothing(client, alice, running_job, settings):
    """The jobs pages and API only read: a silent job stays running until the reaper, which
    beat and worker start-up run, fails it."""
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = 30
    Job.objects.filter(pk=running_job.pk).update(heartbeat_at=Now() - timedelta(seconds=31))
    client.force_login(alice)
    for url in ("/jobs/", f"/jobs/{running_job.pk}/", "/api/jobs/", f"/api/jobs/{running_job.pk}/"):
        assert client.get(url).status_code == 200
    assert Job.objects.get(pk=running_job.pk).state == Job.State.RUNNING
    assert reaper.jobs_reap_stale() == 1


def test_with_auto_retries_the_reaper_queues_a_failed_job_again_up_to_the_setting(
    running_job, settings, alice, base_version, preference_study
):
    """EVALHUB_JOB_AUTO_RETRIES = 1: a job whose worker died is queued again once (the
    retry continues from its checkpoint: tests/jobs/test_runner.py); a retry that dies too
    is left failed. 0 (the default) queues nothing."""
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = 30
    settings.EVALHUB_JOB_AUTO_RETRIES = 1
    Job.objects.filter(pk=running_job.pk).update(heartbeat_at=Now() - timedelta(seconds=31))
    assert reaper.jobs_reap_stale() == 1
    retry = Job.objects.get(retry_of=running_job)
    assert retry.state == Job.State.QUEUED and retry.config == {
        k: v for k, v in Job.objects.get(pk=running_job.pk).config.items() if k != "train_config"
    }
    runner.job_claim(retry.pk, "w2")
    Job.objects.filter(pk=retry.pk).update(heartbeat_at=Now() - timedelta(seconds=31))
    assert reaper.jobs_reap_stale() == 1
    assert Job.objects.get(pk=retry.pk).state == Job.State.FAILED
    assert not Job.objects.filter(retry_of=retry).exists()
    settings.EVALHUB_JOB_AUTO_RETRIES = 0
    other = runner.job_claim(launch_training(alice, base_version, preference_study).pk, "w3")
    Job.objects.filter(pk=other.pk).update(heartbeat_at=Now() - timedelta(seconds=31))
    assert reaper.jobs_reap_stale() == 1
    assert not Job.objects.filter(retry_of=other).exists()
