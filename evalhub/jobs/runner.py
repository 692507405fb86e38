"""What a worker does with a job: claim it once, run it, report while it runs, record the end.

- **Claim**: a conditional update from ``queued`` to ``running``; a second delivery of the
  same message (``acks_late`` redelivers after a crash) finds the job no longer queued and
  does nothing.
- **Heartbeat**: a thread writes ``heartbeat_at``, the progress (the last line of the
  trainer's ``metrics.jsonl``, or the generator's count) and the log tail every
  ``EVALHUB_JOB_HEARTBEAT_SECONDS``, and reads the cancel flag. A worker that dies stops
  the heartbeat; :func:`~evalhub.jobs.services.jobs_reap_stale` then marks the job failed.
- **End**: succeeded, failed (with the error and the traceback's tail in the log) or
  cancelled, written only if the job is still ``running`` — a job the reaper already
  failed stays failed.
"""

import json
import threading
import time
import traceback
from collections import deque
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from evalhub.catalog.models import ModelVersion
from evalhub.jobs.models import Job

LOG_LINES = 60


class JobMonitor:
    """The heartbeat thread of one running job."""

    def __init__(self, job: Job, interval: float | None = None):
        self.job_id = job.pk
        self.interval = interval or settings.EVALHUB_JOB_HEARTBEAT_SECONDS
        self.lines = deque(job.log_tail.splitlines(), maxlen=LOG_LINES)
        self.metrics_path: Path | None = None
        self.step, self.total = job.progress_step, job.progress_total
        self.loss: float | None = None
        self._last_logged_step = 0
        self._cancel = threading.Event()
        self._last_cancel_check = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"job-{job.pk}-heartbeat", daemon=True)

    def log(self, line: str) -> None:
        with self._lock:
            self.lines.append(f"{timezone.now():%H:%M:%S} {line}")

    def set_progress(self, step: int, total: int) -> None:
        self.step, self.total = step, total

    def cancel_requested(self) -> bool:
        """Polled by the trainer after every step: a cancel takes effect at the next step
        (the flag is read at most once a second, besides the heartbeat's reads)."""
        now = time.monotonic()
        if not self._cancel.is_set() and now - self._last_cancel_check >= 1.0:
            self._last_cancel_check = now
            if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
                self._cancel.set()
        return self._cancel.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.beat()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.beat()
        finally:
            connection.close()  # this thread's own connection

    def catch_up(self) -> None:
        """Take progress and loss from the trainer's ``metrics.jsonl`` (last line) and log
        them when they moved."""
        if self.metrics_path is not None and self.metrics_path.is_file():
            lines = self.metrics_path.read_text().splitlines()
            last = json.loads(lines[-1]) if lines else {}
            if "step" in last and "loss" in last:
                self.step, self.loss = last["step"], last["loss"]
        if self.step != self._last_logged_step:
            self._last_logged_step = self.step
            loss = f" loss {self.loss:.5g}" if self.loss is not None else ""
            self.log(f"{'step' if self.metrics_path else 'progress'} {self.step}/{self.total}{loss}")

    def beat(self) -> None:
        self.catch_up()
        with self._lock:
            tail = "\n".join(self.lines)
        Job.objects.filter(pk=self.job_id).update(
            heartbeat_at=timezone.now(), progress_step=self.step, progress_total=self.total, log_tail=tail
        )
        if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            self._cancel.set()


def job_claim(job_id: int, worker: str) -> Job | None:
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, started_at=now, heartbeat_at=now, worker=worker
    )
    return Job.objects.get(pk=job_id) if claimed else None


def job_run(job_id: int, worker: str = "") -> str:
    """Run the job if this delivery claims it; returns the state it ended in (or "skipped")."""
    from training.generate import GenerationCancelled
    from training.trainer import TrainingCancelled

    job = job_claim(job_id, worker)
    if job is None:
        return "skipped"
    monitor = JobMonitor(job)
    monitor.log(f"started on worker {worker or '?'}")
    monitor.start()
    state, error = Job.State.SUCCEEDED, ""
    try:
        if job.kind == Job.Kind.TRAINING:
            _run_training(job, monitor)
        else:
            _run_generation(job, monitor)
        monitor.log("done")
    except (TrainingCancelled, GenerationCancelled) as exc:
        state = Job.State.CANCELLED
        monitor.log(f"cancelled: {exc}")
    except Exception as exc:  # any failure ends the job, with its reason visible
        state, error = Job.State.FAILED, f"{type(exc).__name__}: {exc}"
        for line in traceback.format_exc().splitlines()[-12:]:
            monitor.log(line)
        monitor.log(f"failed: {error}")
    finally:
        monitor.stop()
    Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(
        state=state, error=error, finished_at=timezone.now()
    )
    return state


