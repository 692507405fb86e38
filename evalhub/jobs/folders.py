"""Where a job's files live: its export, checkpoints, trained model, metrics and log."""

from pathlib import Path

from django.conf import settings

from evalhub.jobs.models import Job


def job_folder(job: Job) -> Path:
    return Path(settings.EVALHUB_JOBS_DIR) / str(job.pk)
