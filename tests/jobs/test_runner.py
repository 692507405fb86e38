"""Jobs run in-process through the worker's code (evalhub.jobs.runner): the loop from
preferences to a new version, its images and the studies against its parent.

Tests that run a job use ``as_worker`` (no test transaction; see conftest)."""

import json
import re
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models.functions import Now

from annotate.models import Study, TaskImage
from evalhub.catalog.models import GeneratedImage, ModelVersion
from evalhub.jobs import errors, folders, reaper, runner, selectors, services
from evalhub.jobs.metrics import metrics_parse
from evalhub.jobs.models import Job
from evalhub.results.preference_export import preference_pairs_export
from tests.jobs.conftest import SFT_SET, TINY_RUN, launch_training, queued
from training.data import data_fingerprint
from training.options import OUT_OF_RANGE


def test_training_job_registers_a_version_with_its_lineage(
    alice, as_worker, base_version, preference_study, jobs_dir, tmp_path, broker_queue
):
    """The worker trains on the study's export and registers a child version that records
    the export's hash, the resolved configuration and the final metrics."""
    job = launch_training(alice, base_version, preference_study)
    assert len(queued(broker_queue, "gpu")) == 1  # one message, on the gpu queue
    assert job.state == Job.State.QUEUED and job.progress_total == 3

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


def test_a_second_delivery_runs_nothing(alice, as_worker, base_version, preference_study):
    """Once claimed, the job is not queued any more: another delivery of its message skips."""
    job = launch_training(alice, base_version, preference_study, max_steps=1)
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    assert runner.job_run(job.pk) == "skipped"
    assert ModelVersion.objects.filter(parent=base_version).count() == 1


def test_a_training_that_raises_fails_with_its_error_visible(
    alice, as_worker, base_version, preference_study
):
    """The exception and the tail of its traceback end up on the job."""
    job = launch_training(alice, base_version, preference_study)
    shutil.rmtree(Path(base_version.weights_uri) / "unet")  # the weights break after the launch
    assert runner.job_run(job.pk) == Job.State.FAILED
    job.refresh_from_db()
    assert job.error.startswith("OSError: Error no file named config.json")
    assert 'File "' in job.log_tail and "failed: OSError" in job.log_tail  # the traceback's tail
    assert job.produced_version is None and job.finished_at is not None


def run_in_thread(job: Job) -> tuple[threading.Thread, dict]:
    """The worker's run of ``job`` on a thread of this process; the outcome fills the dict."""
    outcome = {}

    def work():
        try:
            outcome.update(state=runner.job_run(job.pk))
        finally:
            connection.close()  # the thread's own

    worker = threading.Thread(target=work)
    worker.start()
    return worker, outcome


def run_metrics(job: Job) -> list[dict]:
    """The records of ``job``'s ``metrics.jsonl`` in this worker's folder; none before it exists."""
    path = folders.job_folder(job) / "run" / "metrics.jsonl"
    return metrics_parse(path.read_bytes()) if path.is_file() else []


def cancelled_after_steps(job: Job, steps: int) -> int:
    """Run ``job`` on a thread, cancel it once its trainer wrote ``steps`` steps, wait for
    the cancel; the step it stopped at (where it wrote its checkpoint)."""
    worker, outcome = run_in_thread(job)
    deadline = time.monotonic() + 60
    while steps_logged(job) < steps and time.monotonic() < deadline:
        time.sleep(0.05)
    services.job_cancel(Job.objects.get(pk=job.pk))
    worker.join(timeout=60)
    job.refresh_from_db()
    assert outcome["state"] == Job.State.CANCELLED
    return job.progress_step


def steps_logged(job: Job) -> int:
    """How many optimizer steps the trainer has written to its metrics so far (not its
    event lines: start, samples)."""
    records = run_metrics(job)
    return sum("event" not in record for record in records)


