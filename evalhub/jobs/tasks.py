"""Celery tasks: thin wrappers around :mod:`evalhub.jobs.runner`.

``run_job`` is routed to the ``gpu`` queue (settings ``CELERY_TASK_ROUTES``) and
acknowledged late, so a message survives a worker crash; the runner's claim makes a
second delivery a no-op.
"""

from celery import shared_task
from celery.signals import worker_ready

from evalhub.jobs import runner
from evalhub.jobs.services import jobs_reap_stale


@shared_task(name="evalhub.jobs.tasks.run_job", bind=True, acks_late=True)
def run_job(self, job_id: int) -> str:
    return runner.job_run(job_id, worker=self.request.hostname or "")


@shared_task(name="evalhub.jobs.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    """For ``celery beat`` deployments; pages and the API also reap before showing jobs."""
    return jobs_reap_stale()


@worker_ready.connect
def _reap_on_start(**_):
    jobs_reap_stale()
