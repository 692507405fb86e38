"""What a worker does with a job: claim it once, run it, report while it runs, record the end.

- **Claim**: a conditional update from ``queued`` to ``running``; a second delivery of the
  same message (``acks_late`` redelivers after a crash) finds the job no longer queued and
  does nothing.
- **Heartbeat**: a thread writes ``heartbeat_at`` (the database's clock), the progress (the
  trainer's ``metrics.jsonl``, or the generator's count) and the log tail every
  ``EVALHUB_JOB_HEARTBEAT_SECONDS``, and reads the cancel flag. Each beat logs one line per
  step the trainer wrote since the last beat; the log keeps its last ``LOG_LINES`` lines. A
  beat that fails (a locked SQLite file, a dropped PostgreSQL connection) is logged and the
  next one tried on a fresh connection. A worker that dies stops the heartbeat;
  :func:`~evalhub.jobs.reaper.jobs_reap_stale` then marks the job failed.
- **Stop**: the trainer polls after every step (the generator after every batch); the run
  stops when the job is cancelled or is no longer ``running`` (the reaper failed it), and
  writes a checkpoint.
- **Retry**: a retried training continues from the newest checkpoint its earlier run left
  (the one written at a cancel or a stop, or the last ``checkpoint_every`` one of a worker
  that died), with that run's metrics and samples up to it; where the trainer refuses it
  (the study's pairs changed since), the log says why and the run starts from step 0.
- **Storage**: with object storage a worker shares no disk with the web or other workers:
  it fetches the weights it starts from (evalhub.jobs.weights, cached by content hash),
  copies its run's metrics, samples and checkpoints to the artifacts storage while it runs
  (evalhub.jobs.run_sync), fetches an earlier run's checkpoint from there to continue it,
  and registers trained weights by their stored, content-named location.
- **End**: a trained version is registered only while the job is still ``running``, in the
  transaction that moves its heartbeat, so the reaper cannot fail it meanwhile. Succeeded,
  failed (with the error and the traceback's tail in the log) or cancelled is written only
  if the job is still ``running`` — a job the reaper already failed stays failed.
"""

import json
import logging
import shutil
import threading
import time
import traceback
from collections import deque
from dataclasses import replace
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import ModelVersion
from evalhub.catalog.uploads import read_text_file
from evalhub.jobs.comparisons import comparison_create, free_name
from evalhub.jobs.folders import job_folder, run_folder, sft_data_folder
from evalhub.jobs.job_options import GENERATION_OPTIONS, TRAINING_OPTIONS
from evalhub.jobs.metrics import metrics_since
from evalhub.jobs.models import Job
from evalhub.jobs.run_sync import RunUploader, run_fetch
from evalhub.jobs.weights import weights_local, weights_upload
from evalhub.results.preference_export import preference_pairs_export
from evalhub.storage import artifacts_storage, is_local
from training.run_files import METRICS_FILE, SAMPLES_DIR
from training.stopping import RunCancelled

logger = logging.getLogger(__name__)

# The job log's tail, stored on the job and shown on its page: every step of a run of up
# to several hundred steps, at most about 100 kB for a run of any length.
LOG_LINES = 1000
END_WRITE_PAUSES = (1, 2, 4, 8)  # seconds between tries to record a job's end

# Lines of the job log (and errors) users see; tests reuse them.
STOPPING_NOT_RUNNING = "the job is {state} (not running any more); stopping"
NOT_REGISTERED = "not registering the trained weights ({folder}): the job is {state}, not running"
NAME_TAKEN_AT_REGISTRATION = "the model version name {wanted!r} was taken meanwhile; registered as {name!r}"
TIME_LIMIT_REACHED = "stopped at the time limit (EVALHUB_JOB_TIME_LIMIT = {limit} s)"
DATA_LINE = "data: {data}"
SAMPLES_LINE = "validation samples at step {step}"
TRAINING_LINE = "training {method} ({loss_space}) from {base}, {length}"
CONTINUING = "continuing from job #{job}'s checkpoint {checkpoint}"
NOT_CONTINUING = "cannot continue from job #{job}'s checkpoint: {reason}; training from step 0"

