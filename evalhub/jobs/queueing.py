"""Sending a job to the workers: its ``run_job`` message, published once the transaction
that created the job commits.

The message goes by the task's name (``app.send_task``), so that what queues jobs
(services, and the reaper's automatic retries) does not import the tasks module, which
imports the reaper. Training and generation go where the task is routed
(``CELERY_TASK_ROUTES``: the ``gpu`` queue); imports and exports need no GPU and go to the
``cpu`` queue, so a large import never waits behind a training run, and GPU machines are
not asked to unzip archives.
"""

import logging

from django.db import transaction
from django.db.models.functions import Now

from evalhub.celery import app
from evalhub.jobs.errors import BROKER_UNREACHABLE
from evalhub.jobs.models import Job

RUN_JOB = "evalhub.jobs.tasks.run_job"
CPU_QUEUE = "cpu"
CPU_KINDS = (Job.Kind.IMPORT, Job.Kind.EXPORT)

logger = logging.getLogger(__name__)


def job_enqueue(job: Job) -> Job:
    """Send ``job`` to the workers once the transaction that created it commits."""
    transaction.on_commit(lambda: _publish(job))
    return job


def _publish(job: Job) -> None:
    """Publish the job's ``run_job`` message; if the broker refuses it, the job fails at once
    with the broker's error (and can be retried) instead of staying queued forever."""
    try:
        # No time limits in the message: the worker applies its own EVALHUB_JOB_TIME_LIMIT.
        app.send_task(RUN_JOB, (job.pk,), time_limit=None, soft_time_limit=None, **job_route(job))
    except Exception as exc:  # kombu's OperationalError, or the transport's own connection error
        logger.exception("could not queue job #%s", job.pk)
        Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
            state=Job.State.FAILED, error=BROKER_UNREACHABLE.format(error=exc), finished_at=Now()
        )
        job.refresh_from_db()


def job_route(job: Job) -> dict:
    """Where ``job``'s message goes: the ``cpu`` queue for an import or an export; for the
    rest, nothing here, so ``CELERY_TASK_ROUTES`` routes it (the ``gpu`` queue)."""
    return {"queue": CPU_QUEUE} if job.kind in CPU_KINDS else {}
