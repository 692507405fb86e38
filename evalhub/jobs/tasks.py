"""Celery tasks: thin wrappers around :mod:`evalhub.jobs.runner` and the reaper.

``run_job`` is routed to the ``gpu`` queue (settings ``CELERY_TASK_ROUTES``) and
acknowledged late, so a message survives a worker crash; the runner's claim makes a
second delivery a no-op. The worker's ``EVALHUB_JOB_TIME_LIMIT`` bounds one run (jobs are
published without limits of their own): at the limit the job fails with that reason, and
a run that ignores it is killed a little later (the prefork pool enforces both;
``--pool=solo`` enforces none). ``reap_stale_jobs`` runs on the
``celery beat`` schedule of settings ``CELERY_BEAT_SCHEDULE``.
"""

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from evalhub.jobs import runner
from evalhub.jobs.reaper import jobs_reap_stale

HARD_LIMIT_GRACE = 120  # seconds between the job's time limit and killing its process


@shared_task(
    name="evalhub.jobs.tasks.run_job",
    bind=True,
    acks_late=True,
    ignore_result=True,  # the job's row is its result; and no result store to reach when queueing
    soft_time_limit=settings.EVALHUB_JOB_TIME_LIMIT,
    time_limit=settings.EVALHUB_JOB_TIME_LIMIT + HARD_LIMIT_GRACE,
)
def run_job(self, job_id: int) -> str:
    return runner.job_run(job_id, worker=self.request.hostname or "")


@shared_task(name="evalhub.jobs.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    """Fail running jobs whose worker went silent, on the beat schedule (every half timeout)."""
    return jobs_reap_stale()


@worker_ready.connect
def _reap_on_start(**_):
    jobs_reap_stale()