VALIDATION_PROMPTS_FILE = "validation_prompts.txt"
PROGRESS_MAX = 2**31 - 1  # the progress columns' range (PostgreSQL's integer)
EVENT_TEXT_MAX = 500  # characters of an event's message or data the log keeps


class JobNotRunning(Exception):
    """The job was ended elsewhere (the reaper failed it) while this worker still ran it."""


def _recover_connection() -> None:
    """After a database error: drop this thread's connection if it is broken, so the next
    query opens a fresh one. Inside a transaction (a test's) the owner must end it first."""
    if not connection.in_atomic_block:
        close_old_connections()


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
        self._metrics_offset = 0  # bytes of metrics.jsonl already logged
        self._events_seen: set[tuple[str, int]] = set()  # a rewritten file logs none twice
        self._catch_up_lock = threading.Lock()  # the heartbeat and the run's end both catch up
        self._cancel = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"job-{job.pk}-heartbeat", daemon=True)

    def log(self, line: str) -> None:
        with self._lock:
            self.lines.append(f"{timezone.now():%H:%M:%S} {line}")

    def set_progress(self, step: int, total: int) -> None:
        self.step, self.total = step, total

    def restart_metrics(self) -> None:
        """Read ``metrics.jsonl`` from its start again, logging every step anew (a run that
        could not continue from a checkpoint starts over)."""
        with self._catch_up_lock:
            self._metrics_offset, self._last_logged_step, self.step = 0, 0, 0
            self._events_seen.clear()

    def cancel_requested(self) -> bool:
        """Polled by the trainer after every step: a cancel (or the job's end elsewhere)
        takes effect at the next step. One indexed read; a failed read stops nothing."""
        if not self._cancel.is_set():
            try:
                self._read_flags()
            except DatabaseError:
                logger.warning("job %s: could not read the cancel flag", self.job_id, exc_info=True)
                _recover_connection()
        return self._cancel.is_set()

    def _read_flags(self) -> None:
        state, cancel = Job.objects.filter(pk=self.job_id).values_list("state", "cancel_requested").get()
        if state != Job.State.RUNNING and not self._cancel.is_set():
            self.log(STOPPING_NOT_RUNNING.format(state=state))
        if cancel or state != Job.State.RUNNING:
            self._cancel.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread and write the last beat; that beat failing never keeps the job's
        end from being recorded."""
        self._stop.set()
        self._thread.join()
        self.beat_safely()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.beat_safely()
        finally:
            connection.close()  # this thread's own connection

    def catch_up(self) -> None:
        """Log one line per step the trainer wrote to ``metrics.jsonl`` since the last call
        (each complete line, in order) and take progress and loss from the last; without
        metrics (a generation), log the progress when it moved.

        Every step, not only the one a beat happens to find last: a beat every few seconds
        read just the file's last line, so the log skipped the steps written between beats.
        Event lines log what they say (:meth:`_event`).
        """
        with self._catch_up_lock:
            if self.metrics_path is None:
                if self.step != self._last_logged_step:
                    self._last_logged_step = self.step
                    self.log(f"progress {self.step}/{self.total}")
                return
            records, self._metrics_offset = metrics_since(self.metrics_path, self._metrics_offset)
            for record in records:
                step, loss = record.get("step"), record.get("loss")
                if not isinstance(step, int):
                    continue  # a foreign line
                if "event" in record:
                    self._event(record, step)
                elif not isinstance(loss, int | float):
                    continue
                elif step > self._last_logged_step:  # a resumed run rewrites the steps it keeps
                    self.step, self.loss, self._last_logged_step = step, loss, step
                    self.log(f"step {step}/{self.total} loss {loss:.5g}")

    def _event(self, record: dict, step: int) -> None:
        """An event line of ``metrics.jsonl``, logged once even if a resumed run's rewrite
        shows it again: ``start`` sets the total from its ``max_steps`` (which the data
        decides under ``epochs``) and logs its ``data`` and ``message``; ``samples`` logs the
        validation render. Others (``diverged``: the run's error says it) log nothing."""
        event = record["event"]
        if not isinstance(event, str) or (event, step) in self._events_seen:
            return
        self._events_seen.add((event, step))
        if event == "start":
            total = record.get("max_steps")
            if isinstance(total, int) and not isinstance(total, bool) and 0 < total <= PROGRESS_MAX:
                self.total = total
            for key, line in (("data", DATA_LINE), ("message", "{message}")):
                if isinstance(record.get(key), str):
                    self.log(line.format(**{key: record[key][:EVENT_TEXT_MAX]}))
        elif event == "samples":
            self.log(SAMPLES_LINE.format(step=step))

    def beat(self) -> None:
        self.catch_up()
        with self._lock:
            tail = "\n".join(self.lines)
        Job.objects.filter(pk=self.job_id).update(
            heartbeat_at=Now(), progress_step=self.step, progress_total=self.total, log_tail=tail
        )
        self._read_flags()

    def beat_safely(self) -> bool:
        """:meth:`beat`, logging a failure instead of raising it; whether it worked."""
        try:
            self.beat()
        except Exception:  # a heartbeat must outlive any one failure; the next beat tries again
            logger.exception("job %s: heartbeat failed; next try in %s s", self.job_id, self.interval)
            _recover_connection()
            return False
        return True


def job_claim(job_id: int, worker: str) -> Job | None:
    """Move the job from queued to running; ``None`` if another delivery got there first."""
    claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, started_at=Now(), heartbeat_at=Now(), worker=worker
    )
    return Job.objects.get(pk=job_id) if claimed else None