def test_cancel_stops_a_running_training_at_its_next_step(
    alice, as_worker, base_version, preference_study, settings
):
    """The run ends within a step of the cancel (the trainer reads the flag after every step)."""
    settings.EVALHUB_JOB_HEARTBEAT_SECONDS = 0.2
    fast = {"loss_space": "latent", "batch_size": 1}  # short steps: a late stop would show
    job = launch_training(alice, base_version, preference_study, max_steps=100_000, **fast)
    worker, outcome = run_in_thread(job)
    deadline = time.monotonic() + 60
    while steps_logged(job) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    services.job_cancel(Job.objects.get(pk=job.pk))
    at_cancel = steps_logged(job)
    worker.join(timeout=60)
    job.refresh_from_db()
    assert outcome["state"] == job.state == Job.State.CANCELLED
    assert at_cancel <= job.progress_step <= at_cancel + 1, (at_cancel, job.progress_step)
    assert f"cancelled: stopped on request after step {job.progress_step}" in job.log_tail
    assert not ModelVersion.objects.filter(parent=base_version).exists()


def test_a_run_the_reaper_failed_stops_and_registers_nothing(
    alice, as_worker, base_version, preference_study, settings
):
    """A worker that was silent too long (a database outage, a stall) finds its job failed:
    it stops at the next step, and the job stays failed with the reaper's reason."""
    settings.EVALHUB_JOB_HEARTBEAT_SECONDS = 3600  # no beat: the worker looks dead
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = 1
    job = launch_training(alice, base_version, preference_study, max_steps=100_000)
    worker, outcome = run_in_thread(job)
    deadline = time.monotonic() + 60
    while not reaper.jobs_reap_stale() and time.monotonic() < deadline:
        time.sleep(0.2)
    worker.join(timeout=60)
    job.refresh_from_db()
    assert outcome["state"] == job.state == Job.State.FAILED
    assert "stopped reporting" in job.error
    assert runner.STOPPING_NOT_RUNNING.format(state="failed") in job.log_tail
    assert not ModelVersion.objects.filter(parent=base_version).exists()


def test_a_version_is_registered_only_while_the_job_runs(alice, base_version, preference_study, settings):
    """The registration re-checks the job's state in its own transaction: a job the reaper
    failed after training ended registers no version."""
    from training.config import TrainConfig
    from training.trainer import TrainResult

    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = 30
    job = runner.job_claim(launch_training(alice, base_version, preference_study).pk, "w1")
    result = TrainResult(
        final_model=Path("/runs/final"),
        steps=3,
        data_hash="0" * 64,
        metrics={"step": 3, "loss": 0.5},
        config=TrainConfig(model=base_version.weights_uri, data="d", output_dir="o", **TINY_RUN),
    )
    Job.objects.filter(pk=job.pk).update(heartbeat_at=Now() - timedelta(seconds=31))
    assert reaper.jobs_reap_stale() == 1
    message = runner.NOT_REGISTERED.format(folder="/runs/final", state="failed")
    with pytest.raises(runner.JobNotRunning, match=re.escape(message)):
        runner.version_register(job, result, runner.JobMonitor(job))
    assert not ModelVersion.objects.filter(parent=base_version).exists()
    assert Job.objects.get(pk=job.pk).produced_version is None


def test_cancelling_a_queued_job_ends_it_before_it_starts(alice, base_version, preference_study, jobs_dir):
    """A queued job is cancelled at once, and its message then runs nothing."""
    job = services.job_cancel(launch_training(alice, base_version, preference_study))
    assert job.state == Job.State.CANCELLED and job.finished_at
    assert runner.job_run(job.pk) == "skipped"
    with pytest.raises(
        errors.JobRejected, match=re.escape(errors.ALREADY_ENDED.format(job=job.pk, state="cancelled"))
    ):
        services.job_cancel(job)


def test_retry_queues_the_same_configuration(alice, base_version, preference_study, jobs_dir):
    """A retry is a new job with the cancelled one's configuration; a queued job has no retry."""
    job = services.job_cancel(launch_training(alice, base_version, preference_study))
    retry = services.job_retry(job, user=alice)
    assert (retry.config, retry.retry_of, retry.state) == (job.config, job, Job.State.QUEUED)
    with pytest.raises(
        errors.JobRejected, match=re.escape(errors.NOT_RETRYABLE.format(job=retry.pk, state="queued"))
    ):
        services.job_retry(retry, user=alice)