def job_folder(job: Job) -> Path:
    return Path(settings.EVALHUB_JOBS_DIR) / str(job.pk)


def _run_training(job: Job, monitor: JobMonitor) -> None:
    from evalhub.results.preference_export import preference_pairs_export
    from training.config import TrainConfig, resolved
    from training.models import pipeline_family
    from training.trainer import train

    folder = job_folder(job)
    base = job.model_version
    if job.source_study is not None:
        export = preference_pairs_export(study=job.source_study, folder=folder / "data")
        data = export.folder
        monitor.log(
            f"exported {export.pairs} pairs of study {job.source_study.name!r} ({export.content_hash[:12]})"
        )
    else:
        data = Path(job.config["sft_data"])
    options = job.config["options"]
    config = TrainConfig(model=base.weights_uri, data=str(data), output_dir=str(folder / "run"), **options)
    job.config = {**job.config, "train_config": resolved(config, pipeline_family(config.model)).to_dict()}
    job.save(update_fields=["config"])
    monitor.metrics_path = folder / "run" / "metrics.jsonl"
    monitor.set_progress(0, config.max_steps)
    monitor.log(f"training {config.method} ({config.loss_space}) from {base.name}, {config.max_steps} steps")
    result = train(config, should_stop=monitor.cancel_requested)
    monitor.catch_up()  # the last step's line, before the closing lines of the log
    name = job.config.get("version_name") or f"{base.name}-{config.method}-job{job.pk}"
    with transaction.atomic():
        version = ModelVersion.objects.create(
            name=name,
            kind=config.method,
            parent=base,
            weights_uri=str(result.final_model),
            description=f"Trained by job #{job.pk}"
            + (f" on the preferences of study {job.source_study.name!r}" if job.source_study else ""),
            training_config=result.config.to_dict(),
            training_data_hash=result.data_hash,
            final_metrics=result.metrics,
        )
        Job.objects.filter(pk=job.pk).update(
            produced_version=version,
            data_hash=result.data_hash,
            result={"final_model": str(result.final_model), "steps": result.steps, "metrics": result.metrics},
        )
    monitor.log(f"registered model version {version.name}")


def _run_generation(job: Job, monitor: JobMonitor) -> None:
    from evalhub.catalog.image_import import generated_images_import
    from evalhub.catalog.image_sources import DirectorySource
    from evalhub.jobs.services import comparison_create
    from training.generate import GenerateConfig, generate

    folder = job_folder(job)
    folder.mkdir(parents=True, exist_ok=True)
    prompts = folder / "prompts.jsonl"
    texts = job.prompt_set.prompts.order_by("pk").values_list("text", flat=True)
    prompts.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    version, options = job.model_version, job.config
    config = GenerateConfig(
        model=version.weights_uri,
        prompts=str(prompts),
        output_dir=str(folder / "images"),
        model_name=version.name,
        images_per_prompt=options["images_per_prompt"],
        steps=options["steps"],
        guidance=options["guidance"],
        seed=options["seed"],
    )
    monitor.log(f"generating {job.progress_total} images with {version.name}")
    manifest = generate(config, on_progress=monitor.set_progress, should_stop=monitor.cancel_requested)
    imported = generated_images_import(
        prompt_set=job.prompt_set, manifest=manifest.read_text(), source=DirectorySource(manifest.parent)
    )
    monitor.log(f"imported {imported.created} images ({imported.skipped} already there)")
    result = {"manifest": str(manifest), "imported": imported.created, "skipped": imported.skipped}
    if options.get("compare_after"):
        studies = comparison_create(user=job.created_by, version=version, prompt_set=job.prompt_set)
        result["studies"] = [s.pk for s in studies]
        monitor.log("created studies: " + "; ".join(s.name for s in studies))
    Job.objects.filter(pk=job.pk).update(result=result)
