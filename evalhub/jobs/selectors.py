"""Reads for the jobs pages and API."""

from django.db.models import Count

from evalhub.catalog.models import GeneratedImage, ModelVersion
from evalhub.jobs.folders import job_folder
from evalhub.jobs.metrics import metrics_read
from evalhub.jobs.models import Job

METRIC_FIELDS = ("step", "loss", "latent_loss", "pixel_loss", "implicit_acc", "lr")
CHART_SERIES = ("loss", "latent_loss", "pixel_loss")  # the loss chart's lines, in legend order
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


def image_sizes(model: ModelVersion, limit: int = 3) -> list[str]:
    """The sizes of ``model``'s images, most common first (``"256×256"``)."""
    rows = (
        GeneratedImage.objects.filter(model_version=model)
        .values("width", "height")
        .annotate(n=Count("pk"))
        .order_by("-n", "width", "height")[:limit]
    )
    return [f"{row['width']}×{row['height']}" for row in rows]