def test_the_reaper_fails_jobs_whose_worker_went_silent(alice, base_version, preference_study, settings):
    """Only a job whose last heartbeat is older than the timeout is failed, with the reason."""
    settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT = 30
    silent = launch_training(alice, base_version, preference_study)
    alive = launch_training(alice, base_version, preference_study)
    Job.objects.filter(pk=silent.pk).update(
        state="running", worker="w1", heartbeat_at=Now() - timedelta(seconds=31)
    )
    Job.objects.filter(pk=alive.pk).update(state="running", heartbeat_at=Now() - timedelta(seconds=5))
    assert reaper.jobs_reap_stale() == 1
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
        ({"study": None}, "either a best/worst study or an SFT data set"),
        ({"weights": ""}, "has no weights folder"),
        ({"weights": "/nowhere"}, "not a diffusers pipeline folder"),
        ({"version_name": "platypus-hidden-model-b"}, "already exists"),
    ],
)
def test_training_launch_validates_before_queueing(
    alice, base_version, other_version, preference_study, prompt_set, change, message
):
    """Every bad choice is refused with its reason before a job exists."""
    study = preference_study
    if change.get("study") == "ab":
        study = Study.objects.create(name="ab", kind=Study.Kind.AB, prompt_set=prompt_set)
    elif "study" in change:
        study = None
    if "weights" in change:
        base_version.weights_uri = change["weights"]
        base_version.save()
    with pytest.raises(errors.JobRejected, match=message):
        services.training_launch(
            user=alice,
            base_version=base_version,
            study=study,
            options={**TINY_RUN, **change.get("options", {})},
            version_name=change.get("version_name", ""),
        )
    assert not Job.objects.exists()


def test_a_study_without_decided_pairs_cannot_train(alice, base_version, prompt_set):
    """A best/worst study with no decided pair cannot train; the error counts its incomplete tasks."""
    from annotate.services import study_create

    empty = study_create(
        name="empty", kind=Study.Kind.BEST_WORST, prompt_set=prompt_set, model_versions=[base_version]
    )
    message = errors.NO_DECIDED_PAIRS.format(study="empty", incomplete=3, tasks=3, overlap=5)
    with pytest.raises(errors.JobRejected, match=re.escape(message)):
        services.training_launch(user=alice, base_version=base_version, study=empty, options=TINY_RUN)


def test_generation_then_comparison_with_the_parent(
    alice, as_worker, base_version, preference_study, prompt_set
):
    """Generation imports the new version's images, then creates the A/B and alignment
    studies against its parent (the A/B images served at the chosen common size, since the
    tiny model draws 64×64 and the parent's images are 8×6); asking again makes new
    studies under free names."""
    job = launch_training(alice, base_version, preference_study, max_steps=1)
    runner.job_run(job.pk)
    child = Job.objects.get(pk=job.pk).produced_version

    gen = services.generation_launch(
        user=alice,
        model_version=child,
        prompt_set=prompt_set,
        compare_after=True,
        display_size="16x12",
        images_per_prompt=2,
        steps=2,
    )
    assert gen.progress_total == 3 * 2
    state = runner.job_run(gen.pk)
    gen.refresh_from_db()
    assert state == Job.State.SUCCEEDED, gen.error
    assert GeneratedImage.objects.filter(model_version=child, prompt__prompt_set=prompt_set).count() == 6
    assert gen.result["imported"] == 6 and gen.progress_step == 6
    ab, alignment = Study.objects.filter(pk__in=gen.result["studies"]).order_by("pk")
    assert ab.kind == Study.Kind.AB and ab.config["criteria"] == ["flaws", "appeal"]
    roles = {sm.role: sm.model_version for sm in ab.study_models.all()}
    assert roles == {"A": child, "B": base_version}
    assert ab.tasks.count() == 3 * 2
    assert (
        ab.config["display_size"] == [16, 12]
        and ab.title == "Compare two images: visual flaws and visual appeal"
    )
    served = {(ti.resampled.width, ti.resampled.height) for ti in TaskImage.objects.filter(task__study=ab)}
    assert served == {(16, 12)}
    assert alignment.kind == Study.Kind.ALIGNMENT and alignment.config["image_index"] == 1
    assert set(alignment.model_versions.all()) == {child, base_version}
    assert child.name not in alignment.title and base_version.name not in ab.title

    again = services.comparison_request(
        user=alice, version=child, prompt_set=prompt_set, display_size="24x18"
    )
    assert again["job"] is None and [s.kind for s in again["studies"]] == ["ab", "alignment"]
    assert again["studies"][0].name.endswith("(2)")


