"""Reads for the jobs pages and API.

A run's curve and samples are read through the artifacts storage (evalhub.storage): the
worker's own folder on one machine, the copies its worker uploads with object storage.
"""

import json
import re
import struct

from django.db.models import Count
from django.urls import reverse

from evalhub.catalog.models import GeneratedImage, ModelVersion
from evalhub.jobs.job_options import TRAINING_OPTIONS
from evalhub.jobs.metrics import metrics_parse
from evalhub.jobs.models import Job
from evalhub.jobs.run_sync import run_key
from evalhub.storage import artifacts_storage, open_if_stored
from training.options import MAX_STEPS, MAX_VALIDATION_PROMPTS
from training.run_files import (
    METRICS_FILE,
    SAMPLE_PROMPTS_FILE,
    SAMPLES_DIR,
    sample_image_name,
    sample_step_dir,
)

CHART_SERIES = ("loss", "latent_loss", "pixel_loss")  # the loss chart's lines, in legend order
# The preference chart's lines, by loss term: the model's (and DPO's reference's) mean
# error on winners and losers; it shows the first term of the loss (latent if it has one).
ERROR_SERIES = {
    part: (f"model_err_w_{part}", f"model_err_l_{part}", f"ref_err_w_{part}", f"ref_err_l_{part}")
    for part in ("latent", "pixel")
}
METRIC_FIELDS = (
    "step", *CHART_SERIES, *ERROR_SERIES["latent"], *ERROR_SERIES["pixel"], "implicit_acc",
    "reward_margin", "lr",
)  # fmt: skip
MAX_POINTS = 2000

# What training.run_files names; a listed name counts only if it is exactly that name.
SAMPLE_STEP = re.compile(r"step-(\d{6,7})")
SAMPLE_IMAGE = re.compile(r"(\d{2})\.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
        for record in metrics_parse(_stored_bytes(run_key(job, METRICS_FILE)) or b"")
        if "loss" in record
    ]
    stride = max(1, -(-len(points) // MAX_POINTS))
    return points[::stride] if stride > 1 else points


def error_chart_series(job: Job) -> tuple[str, ...]:
    """The preference chart's lines for ``job``: the winner and loser errors of its loss's
    first term; none for SFT (no pairs) or a generation."""
    if job.kind != Job.Kind.TRAINING:
        return ()
    options = job.config.get("train_config") or job.config.get("options") or {}
    method = options.get("method") or TRAINING_OPTIONS["method"].default
    loss_space = options.get("loss_space") or TRAINING_OPTIONS["loss_space"].default
    if method == "sft":
        return ()
    return ERROR_SERIES["latent" if "latent" in loss_space else "pixel"]


def _stored_bytes(name: str, limit: int = -1) -> bytes | None:
    """The stored file's bytes (its first ``limit``), ``None`` where there is none."""
    handle = open_if_stored(artifacts_storage(), name)
    if handle is None:
        return None
    with handle:
        return handle.read(limit)


def sample_name(job: Job, step: int, index: int) -> str | None:
    """The storage name of the validation image of prompt ``index`` rendered at ``step``;
    ``None`` for numbers no run writes."""
    if not (0 <= step <= MAX_STEPS and 0 <= index < MAX_VALIDATION_PROMPTS):
        return None
    return run_key(job, SAMPLES_DIR, sample_step_dir(step), sample_image_name(index))


def job_samples(job: Job) -> dict | None:
    """The validation renders of a training job, from its run folder: the prompts (the
    trainer's ``samples/prompts.json``; where it is missing or unreadable, none) and, newest
    first, each rendered step with the images there (the prompt's index, the image's URL).
    ``None`` for a generation or a run that rendered nothing yet."""
    if job.kind != Job.Kind.TRAINING:
        return None
    storage, root = artifacts_storage(), run_key(job, SAMPLES_DIR)
    try:
        folders, _ = storage.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return None
    steps = []
    for folder in folders:
        match = SAMPLE_STEP.fullmatch(folder)
        if not match or folder != sample_step_dir(int(match.group(1))):
            continue
        indexes = sorted(
            int(m.group(1))
            for m in map(SAMPLE_IMAGE.fullmatch, storage.listdir(f"{root}/{folder}")[1])
            if m and int(m.group(1)) < MAX_VALIDATION_PROMPTS
        )
        if indexes:
            step = int(match.group(1))
            images = [
                {"index": i, "url": reverse("jobs:job_sample", args=(job.pk, step, i))} for i in indexes
            ]
            steps.append({"step": step, "images": images})
    if not steps:
        return None
    steps.sort(key=lambda row: -row["step"])
    first = sample_name(job, steps[0]["step"], steps[0]["images"][0]["index"])
    width, height = _png_size(_stored_bytes(first, 24) or b"") or (None, None)
    prompts = _sample_prompts(_stored_bytes(f"{root}/{SAMPLE_PROMPTS_FILE}") or b"")
    return {"prompts": prompts, "width": width, "height": height, "steps": steps}


def sample_grid(samples: dict | None) -> dict | None:
    """:func:`job_samples` as a table: a column per prompt (headed by its text, or "Prompt
    n" where ``prompts.json`` does not say), a row per step, each cell an image's URL and
    alt text (no URL where that image is not there), and a signature of what it shows.
    job.js builds the same table, and the same signature, from the API."""
    if samples is None:
        return None
    prompts = samples["prompts"]
    width = max(len(prompts), *(image["index"] + 1 for row in samples["steps"] for image in row["images"]))
    columns = [*prompts, *(f"Prompt {i + 1}" for i in range(len(prompts), width))]
    rows = []
    for row in samples["steps"]:
        urls = {image["index"]: image["url"] for image in row["images"]}
        cells = [
            {"url": urls.get(i, ""), "alt": f"Validation sample at step {row['step']}: {columns[i]}"}
            for i in range(width)
        ]
        rows.append({"step": row["step"], "cells": cells})
    signature = ";".join(
        f"{row['step']}:" + ",".join(str(image["index"]) for image in row["images"])
        for row in samples["steps"]
    )
    return {
        "columns": columns,
        "rows": rows,
        "width": samples["width"],
        "height": samples["height"],
        "signature": f"{signature}|{len(prompts)}",
    }


def _png_size(head: bytes) -> tuple[int, int] | None:
    """A PNG's width and height, from its first 24 bytes; ``None`` if it is not (yet) a PNG."""
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _sample_prompts(data: bytes) -> list[str]:
    """The prompts of ``prompts.json``'s bytes (``{"prompts": [...], ...}``); none if it is
    not there yet or does not hold a list of texts."""
    try:
        prompts = json.loads(data.decode("utf-8")).get("prompts")
    except (ValueError, AttributeError):
        return []
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        return []
    return prompts[:MAX_VALIDATION_PROMPTS]


def image_sizes(model: ModelVersion, limit: int = 3) -> list[str]:
    """The sizes of ``model``'s images, most common first (``"256×256"``)."""
    rows = (
        GeneratedImage.objects.filter(model_version=model)
        .values("width", "height")
        .annotate(n=Count("pk"))
        .order_by("-n", "width", "height")[:limit]
    )
    return [f"{row['width']}×{row['height']}" for row in rows]
