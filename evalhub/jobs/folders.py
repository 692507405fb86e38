"""Where a job's files live (its export, checkpoints, trained model, metrics and log), and
the SFT data sets a training job may name.

An SFT data set is a folder under ``sft-data/`` of the artifacts storage
(``$EVALHUB_JOBS_DIR/sft-data/`` on one machine; the bucket's ``jobs/sft-data/`` with object
storage) holding ``metadata.jsonl`` and its images (training.data's imagefolder layout), put
there by whoever runs the deployment; a researcher names it by its folder's name, never by
a path. So a launch never touches a path a researcher wrote, and the worker trains only on
data inside that folder (with object storage, its own copy of it).
"""

import re
import shutil
from pathlib import Path

from django.conf import settings

from evalhub.jobs.errors import UNKNOWN_SFT_DATA, JobRejected
from evalhub.jobs.models import Job
from evalhub.storage import artifacts_storage, is_local, key, tree_get

SFT_DATA_DIR = "sft-data"
SFT_DATA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # no separator, no leading dot
SFT_DATA_NAME_MAX = 100


RUN_DIR = "run"  # under a job's folder: the trainer's output_dir


def job_folder(job: Job) -> Path:
    return Path(settings.EVALHUB_JOBS_DIR) / str(job.pk)


def run_folder(job: Job) -> Path:
    """Where a training job's run writes, on this worker (its key in the artifacts storage
    is the same path under the job's id: evalhub.jobs.run_sync.run_key)."""
    return job_folder(job) / RUN_DIR


def sft_data_root() -> Path:
    return Path(settings.EVALHUB_JOBS_DIR) / SFT_DATA_DIR


def sft_data_names() -> list[str]:
    """The SFT data sets, by name: the folders directly under :func:`sft_data_root` that hold a
    ``metadata.jsonl`` and lie inside it (a link out of it is not one); with object storage,
    the stored folders under ``sft-data/`` that hold one."""
    storage = artifacts_storage()
    if not is_local(storage):
        try:
            folders, _ = storage.listdir(SFT_DATA_DIR)
        except FileNotFoundError:
            return []
        return sorted(
            name
            for name in folders
            if SFT_DATA_NAME.fullmatch(name) and storage.exists(key(SFT_DATA_DIR, name, "metadata.jsonl"))
        )
    root = sft_data_root()
    if not root.is_dir():
        return []
    inside = root.resolve()
    return sorted(
        entry.name
        for entry in root.iterdir()
        if SFT_DATA_NAME.fullmatch(entry.name)
        and entry.resolve().is_relative_to(inside)
        and entry.resolve() != inside
        and (entry / "metadata.jsonl").is_file()
    )


def sft_data_folder(name: str, *, fetch: bool = False) -> Path:
    """The folder of the SFT data set ``name``, one of :func:`sft_data_names`; with object
    storage and ``fetch`` (a worker about to train on it), a fresh copy of the stored set.

    Raises:
        JobRejected: ``name`` is not the name of a set (a path, an unknown or a removed
            set); the message lists the sets, and reads the same whatever ``name`` points
            at, so it tells nothing about the server's files.
    """
    names = sft_data_names()
    if not isinstance(name, str) or name not in names:
        raise JobRejected(
            UNKNOWN_SFT_DATA.format(
                name=str(name)[:SFT_DATA_NAME_MAX], folder=SFT_DATA_DIR, names=", ".join(names) or "none yet"
            )
        )
    folder = sft_data_root() / name
    storage = artifacts_storage()
    if fetch and not is_local(storage):
        shutil.rmtree(folder, ignore_errors=True)  # an older copy may hold files since removed
        tree_get(storage, key(SFT_DATA_DIR, name), folder)
    return folder
