"""Failing the jobs whose worker died: the reaper that celery beat runs (``reap_stale_jobs``)
and each worker runs as it starts; with ``EVALHUB_JOB_AUTO_RETRIES``, queueing them again."""

import logging
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.db.models.functions import Now

from evalhub.jobs import services
from evalhub.jobs.errors import JobRejected
from evalhub.jobs.models import Job

logger = logging.getLogger(__name__)

WORKER_SILENT = (
    "worker {worker} stopped reporting: no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC "
    "(timeout {timeout} s); it probably died mid-job"
)


def jobs_reap_stale() -> int:
    """Mark running jobs whose worker stopped reporting as failed; returns how many.

    Heartbeats are written and judged by the database's clock (``Now()``), so a worker's
    or a web server's clock that is off decides nothing. Cheap (one indexed query), so the
    ``reap_stale_jobs`` task runs it on the ``celery beat`` schedule, and each worker runs it
    when it starts; pages and the API only read (a read never writes).
    """
    timeout = settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT
    stale = Job.objects.filter(state=Job.State.RUNNING, heartbeat_at__lt=Now() - timedelta(seconds=timeout))
    reaped = 0
    for job in stale.only("pk", "heartbeat_at", "worker"):
        reason = WORKER_SILENT.format(worker=job.worker or "?", since=job.heartbeat_at, timeout=timeout)
        # Still running and still stale when written: a beat that came in meanwhile wins.
        if stale.filter(pk=job.pk).update(state=Job.State.FAILED, finished_at=Now(), error=reason):
            reaped += 1
            _retry_automatically(job.pk)
    return reaped


def _retry_automatically(job_id: int) -> Job | None:
    """Queue a retry of the reaped job (on any worker; a training continues from its last
    checkpoint) unless it already is the ``EVALHUB_JOB_AUTO_RETRIES``-th retry in a row;
    the retry, or None. A retry the launch checks refuse (its version name taken since) is
    logged and left to the researcher."""
    job = Job.objects.select_related("created_by").get(pk=job_id)
    limit = settings.EVALHUB_JOB_AUTO_RETRIES
    if sum(1 for _ in islice(job.earlier_runs(), limit)) >= limit:
        return None
    try:
        return services.job_retry(job, user=job.created_by)
    except JobRejected as exc:
        logger.warning("job %s: not retried automatically: %s", job.pk, exc)
        return None