def test_a_comparison_of_differently_sized_versions_needs_a_display_size(
    alice, as_worker, base_version, preference_study, prompt_set
):
    """Without a common size the A/B study is refused with both sizes named, and nothing is created."""
    job = launch_training(alice, base_version, preference_study, max_steps=1)
    runner.job_run(job.pk)
    child = Job.objects.get(pk=job.pk).produced_version
    gen = services.generation_launch(user=alice, model_version=child, prompt_set=prompt_set, steps=2)
    assert runner.job_run(gen.pk) == Job.State.SUCCEEDED
    before = Study.objects.count()
    with pytest.raises(errors.JobRejected, match="A 64×64, B 8×6 in 3 prompt"):
        services.comparison_request(user=alice, version=child, prompt_set=prompt_set)
    with pytest.raises(errors.JobRejected, match="display size must be WIDTHxHEIGHT"):
        services.comparison_request(user=alice, version=child, prompt_set=prompt_set, display_size="big")
    assert Study.objects.count() == before


def test_comparison_needs_a_parent_and_generation_needs_weights(
    alice, base_version, other_version, prompt_set
):
    """Comparing a version without a parent, or generating without weights, is refused."""
    no_parent = errors.NO_PARENT.format(version=base_version.name)
    with pytest.raises(errors.JobRejected, match=re.escape(no_parent)):
        services.comparison_request(user=alice, version=base_version, prompt_set=prompt_set)
    with pytest.raises(
        errors.JobRejected, match=re.escape(errors.NO_WEIGHTS.format(version=other_version.name))
    ):
        services.generation_launch(user=alice, model_version=other_version, prompt_set=prompt_set)
    out_of_range = OUT_OF_RANGE.format(name="steps", interval="[1, 1000]", value=0)
    with pytest.raises(errors.JobRejected, match=re.escape(out_of_range)):
        services.generation_launch(user=alice, model_version=base_version, prompt_set=prompt_set, steps=0)


def test_metrics_of_a_training_job_feed_the_chart(alice, as_worker, base_version, preference_study):
    """The chart's points are the trainer's per-step metrics."""
    from evalhub.jobs.selectors import job_metrics

    job = launch_training(alice, base_version, preference_study)
    runner.job_run(job.pk)
    points = job_metrics(Job.objects.get(pk=job.pk))
    assert [p["step"] for p in points] == [1, 2, 3]
    assert {"loss", "latent_loss", "pixel_loss", "implicit_acc"} <= set(points[0])
    assert json.dumps(points)


def test_the_chart_leaves_out_a_line_still_being_written(alice, base_version, preference_study, jobs_dir):
    """While the trainer writes, the last line can be half there: the chart skips it (and
    any line that does not parse) instead of failing the page."""
    from evalhub.jobs.selectors import job_metrics

    job = launch_training(alice, base_version, preference_study)
    metrics = folders.job_folder(job) / "run" / "metrics.jsonl"
    metrics.parent.mkdir(parents=True)
    metrics.write_text('{"step": 1, "loss": 0.9}\nnot json\n{"step": 2, "loss": 0.8}\n{"step": 3, "lo')
    assert [p["step"] for p in job_metrics(job)] == [1, 2]
    with metrics.open("a") as handle:
        handle.write('ss": 0.7}\n')
    assert [p["step"] for p in job_metrics(job)] == [1, 2, 3]


