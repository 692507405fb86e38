"""The job log keeps every step the trainer wrote: each heartbeat logs all the lines added
to ``metrics.jsonl`` since the last one (it used to log only the last, so a run whose steps
outpaced the beat showed 36, 39, 41, …), and the log stays a bounded tail without gaps."""

import json
import re

import pytest

from evalhub.jobs import runner
from evalhub.jobs.folders import job_folder
from evalhub.jobs.metrics import metrics_since
from evalhub.jobs.models import Job
from tests.factories import ModelVersionFactory
from tests.jobs.conftest import client_for

STEP_LINE = re.compile(r"^\d\d:\d\d:\d\d step (\d+)/(\d+) loss (\S+)$")


def metrics_line(step: int) -> str:
    """One record as the trainer writes it (training.trainer.Trainer._log)."""
    loss = 1.0 / step
    return json.dumps(
        {"step": step, "epoch": 0, "loss": loss, "latent_loss": loss / 2, "pixel_loss": loss / 2}
    )


def logged_steps(log_tail: str) -> list[int]:
    return [int(m.group(1)) for m in map(STEP_LINE.match, log_tail.splitlines()) if m]


def running_training(**fields) -> tuple[Job, runner.JobMonitor]:
    """A training job a worker runs (``fields`` set on it), and its monitor reading the
    trainer's metrics file."""
    job = Job.objects.create(
        kind=Job.Kind.TRAINING, state=Job.State.RUNNING, model_version=ModelVersionFactory(), **fields
    )
    monitor = runner.JobMonitor(job)
    monitor.metrics_path = job_folder(job) / "run" / "metrics.jsonl"
    monitor.metrics_path.parent.mkdir(parents=True)
    return job, monitor


@pytest.fixture
def running(db, jobs_dir):
    return running_training(progress_total=100)


def append(path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


def test_a_job_shows_every_step_it_wrote(running, alice):
    """The trainer writes 100 steps, several between two beats and one line half written
    at a beat: the API's log has all 100 step lines, in order, once each."""
    job, monitor = running
    path = monitor.metrics_path
    for chunk in (range(1, 37), range(37, 40), range(40, 42), range(42, 99)):
        append(path, "".join(metrics_line(step) + "\n" for step in chunk))
        monitor.beat()
    half = metrics_line(99) + "\n"
    append(path, half[:10])
    monitor.beat()
    append(path, half[10:] + metrics_line(100) + "\n")
    monitor.catch_up()  # the run's end catches up (runner._run_training), then the last beat
    monitor.beat()
    detail = client_for(alice).get(f"/api/jobs/{job.pk}/").json()
    assert logged_steps(detail["log_tail"]) == list(range(1, 101))
    assert "step 37/100 loss 0.027027" in detail["log_tail"]
    assert len(detail["metrics"]) == 100 and detail["progress_step"] == 100


def test_a_long_run_keeps_a_bounded_tail_without_gaps(running):
    """Thousands of steps: the log keeps its last LOG_LINES lines, consecutive steps to the
    last one; the stored tail stays small."""
    job, monitor = running
    total = 3 * runner.LOG_LINES + 17
    monitor.set_progress(0, total)
    for start in range(1, total + 1, 700):  # 700 steps between two beats
        append(
            monitor.metrics_path,
            "".join(metrics_line(s) + "\n" for s in range(start, min(start + 700, total + 1))),
        )
        monitor.beat()
    job.refresh_from_db()
    steps = logged_steps(job.log_tail)
    assert len(job.log_tail.splitlines()) == runner.LOG_LINES
    assert steps == list(range(total - runner.LOG_LINES + 1, total + 1))
    assert len(job.log_tail) < 100 * runner.LOG_LINES


def test_event_lines_and_a_rewritten_file_log_no_step_twice(running):
    """An event line (a diverged run) logs no step; a resumed run that rewrites the file
    with the steps it keeps logs only the steps after those already logged."""
    job, monitor = running
    path = monitor.metrics_path
    append(path, "".join(metrics_line(s) + "\n" for s in range(1, 6)))
    append(path, json.dumps({"step": 5, "event": "diverged", "message": "loss became nan"}) + "\n")
    monitor.beat()
    path.write_text("".join(metrics_line(s) + "\n" for s in range(1, 4)))  # resumed from step 3
    monitor.beat()
    append(path, "".join(metrics_line(s) + "\n" for s in range(4, 8)))
    monitor.beat()
    job.refresh_from_db()
    assert logged_steps(job.log_tail) == [1, 2, 3, 4, 5, 6, 7]


def test_metrics_since_reads_complete_lines_after_an_offset(tmp_path, monkeypatch):
    """Only new complete lines; a shorter file is read from the start; a huge backlog is
    read from its end."""
    path = tmp_path / "metrics.jsonl"
    assert metrics_since(path, 0) == ([], 0)
    path.write_text(metrics_line(1) + "\n" + metrics_line(2)[:5])
    records, offset = metrics_since(path, 0)
    assert [r["step"] for r in records] == [1] and offset == len(metrics_line(1)) + 1
    append(path, metrics_line(2)[5:] + "\n")
    records, offset = metrics_since(path, offset)
    assert [r["step"] for r in records] == [2] and offset == path.stat().st_size
    path.write_text(metrics_line(1) + "\n")
    assert [r["step"] for r in metrics_since(path, offset)[0]] == [1]
    monkeypatch.setattr("evalhub.jobs.metrics.NEW_BYTES_MAX", 3 * len(metrics_line(50)))
    path.write_text("".join(metrics_line(s) + "\n" for s in range(10, 60)))
    records, offset = metrics_since(path, 0)
    steps = [r["step"] for r in records]
    assert steps == list(range(59 - len(steps) + 1, 60)) and 1 <= len(steps) <= 3
    assert offset == path.stat().st_size