def job_run(job_id: int, worker: str = "") -> str:
    """Run the job if this delivery claims it; returns the state it ended in (or "skipped")."""
    from evalhub.catalog.image_import_stream import ImportStopped
    from evalhub.jobs.export_jobs import judgments_export_run
    from evalhub.jobs.import_jobs import image_import_run

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
        elif job.kind == Job.Kind.IMPORT:
            image_import_run(job, monitor)
        elif job.kind == Job.Kind.EXPORT:
            judgments_export_run(job, monitor)
        else:
            _run_generation(job, monitor)
        monitor.log("done")
    except (RunCancelled, ImportStopped) as exc:
        state = Job.State.CANCELLED
        monitor.log(f"cancelled: {exc}")
    except JobNotRunning as exc:
        state = Job.State.FAILED  # already: the job is not running, so nothing more is recorded
        monitor.log(str(exc))
    except SoftTimeLimitExceeded:
        state, error = Job.State.FAILED, TIME_LIMIT_REACHED.format(limit=settings.EVALHUB_JOB_TIME_LIMIT)
        monitor.log(f"failed: {error}")
    except Exception as exc:  # any failure ends the job, with its reason visible
        state, error = Job.State.FAILED, f"{type(exc).__name__}: {exc}"
        for line in traceback.format_exc().splitlines()[-12:]:
            monitor.log(line)
        monitor.log(f"failed: {error}")
    finally:
        monitor.stop()
    if not job_end(job_id, state=state, error=error):  # ended elsewhere: the reaper failed it
        state = Job.objects.filter(pk=job_id).values_list("state", flat=True).first() or state
    return state


def job_end(job_id: int, *, state: str, error: str = "") -> bool:
    """Record the job's end if it is still running; whether it was. A database error is
    retried for a while: the run's work is done and its outcome must not be lost to a
    passing lock or a dropped connection (the reaper fails the job if all tries fail)."""
    for pause in (*END_WRITE_PAUSES, None):
        try:
            return bool(
                Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(
                    state=state, error=error, finished_at=Now()
                )
            )
        except DatabaseError:
            if pause is None:
                raise
            logger.warning("job %s: could not record its end; next try in %s s", job_id, pause, exc_info=True)
            _recover_connection()
            time.sleep(pause)
    raise AssertionError("unreachable")


