"""What a worker makes of the trainer's event lines and gives the trainer for its validation
renders: the start line sets the job's total (a run by epochs learns it only then) and
logs what data it kept; each render is logged; a job on a study's preferences renders the
study's first prompts. The trainer is stood in for by a function that writes what it would
(``metrics.jsonl`` lines, sample files): these tests do not depend on the real one."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from evalhub.catalog.models import Prompt
from evalhub.jobs import runner, services
from evalhub.jobs.folders import job_folder
from evalhub.jobs.models import Job
from tests.jobs.conftest import SFT_SET, launch_training
from tests.jobs.test_job_log import append, logged_steps, metrics_line, running_training

START = {
    "event": "start",
    "step": 0,
    "examples": 56,
    "rows": 64,
    "ties": 6,
    "unlabelled": 2,
    "data": "preference export prefs (64 pairs)",
    "epochs": 2,
    "steps_per_epoch": 14,
    "max_steps": 28,
    "global_batch": 4,
    "processes": 1,
    "message": "kept 56 of 64 pairs: 6 ties, 2 unlabelled; 14 steps an epoch at 4 a step; 28 steps",
}


def line(record: dict) -> str:
    return json.dumps(record) + "\n"


@pytest.fixture
def running(db, jobs_dir):
    """A training job by epochs (its total unknown), and its worker's monitor."""
    return running_training(config={"options": {"epochs": 2}})


def test_the_start_line_sets_the_total_and_logs_the_data(running):
    """The start line's max_steps becomes the job's total, for the progress bar and every
    step line after it; its data and message are logged."""
    job, monitor = running
    append(monitor.metrics_path, line(START) + metrics_line(1) + "\n")
    monitor.beat()
    job.refresh_from_db()
    assert (job.progress_step, job.progress_total) == (1, 28)
    log = job.log_tail.splitlines()
    assert log[0].endswith(runner.DATA_LINE.format(data=START["data"]))
    assert log[1].endswith(START["message"])
    assert log[2].endswith("step 1/28 loss 1")


def test_each_render_is_logged_once(running):
    """A samples line logs the render's step; a resumed run's rewrite of the file (its kept
    lines read again) logs neither the start nor a render twice."""
    job, monitor = running
    path = monitor.metrics_path
    samples = [
        {"event": "samples", "step": k, "folder": f"samples/step-{k:06d}", "images": 4} for k in (0, 3)
    ]
    kept = line(START) + line(samples[0]) + "".join(metrics_line(s) + "\n" for s in range(1, 4))
    append(path, kept + line(samples[1]) + metrics_line(4) + "\n")
    monitor.beat()
    path.write_text(kept)  # resumed from step 3's checkpoint
    monitor.beat()
    append(path, line({**START, "step": 3}) + line(samples[1]) + metrics_line(4) + "\n")
    monitor.beat()
    job.refresh_from_db()
    log = job.log_tail
    assert log.count(runner.SAMPLES_LINE.format(step=0)) == 1
    assert log.count(runner.SAMPLES_LINE.format(step=3)) == 1
    assert log.count(START["message"]) == 2  # the first run's start and the resumed run's
    assert logged_steps(log) == [1, 2, 3, 4]


def test_a_start_line_without_a_usable_total_keeps_the_one_known(running):
    """A missing, non-integer or out-of-range max_steps leaves the total as it was; a line
    with no step at all is skipped."""
    job, monitor = running
    monitor.set_progress(0, 50)
    bad = [
        {**START, "step": k, "max_steps": value} for k, value in ((1, None), (2, "28"), (3, 2**40), (4, 0))
    ]
    append(monitor.metrics_path, "".join(map(line, bad)) + line({"event": "start", "max_steps": 7}))
    monitor.beat()
    job.refresh_from_db()
    assert job.progress_total == 50


def test_the_validation_prompts_are_the_studys_first_prompts(alice, base_version, preference_study):
    """``validation_prompts`` prompts of the study's prompt set, by id, one per line; a line
    break inside a prompt becomes a space."""
    Prompt.objects.create(prompt_set=preference_study.prompt_set, text="a red\nbird", position=3)
    job = launch_training(alice, base_version, preference_study)
    path = runner.validation_prompts_write(job, count=2)
    assert path == job_folder(job) / runner.VALIDATION_PROMPTS_FILE
    assert path.read_text().splitlines() == ["a dog and a cat, take 0", "a dog and a cat, take 1"]
    runner.validation_prompts_write(job)  # the option's default: 4
    assert path.read_text().splitlines() == [*(f"a dog and a cat, take {i}" for i in range(3)), "a red bird"]


@pytest.fixture
def fake_trainer(monkeypatch):
    """``training.trainer.train`` replaced by one that writes what a run by epochs writes
    (start line, a render at step 0, its steps) and returns a result; the configs it got."""
    configs = []

    def train(config, should_stop):
        configs.append(config)
        run = Path(config.output_dir)
        (run / "samples" / "step-000000").mkdir(parents=True)
        (run / "final").mkdir()
        steps = "".join(metrics_line(s) + "\n" for s in range(1, 29))
        samples = {"event": "samples", "step": 0, "folder": "samples/step-000000", "images": 2}
        (run / "metrics.jsonl").write_text(line(START) + line(samples) + steps)
        return SimpleNamespace(
            config=config, final_model=run / "final", data_hash="abc", metrics={"step": 28}, steps=28
        )

    monkeypatch.setattr("training.trainer.train", train)
    return configs


def test_a_preference_job_renders_its_studys_prompts(
    alice, as_worker, base_version, preference_study, fake_trainer
):
    """The worker hands the trainer the prompts file it wrote; a job by epochs starts with
    its total unknown, logs "epochs 2", and takes the total from the run's start line."""
    job = launch_training(
        alice, base_version, preference_study, max_steps=None, epochs=2, validation_prompts=2
    )
    assert job.progress_total == 0 and job.config["options"]["epochs"] == 2
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    (config,) = fake_trainer
    prompts = job_folder(job) / runner.VALIDATION_PROMPTS_FILE
    assert config.validation_prompt_file == str(prompts) and len(prompts.read_text().splitlines()) == 2
    job.refresh_from_db()
    assert (job.progress_step, job.progress_total) == (28, 28)
    assert job.config["train_config"]["epochs"] == 2 and job.config["train_config"]["max_steps"] is None
    training = runner.TRAINING_LINE.format(
        method="simpo", loss_space="latent+pixel", base=base_version.name, length="epochs 2"
    )
    for expected in (training, START["message"], runner.SAMPLES_LINE.format(step=0), "step 28/28"):
        assert expected in job.log_tail


def test_an_sft_job_renders_its_datas_captions(alice, as_worker, base_version, sft_folder, fake_trainer):
    """An SFT data set's job leaves the prompts to the trainer (the data's first captions)."""
    job = services.training_launch(
        user=alice, base_version=base_version, sft_data=SFT_SET, options={"method": "sft"}
    )
    assert job.progress_total == 100  # neither max_steps nor epochs: 100 steps
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    assert fake_trainer[0].validation_prompt_file is None
    assert not (job_folder(job) / runner.VALIDATION_PROMPTS_FILE).exists()
