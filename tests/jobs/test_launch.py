"""Queueing jobs: the queue and delivery options of ``run_job``, a broker that refuses the
message, and a chosen version name checked at launch, at retry and at registration."""

import re

import pytest
from django.conf import settings

from evalhub.catalog.models import ModelVersion
from evalhub.celery import app
from evalhub.jobs import errors, runner, services
from evalhub.jobs.models import Job
from evalhub.jobs.tasks import HARD_LIMIT_GRACE, run_job
from tests.jobs.conftest import client_for, launch_training, queued
from tests.workers import broker_at
from training.options import DEFAULT_MAX_STEPS, STEPS_OR_EPOCHS

REFUSING_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


def test_run_job_goes_to_the_gpu_queue_and_is_acknowledged_late():
    """GPU work is routed to ``gpu``; a message is acknowledged only after the run, so a
    crash redelivers it (and the claim makes the redelivery a no-op)."""
    assert app.amqp.router.route({}, run_job.name)["queue"].name == "gpu"
    assert run_job.acks_late is True


def test_run_job_has_the_configured_time_limits():
    """At ``EVALHUB_JOB_TIME_LIMIT`` the run fails with that reason; a bit later the pool kills it."""
    assert run_job.soft_time_limit == settings.EVALHUB_JOB_TIME_LIMIT
    assert run_job.time_limit == settings.EVALHUB_JOB_TIME_LIMIT + HARD_LIMIT_GRACE


def test_a_job_the_broker_refuses_fails_at_once_and_can_be_retried(
    alice, transactional_db, base_version, preference_study, broker_queue
):
    """With the broker down the launch answers with a failed job that names the broker's
    error (not one queued forever); once the broker is back, its retry is queued."""
    with broker_at(REFUSING_BROKER):
        response = client_for(alice).post(
            "/api/jobs/training/",
            {"base_version": base_version.pk, "study": preference_study.pk, "max_steps": 2},
            format="json",
        )
    assert response.status_code == 201
    failed = Job.objects.get(pk=response.json()["id"])
    assert response.json()["state"] == failed.state == Job.State.FAILED
    prefix = errors.BROKER_UNREACHABLE.split("{error}")[0]
    assert failed.error.startswith(prefix) and "Connection refused" in failed.error
    assert response.json()["error"] == failed.error and failed.finished_at is not None

    retry = client_for(alice).post(f"/api/jobs/{failed.pk}/retry/")
    assert retry.status_code == 201 and retry.json()["state"] == Job.State.QUEUED
    assert len(queued(broker_queue, "gpu")) == 1


def test_a_version_name_promised_to_an_unfinished_job_is_refused(alice, base_version, preference_study):
    """Two queued jobs cannot both mean to register the same name."""
    first = launch_training(alice, base_version, preference_study, version_name="tiny")
    message = errors.VERSION_NAME_PROMISED.format(job=first.pk, state="queued", name="tiny")
    with pytest.raises(errors.JobRejected, match=re.escape(message)):
        launch_training(alice, base_version, preference_study, version_name="tiny")
    assert Job.objects.count() == 1


def test_a_retry_checks_its_version_name_again(alice, base_version, preference_study):
    """A cancelled job's name may be taken since, by a queued job or a registered version."""
    first = launch_training(alice, base_version, preference_study, version_name="tiny")
    cancelled = services.job_cancel(first)
    other = launch_training(alice, base_version, preference_study, version_name="tiny")
    promised = errors.VERSION_NAME_PROMISED.format(job=other.pk, state="queued", name="tiny")
    with pytest.raises(errors.JobRejected, match=re.escape(promised)):
        services.job_retry(cancelled, user=alice)
    services.job_cancel(other)
    ModelVersion.objects.create(name="tiny")
    taken = errors.VERSION_NAME_TAKEN.format(name="tiny")
    with pytest.raises(errors.JobRejected, match=re.escape(taken)):
        services.job_retry(cancelled, user=alice)
    assert not Job.objects.filter(retry_of=cancelled).exists()


def test_a_name_taken_during_the_run_gives_way_to_a_free_one(
    alice, as_worker, base_version, preference_study
):
    """The weights are registered under the first free name, and the log says so, rather
    than lost to a unique-name error after the whole run."""
    job = launch_training(alice, base_version, preference_study, version_name="tiny", max_steps=1)
    ModelVersion.objects.create(name="tiny")  # e.g. a researcher, while the job was queued
    ModelVersion.objects.create(name="tiny (2)")
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.produced_version.name == "tiny (3)" and job.produced_version.parent == base_version
    assert runner.NAME_TAKEN_AT_REGISTRATION.format(wanted="tiny", name="tiny (3)") in job.log_tail


def test_a_launch_by_epochs_leaves_the_total_to_the_run(alice, base_version, preference_study):
    """With epochs the steps follow from the data: the job's total is 0 (unknown) until the
    run's start line; with neither epochs nor max_steps the run takes 100 steps."""
    by_epochs = client_for(alice).post(
        "/api/jobs/training/",
        {"base_version": base_version.pk, "study": preference_study.pk, "epochs": 3, "validation_every": 5},
        format="json",
    )
    assert by_epochs.status_code == 201, by_epochs.json()
    job = Job.objects.get(pk=by_epochs.json()["id"])
    assert job.progress_total == 0 and job.progress_percent == 0.0
    options = job.config["options"]
    assert (options["epochs"], options["validation_every"], options.get("max_steps")) == (3, 5, None)
    plain = services.training_launch(
        user=alice, base_version=base_version, study=preference_study, options={"method": "dpo"}
    )
    assert plain.progress_total == DEFAULT_MAX_STEPS == 100


def test_max_steps_and_epochs_together_are_refused_by_the_epochs_field(
    client, alice, base_version, preference_study
):
    """The API and the form name epochs with the options' message; the service refuses too;
    no job is created."""
    api = client_for(alice).post(
        "/api/jobs/training/",
        {"base_version": base_version.pk, "study": preference_study.pk, "max_steps": 5, "epochs": 2},
        format="json",
    )
    assert api.status_code == 400 and api.json()["epochs"] == [STEPS_OR_EPOCHS]
    client.force_login(alice)
    page = client.post(
        "/jobs/new/training/",
        {"base_version": base_version.pk, "study": preference_study.pk, "method": "simpo",
         "loss_space": "latent", "mixed_precision": "no", "max_steps": 5, "epochs": 2},
    )  # fmt: skip
    assert page.status_code == 200
    assert page.context["form"].errors == {"epochs": [STEPS_OR_EPOCHS]}
    with pytest.raises(errors.JobRejected, match=STEPS_OR_EPOCHS):
        launch_training(alice, base_version, preference_study, max_steps=5, epochs=2)
    assert not Job.objects.exists()


def test_a_retry_of_a_job_by_epochs_counts_its_steps_again(alice, base_version, preference_study):
    """The first run learned its total; the retry exports the study again, so its total is
    unknown until its own start line. A retry by steps keeps the total."""
    by_epochs = launch_training(alice, base_version, preference_study, max_steps=None, epochs=2)
    Job.objects.filter(pk=by_epochs.pk).update(progress_total=28)
    by_steps = launch_training(alice, base_version, preference_study)
    for job in (by_epochs, by_steps):
        services.job_cancel(job)
    assert services.job_retry(by_epochs, user=alice).progress_total == 0
    assert services.job_retry(by_steps, user=alice).progress_total == 3