def _run_training(job: Job, monitor: JobMonitor) -> None:
    # training/ imports torch: it loads in the worker that runs a job, never in the web.
    from training.checkpoints import ResumeMismatch
    from training.config import TrainConfig, resolved
    from training.pipelines import pipeline_family
    from training.trainer import train

    folder = job_folder(job)
    base = job.model_version
    options = job.config["options"]
    prompt_file = None
    if job.source_study is not None:
        export = preference_pairs_export(study=job.source_study, folder=folder / "data")
        data = export.folder
        monitor.log(
            f"exported {export.pairs} pairs of study {job.source_study.name!r} ({export.content_hash[:12]})"
        )
        prompt_file = str(validation_prompts_write(job, count=options.get("validation_prompts")))
    else:
        # A set's name, checked again here: the worker reads nothing outside the sets' folder.
        # Its validation renders draw the data's first captions (the trainer's default).
        data = sft_data_folder(job.config["sft_data"], fetch=True)
    run = run_folder(job)
    earlier = _resume_point(job)
    if earlier is not None:
        _carry_over(run_folder(earlier[0]), run)
        monitor.log(CONTINUING.format(job=earlier[0].pk, checkpoint=earlier[1].name))
    config = TrainConfig(
        model=weights_local(base.weights_uri),
        data=str(data),
        output_dir=str(run),
        validation_prompt_file=prompt_file,
        resume=str(earlier[1]) if earlier is not None else None,
        **options,
    )
    full = resolved(config, pipeline_family(config.model))
    job.config = {**job.config, "train_config": full.to_dict()}
    job.save(update_fields=["config"])
    monitor.metrics_path = run / METRICS_FILE
    # Under epochs the steps are unknown until the run's start line (JobMonitor._event).
    monitor.set_progress(0, full.max_steps or 0)
    length = f"{full.max_steps} steps" if full.max_steps else f"epochs {full.epochs}"
    monitor.log(
        TRAINING_LINE.format(method=full.method, loss_space=full.loss_space, base=base.name, length=length)
    )
    uploader = RunUploader(job, run)
    uploader.start()
    try:
        try:
            result = train(config, should_stop=monitor.cancel_requested)
        except ResumeMismatch as exc:  # the study has new judgments since, or other settings
            monitor.log(NOT_CONTINUING.format(job=earlier[0].pk, reason=exc))
            shutil.rmtree(run)
            monitor.restart_metrics()
            result = train(replace(config, resume=None), should_stop=monitor.cancel_requested)
    finally:
        uploader.stop()  # also after a cancel or a failure: its checkpoint is what a retry needs
    monitor.catch_up()  # the last step's line, before the closing lines of the log
    version = version_register(job, result, monitor)
    monitor.log(f"registered model version {version.name}")


def _resume_point(job: Job) -> tuple[Job, Path] | None:
    """The newest checkpoint of the run a retry repeats: its ``retry_of``'s, or, where that
    one left none, the job it retried in turn. A cancelled run leaves one at the step it
    stopped; a run whose worker died, its last ``checkpoint_every`` one."""
    for earlier in job.earlier_runs():
        found = run_fetch(earlier, run_folder(earlier))
        if found is not None:
            return earlier, found
    return None


def _carry_over(source: Path, run: Path) -> None:
    """The earlier run's ``metrics.jsonl`` and validation samples into this job's run folder:
    the trainer keeps the lines up to the checkpoint (and rewrites the rest), so the job's
    curve and grid start at step 1, not at the checkpoint."""
    run.mkdir(parents=True, exist_ok=True)
    if (source / METRICS_FILE).is_file():
        shutil.copyfile(source / METRICS_FILE, run / METRICS_FILE)
    if (source / SAMPLES_DIR).is_dir():
        shutil.copytree(source / SAMPLES_DIR, run / SAMPLES_DIR, dirs_exist_ok=True)


def validation_prompts_write(job: Job, *, count: int | None = None) -> Path:
    """The prompts of a preference job's validation renders: the first ``count`` prompts
    (by id) of its study's prompt set, one per line, in ``validation_prompts.txt`` of the
    job's folder (a line break inside a prompt becomes a space).

    Args:
        job: a training job with a source study.
        count: how many; ``None`` is the option's default.

    Returns:
        The file's path, for ``TrainConfig.validation_prompt_file``.
    """
    count = count or TRAINING_OPTIONS["validation_prompts"].default
    texts = job.source_study.prompt_set.prompts.order_by("pk").values_list("text", flat=True)[:count]
    path = job_folder(job) / VALIDATION_PROMPTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(text.splitlines()) + "\n" for text in texts), encoding="utf-8")
    return path


