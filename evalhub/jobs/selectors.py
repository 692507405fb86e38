"""Reads for the jobs pages and API."""

import json

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
    at most ``MAX_POINTS`` points for long runs)."""
    if job.kind != Job.Kind.TRAINING:
        return []
    path = job_folder(job) / "run" / "metrics.jsonl"
    if not path.is_file():
        return []
    points = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            points.append({k: record[k] for k in METRIC_FIELDS if k in record})
    stride = max(1, -(-len(points) // MAX_POINTS))
    return points[::stride] if stride > 1 else points
