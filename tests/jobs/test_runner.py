"""Jobs run in-process through the worker's code (evalhub.jobs.runner): the loop from
preferences to a new version, its images and the studies against its parent."""

import json
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotate.models import Study
from evalhub.catalog.models import GeneratedImage, ModelVersion
from evalhub.jobs import runner, services
from evalhub.jobs.models import Job
from evalhub.results.preference_export import preference_pairs_export

TINY_RUN = {"method": "simpo", "loss_space": "latent+pixel", "max_steps": 3, "batch_size": 2}


def launch_training(user, base_version, study, **options):
    return services.training_launch(
        user=user, base_version=base_version, study=study, options={**TINY_RUN, **options}
    )


def test_training_job_registers_a_version_with_its_lineage(
    alice, base_version, preference_study, jobs_dir, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        job = launch_training(alice, base_version, preference_study)
    assert len(queued) == 1 and job.state == Job.State.QUEUED and job.progress_total == 3

    assert runner.job_run(job.pk, worker="test") == Job.State.SUCCEEDED
    job.refresh_from_db()
    version = job.produced_version
    assert version.parent == base_version and version.kind == "simpo"
    assert version.name == f"{base_version.name}-simpo-job{job.pk}"
    expected = preference_pairs_export(study=preference_study, folder=tmp_path / "again").content_hash
    assert version.training_data_hash == job.data_hash == expected
    assert version.training_config["loss_space"] == "latent+pixel"
    assert version.training_config["pixel_weight"] == 2.0  # resolved: the paper's U-Net λ
    assert version.final_metrics["step"] == 3
    assert job.config["train_config"]["max_steps"] == 3
    assert (job.progress_step, job.started_at is not None, job.finished_at is not None) == (3, True, True)
    assert "registered model version" in job.log_tail and "step 3/3" in job.log_tail
    assert (jobs_dir / str(job.pk) / "run/final/model_index.json").is_file()
    assert [v.name for v in version.lineage()] == [version.name, base_version.name]


def test_a_second_delivery_runs_nothing(alice, base_version, preference_study, jobs_dir):
    job = launch_training(alice, base_version, preference_study, max_steps=1)
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    assert runner.job_run(job.pk) == "skipped"
    assert ModelVersion.objects.filter(parent=base_version).count() == 1


def test_a_training_that_raises_fails_with_its_error_visible(alice, base_version, preference_study, jobs_dir):
    job = launch_training(alice, base_version, preference_study)
    shutil.rmtree(Path(base_version.weights_uri) / "unet")  # the weights break after the launch
    assert runner.job_run(job.pk) == Job.State.FAILED
    job.refresh_from_db()
    assert job.error.startswith("OSError: Error no file named config.json")
    assert 'File "' in job.log_tail and "failed: OSError" in job.log_tail  # the traceback's tail
    assert job.produced_version is None and job.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_training_at_its_next_step(
    alice, base_version, preference_study, jobs_dir, settings, django_capture_on_commit_callbacks
):
    settings.EVALHUB_JOB_HEARTBEAT_SECONDS = 0.2
    with django_capture_on_commit_callbacks(execute=False):  # this test is the worker
        job = launch_training(alice, base_version, preference_study, max_steps=100_000)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(state=runner.job_run(job.pk)))
    worker.start()
    deadline = time.monotonic() + 60
    while Job.objects.get(pk=job.pk).progress_step < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    services.job_cancel(Job.objects.get(pk=job.pk))
    worker.join(timeout=60)
    job.refresh_from_db()
    assert outcome["state"] == job.state == Job.State.CANCELLED
    assert job.progress_step < 1000 and "cancelled" in job.log_tail
    assert not ModelVersion.objects.filter(parent=base_version).exists()


def test_cancelling_a_queued_job_ends_it_before_it_starts(alice, base_version, preference_study, jobs_dir):
    job = services.job_cancel(launch_training(alice, base_version, preference_study))
    assert job.state == Job.State.CANCELLED and job.finished_at
    assert runner.job_run(job.pk) == "skipped"
    with pytest.raises(services.JobRejected, match="already ended"):
        services.job_cancel(job)


def test_retry_queues_the_same_configuration(alice, base_version, preference_study, jobs_dir):
    job = services.job_cancel(launch_training(alice, base_version, preference_study))
    retry = services.job_retry(job, user=alice)
    assert (retry.config, retry.retry_of, retry.state) == (job.config, job, Job.State.QUEUED)
    with pytest.raises(services.JobRejected, match="only a failed or cancelled job"):
        services.job_retry(retry, user=alice)