def version_register(job: Job, result, monitor: JobMonitor) -> ModelVersion:
    """Register the trained weights of ``job`` (a ``training.trainer.TrainResult``) as a new
    model version, child of the job's base version.

    Only while the job is still running: the conditional update that moves its heartbeat
    locks the row (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` holds the whole file) until the
    version is in, and the reaper, whose update requires a stale heartbeat, then matches
    nothing. The chosen name, if another version took it meanwhile, gives way to a free one.
    """
    base = job.model_version
    wanted = job.config.get("version_name") or f"{base.name}-{result.config.method}-job{job.pk}"
    weights = str(result.final_model)
    if not is_local(artifacts_storage()):  # before the transaction: an upload takes a while
        weights = weights_upload(result.final_model)
        monitor.log(f"uploaded the trained weights to {weights}")
    with transaction.atomic():
        if not Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(heartbeat_at=Now()):
            state = Job.objects.filter(pk=job.pk).values_list("state", flat=True).first()
            raise JobNotRunning(NOT_REGISTERED.format(folder=result.final_model, state=state))
        version = _version_create(
            wanted,
            kind=result.config.method,
            parent=base,
            weights_uri=weights,
            description=f"Trained by job #{job.pk}"
            + (f" on the preferences of study {job.source_study.name!r}" if job.source_study else ""),
            training_config=result.config.to_dict(),
            training_data_hash=result.data_hash,
            final_metrics=result.metrics,
        )
        Job.objects.filter(pk=job.pk).update(
            produced_version=version,
            data_hash=result.data_hash,
            result={"final_model": weights, "steps": result.steps, "metrics": result.metrics},
        )
    if version.name != wanted:
        monitor.log(NAME_TAKEN_AT_REGISTRATION.format(wanted=wanted, name=version.name))
    return version


def _version_create(wanted: str, **fields) -> ModelVersion:
    """A new version named ``wanted``, or ``wanted (2)``… where that is taken — also by a
    registration that commits between the look-up and the insert."""

    for attempt in range(3):
        name = free_name(wanted, ModelVersion.objects.all())
        try:
            with transaction.atomic():
                return ModelVersion.objects.create(name=name, **fields)
        except IntegrityError:  # the name, the only unique field, was just taken
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _run_generation(job: Job, monitor: JobMonitor) -> None:
    from training.generate import generate
    from training.generate_config import GenerateConfig

    folder = job_folder(job)
    folder.mkdir(parents=True, exist_ok=True)
    prompts = folder / "prompts.jsonl"
    texts = job.prompt_set.prompts.order_by("pk").values_list("text", flat=True)
    prompts.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    version, options = job.model_version, job.config
    config = GenerateConfig(
        model=weights_local(version.weights_uri),
        prompts=str(prompts),
        output_dir=str(folder / "images"),
        model_name=version.name,
        **{name: options[name] for name in GENERATION_OPTIONS},
    )
    monitor.log(f"generating {job.progress_total} images with {version.name}")
    manifest = generate(config, on_progress=monitor.set_progress, should_stop=monitor.cancel_requested)
    imported = generated_images_import(
        prompt_set=job.prompt_set, manifest=_manifest_text(manifest), source=DirectorySource(manifest.parent)
    )
    monitor.log(f"imported {imported.created} images ({imported.skipped} already there)")
    result = {"manifest": str(manifest), "imported": imported.created, "skipped": imported.skipped}
    if options.get("compare_after"):
        studies = comparison_create(
            user=job.created_by,
            version=version,
            prompt_set=job.prompt_set,
            display_size=options.get("display_size", ""),
        )
        result["studies"] = [s.pk for s in studies]
        monitor.log("created studies: " + "; ".join(s.name for s in studies))
    Job.objects.filter(pk=job.pk).update(result=result)


def _manifest_text(path: Path) -> str:
    """The generation's manifest, read within the import's text-file limit like any other."""
    with path.open("rb") as handle:
        return read_text_file(handle, path.name)
