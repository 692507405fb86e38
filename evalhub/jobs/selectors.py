"""Reads for the jobs pages and API."""

from evalhub.jobs.metrics import metrics_read
from evalhub.jobs.models import Job
from evalhub.jobs.runner import job_folder

METRIC_FIELDS = ("step", "loss", "latent_loss", "pixel_loss", "implicit_acc", "lr")
MAX_POINTS = 2000


def jobs_recent(limit: int = 200):
    return Job.objects.select_related(
        "model_version", "produced_version", "prompt_set", "source_study", "created_by"
    )[:limit]


def job_metrics(job: Job) -> list[dict]:
    """The loss curve of a training job, from the trainer's ``metrics.jsonl`` (thinned to
    at most ``MAX_POINTS`` points for long runs). A line the trainer is still writing is
    left out until it is complete."""
    if job.kind != Job.Kind.TRAINING:
        return []
    points = [
        {k: record[k] for k in METRIC_FIELDS if k in record}
        for record in metrics_read(job_folder(job) / "run" / "metrics.jsonl")
        if "loss" in record
    ]
    stride = max(1, -(-len(points) // MAX_POINTS))
    return points[::stride] if stride > 1 else points