def test_a_training_job_on_an_sft_data_set(client, alice, as_worker, base_version, sft_folder):
    """From the training form with an SFT data set (by name) and a seed to a registered SFT
    version whose page names its training data; its validation renders (left on here) draw
    the data's captions."""
    client.force_login(alice)
    response = client.post(
        "/jobs/new/training/",
        {"base_version": base_version.pk, "sft_data": SFT_SET, "method": "sft",
         "loss_space": "latent+pixel", "max_steps": 2, "batch_size": 2, "learning_rate": 1e-5,
         "mixed_precision": "no", "lora_rank": 0, "seed": 7, "version_name": "tiny-sft"},
    )  # fmt: skip
    job = Job.objects.get()
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    assert job.config["sft_data"] == SFT_SET and job.config["options"]["seed"] == 7
    assert job.source_study is None

    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    version = job.produced_version
    assert (version.name, version.kind, version.parent) == ("tiny-sft", "sft", base_version)
    assert version.training_data_hash == job.data_hash == data_fingerprint(sft_folder)
    assert version.training_config["seed"] == 7 and version.training_config["data"] == str(sft_folder)
    assert version.final_metrics["step"] == 2
    assert job.config["train_config"]["validation_prompt_file"] is None
    samples = selectors.job_samples(job)
    captions = {"a red square", "a green square", "a blue square"}
    assert samples["prompts"] and set(samples["prompts"]) <= captions
    assert samples["steps"][0]["step"] == 2 and samples["steps"][-1]["step"] == 0
    page = client.get(f"/catalog/models/{version.pk}/").content.decode()
    assert f"training data (SFT) <code>{version.training_data_hash}</code>" in page
    assert f"images of <code>{SFT_SET}</code>" in page and "preference" not in page


def test_a_retried_training_continues_from_the_checkpoint_its_run_left(
    alice, as_worker, base_version, preference_study, settings
):
    """Cancelled after a few steps (the trainer checkpoints where it stops), then retried:
    the retry continues from that step, keeps the first run's lines up to it, and ends."""
    settings.EVALHUB_JOB_HEARTBEAT_SECONDS = 0.2
    job = launch_training(
        alice, base_version, preference_study, max_steps=20, loss_space="latent", batch_size=1
    )
    stopped = cancelled_after_steps(job, 2)
    first = run_metrics(job)
    retry = services.job_retry(job, user=alice)
    assert runner.job_run(retry.pk) == Job.State.SUCCEEDED
    retry.refresh_from_db()
    assert runner.CONTINUING.format(job=job.pk, checkpoint=f"step-{stopped}") in retry.log_tail
    lines = run_metrics(retry)
    steps = [line["step"] for line in lines if "loss" in line]
    assert steps == list(range(1, 21)) and retry.progress_step == 20
    kept = [line for line in first if "loss" in line and line["step"] <= stopped]
    assert [line for line in lines if "loss" in line][:stopped] == kept
    assert [line["step"] for line in lines if line.get("event") == "start"] == [0, stopped]


def test_a_retry_whose_data_changed_starts_over(alice, as_worker, base_version, preference_study, settings):
    """The checkpoint names other data (the study got judgments since): the log says so and
    the run trains from step 0."""
    settings.EVALHUB_JOB_HEARTBEAT_SECONDS = 0.2
    job = launch_training(
        alice, base_version, preference_study, max_steps=2, loss_space="latent", batch_size=1
    )
    checkpoint = folders.job_folder(job) / "run" / "checkpoints" / "step-1"
    checkpoint.mkdir(parents=True)
    (checkpoint / "training_state.json").write_text(
        json.dumps({"step": 1, "config": {}, "data_hash": "0" * 64})
    )
    services.job_cancel(job)
    retry = services.job_retry(Job.objects.get(pk=job.pk), user=alice)
    assert runner.job_run(retry.pk) == Job.State.SUCCEEDED
    retry.refresh_from_db()
    assert f"cannot continue from job #{job.pk}'s checkpoint" in retry.log_tail
    lines = run_metrics(retry)
    assert [line["step"] for line in lines if "loss" in line] == [1, 2]