def test_the_reaper_fails_jobs_whose_worker_went_silent(alice, base_version, preference_study, settings):
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = 30
    silent = launch_training(alice, base_version, preference_study)
    alive = launch_training(alice, base_version, preference_study)
    now = timezone.now()
    Job.objects.filter(pk=silent.pk).update(
        state="running", worker="w1", heartbeat_at=now - timedelta(seconds=31)
    )
    Job.objects.filter(pk=alive.pk).update(state="running", heartbeat_at=now - timedelta(seconds=5))
    assert services.jobs_reap_stale(now) == 1
    silent.refresh_from_db()
    alive.refresh_from_db()
    assert silent.state == Job.State.FAILED and "worker w1 stopped reporting" in silent.error
    assert alive.state == Job.State.RUNNING


@pytest.mark.parametrize(
    "change, message",
    [
        ({"options": {"beta": -1.0}}, "beta must be positive"),
        ({"options": {"colour": 1}}, "unknown training option"),
        ({"study": "ab"}, "not a best/worst-of-five study"),
        ({"study": None}, "either a best/worst study or an SFT data folder"),
        ({"weights": ""}, "has no weights folder"),
        ({"weights": "/nowhere"}, "not a diffusers pipeline folder"),
        ({"version_name": "platypus-hidden-model-b"}, "already exists"),
    ],
)
def test_training_launch_validates_before_queueing(
    alice, base_version, other_version, preference_study, prompt_set, change, message
):
    study = preference_study
    if change.get("study") == "ab":
        study = Study.objects.create(name="ab", kind=Study.Kind.AB, prompt_set=prompt_set)
    elif "study" in change:
        study = None
    if "weights" in change:
        base_version.weights_uri = change["weights"]
        base_version.save()
    with pytest.raises(services.JobRejected, match=message):
        services.training_launch(
            user=alice,
            base_version=base_version,
            study=study,
            options={**TINY_RUN, **change.get("options", {})},
            version_name=change.get("version_name", ""),
        )
    assert not Job.objects.exists()


def test_a_study_without_decided_pairs_cannot_train(alice, base_version, prompt_set):
    from annotate.services import study_create

    empty = study_create(
        name="empty", kind=Study.Kind.BEST_WORST, prompt_set=prompt_set, model_versions=[base_version]
    )
    with pytest.raises(services.JobRejected, match="no decided winner/loser pair"):
        services.training_launch(user=alice, base_version=base_version, study=empty, options=TINY_RUN)


def test_generation_then_comparison_with_the_parent(
    alice, base_version, preference_study, prompt_set, jobs_dir
):
    job = launch_training(alice, base_version, preference_study, max_steps=1)
    runner.job_run(job.pk)
    child = Job.objects.get(pk=job.pk).produced_version

    gen = services.generation_launch(
        user=alice,
        model_version=child,
        prompt_set=prompt_set,
        compare_after=True,
        images_per_prompt=2,
        steps=2,
    )
    assert gen.progress_total == 3 * 2
    assert runner.job_run(gen.pk) == Job.State.SUCCEEDED
    gen.refresh_from_db()
    assert GeneratedImage.objects.filter(model_version=child, prompt__prompt_set=prompt_set).count() == 6
    assert gen.result["imported"] == 6 and gen.progress_step == 6
    ab, alignment = Study.objects.filter(pk__in=gen.result["studies"]).order_by("pk")
    assert ab.kind == Study.Kind.AB and ab.config["criteria"] == ["flaws", "appeal"]
    roles = {sm.role: sm.model_version for sm in ab.study_models.all()}
    assert roles == {"A": child, "B": base_version}
    assert ab.tasks.count() == 3 * 2
    assert alignment.kind == Study.Kind.ALIGNMENT
    assert set(alignment.model_versions.all()) == {child, base_version}

    again = services.comparison_request(user=alice, version=child, prompt_set=prompt_set)
    assert again["job"] is None and [s.kind for s in again["studies"]] == ["ab", "alignment"]
    assert again["studies"][0].name.endswith("(2)")


def test_comparison_needs_a_parent_and_generation_needs_weights(
    alice, base_version, other_version, prompt_set
):
    with pytest.raises(services.JobRejected, match="no parent"):
        services.comparison_request(user=alice, version=base_version, prompt_set=prompt_set)
    with pytest.raises(services.JobRejected, match="no weights folder"):
        services.generation_launch(user=alice, model_version=other_version, prompt_set=prompt_set)
    with pytest.raises(services.JobRejected, match="steps must be a positive"):
        services.generation_launch(user=alice, model_version=base_version, prompt_set=prompt_set, steps=0)


def test_metrics_of_a_training_job_feed_the_chart(alice, base_version, preference_study, jobs_dir):
    from evalhub.jobs.selectors import job_metrics

    job = launch_training(alice, base_version, preference_study)
    runner.job_run(job.pk)
    points = job_metrics(Job.objects.get(pk=job.pk))
    assert [p["step"] for p in points] == [1, 2, 3]
    assert {"loss", "latent_loss", "pixel_loss", "implicit_acc"} <= set(points[0])
    assert json.dumps(points)
