"""A training run's files between a worker's scratch folder and the artifacts storage.

A worker trains in its own ``EVALHUB_JOBS_DIR/<job>/run``. Where the artifacts storage is
elsewhere (object storage), :class:`RunUploader` copies there, every
``EVALHUB_JOB_UPLOAD_SECONDS`` and once more at the end, what the web pages and a later
worker read: ``metrics.jsonl`` (the curve), the validation samples, and each complete
checkpoint (its ``training_state.json`` last, so a stored checkpoint with that file is
whole; the ones the trainer pruned are removed from the storage too). A retry on another
worker then fetches the newest stored checkpoint with :func:`run_fetch` and continues.

On one machine the storage *is* the jobs folder: nothing is copied and nothing fetched.
"""

import logging
import threading
from pathlib import Path

from django.conf import settings

from evalhub.jobs.folders import RUN_DIR
from evalhub.jobs.models import Job
from evalhub.storage import (
    artifacts_storage,
    file_get,
    file_put,
    is_local,
    key,
    tree_delete,
    tree_get,
    tree_put,
)
from training.checkpoints import STATE_FILE, checkpoint_step
from training.run_files import METRICS_FILE, SAMPLES_DIR

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"


def run_key(job: Job | int, *parts: str) -> str:
    """The storage name of a file of ``job``'s run folder."""
    return key(getattr(job, "pk", job), RUN_DIR, *parts)


def stored_checkpoints(job: Job | int) -> list[str]:
    """The complete checkpoints of ``job`` in the storage (their folder names, oldest first):
    those whose ``training_state.json``, uploaded last, is there."""
    storage = artifacts_storage()
    try:
        folders, _ = storage.listdir(run_key(job, CHECKPOINTS))
    except FileNotFoundError:
        return []
    complete = [
        name
        for name in folders
        if checkpoint_step(name) is not None and storage.exists(run_key(job, CHECKPOINTS, name, STATE_FILE))
    ]
    return sorted(complete, key=checkpoint_step)


def run_fetch(job: Job, run: Path) -> Path | None:
    """Bring ``job``'s newest stored checkpoint, its metrics and its samples into ``run``
    (that job's run folder on this worker); the checkpoint's local folder, or ``None`` where
    the storage holds no complete one. On one machine, the checkpoint already there."""
    from training.checkpoints import checkpoints_in

    storage = artifacts_storage()
    if is_local(storage):
        found = checkpoints_in(run)
        return found[-1] if found else None
    names = stored_checkpoints(job)
    if not names:
        return None
    checkpoint = run / CHECKPOINTS / names[-1]
    tree_get(storage, run_key(job, CHECKPOINTS, names[-1]), checkpoint)
    if storage.exists(run_key(job, METRICS_FILE)):
        file_get(storage, run_key(job, METRICS_FILE), run / METRICS_FILE)
    tree_get(storage, run_key(job, SAMPLES_DIR), run / SAMPLES_DIR)
    return checkpoint


class RunUploader:
    """Copies a running training's new files to the artifacts storage from a thread of its
    own (a checkpoint of gigabytes must not hold up the heartbeat); does nothing on one
    machine. A failed copy is logged and tried again at the next round."""

    def __init__(self, job: Job, run: Path, interval: float | None = None):
        self.job_id, self.run = job.pk, run
        self.storage = artifacts_storage()
        self.active = not is_local(self.storage)
        self.interval = interval or settings.EVALHUB_JOB_UPLOAD_SECONDS
        self._metrics_seen: tuple[int, int] | None = None  # (size, mtime_ns) last uploaded
        self._samples_done: set[str] = set()
        self._checkpoints_done: set[str] = set()
        self._round = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"job-{job.pk}-upload", daemon=True)

    def start(self) -> None:
        if self.active:
            self._thread.start()

    def stop(self) -> None:
        """End the thread and copy what is left (the last steps, the newest checkpoint). A
        failure is logged, not raised: it must not replace the run's own outcome (the
        trained weights' upload, which registration needs, raises on its own)."""
        if not self.active:
            return
        self._stop.set()
        self._thread.join()
        try:
            self.upload()
        except Exception:
            logger.exception("job %s: the last upload of the run's files failed", self.job_id)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.upload()
            except Exception:  # the storage may be unreachable for a while; the next round retries
                logger.exception(
                    "job %s: uploading the run's files failed; next try in %s s", self.job_id, self.interval
                )

    def upload(self) -> None:
        """One round: the metrics if they changed, new samples, new complete checkpoints."""
        with self._round:
            self._upload_metrics()
            self._upload_samples()
            self._upload_checkpoints()

    def _upload_metrics(self) -> None:
        path = self.run / METRICS_FILE
        try:
            seen = (path.stat().st_size, path.stat().st_mtime_ns)
        except FileNotFoundError:
            return
        if seen != self._metrics_seen:
            file_put(self.storage, run_key(self.job_id, METRICS_FILE), path)
            self._metrics_seen = seen

    def _upload_samples(self) -> None:
        root = self.run / SAMPLES_DIR
        if not root.is_dir():
            return
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(self.run).as_posix()
            if relative not in self._samples_done:
                file_put(self.storage, run_key(self.job_id, relative), path)
                self._samples_done.add(relative)

    def _upload_checkpoints(self) -> None:
        from training.checkpoints import checkpoints_in

        local = checkpoints_in(self.run)
        for folder in local[-1:]:  # only the newest: older ones are superseded
            if folder.name in self._checkpoints_done:
                continue
            try:
                tree_put(
                    self.storage, folder, run_key(self.job_id, CHECKPOINTS, folder.name), last=(STATE_FILE,)
                )
            except FileNotFoundError:  # the trainer pruned it meanwhile; a newer one is there
                continue
            self._checkpoints_done.add(folder.name)
            logger.info("job %s: uploaded checkpoint %s", self.job_id, folder.name)
        kept = {folder.name for folder in local}
        for name in stored_checkpoints(self.job_id) if kept else ():
            if name not in kept:  # pruned by the trainer (checkpoints_keep)
                tree_delete(self.storage, run_key(self.job_id, CHECKPOINTS, name))
                self._checkpoints_done.discard(name)
