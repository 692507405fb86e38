"""Launching, cancelling and retrying jobs; the checks that run before anything is queued.

Forms and the API both call these; a :class:`JobRejected` carries the message they show.
A job is queued with ``transaction.on_commit``, so a worker never receives the id of a
row it cannot read yet.
"""

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotate.models import Study
from evalhub.catalog.models import GeneratedImage, ModelVersion, PromptSet
from evalhub.jobs.models import Job

TRAINING_OPTIONS = (
    "method",
    "loss_space",
    "pixel_weight",
    "beta",
    "max_steps",
    "batch_size",
    "learning_rate",
    "mixed_precision",
    "lora_rank",
    "seed",
)
GENERATION_DEFAULTS = {"images_per_prompt": 5, "steps": 50, "guidance": None, "seed": 0}


class JobRejected(ValueError):
    pass


def _weights_folder(version: ModelVersion) -> str:
    from training.models import ModelLoadError, pipeline_family

    if not version.weights_uri:
        raise JobRejected(f"model version {version.name} has no weights folder (weights_uri is empty)")
    try:
        pipeline_family(version.weights_uri)
    except ModelLoadError as exc:
        raise JobRejected(f"model version {version.name}: {exc}") from exc
    return version.weights_uri


def _enqueue(job: Job) -> Job:
    from evalhub.jobs.tasks import run_job

    transaction.on_commit(lambda: run_job.delay(job.pk))
    return job


def training_launch(
    *,
    user,
    base_version: ModelVersion,
    options: dict,
    study: Study | None = None,
    sft_data: str = "",
    version_name: str = "",
) -> Job:
    """Queue a training run of ``base_version`` on a best/worst study's preferences (or,
    for SFT, an image folder). Every option is checked here, by the trainer's own config
    validation, before the job exists."""
    from evalhub.results.best_worst import best_worst_pairs
    from training.config import ConfigError, TrainConfig

    unknown = set(options) - set(TRAINING_OPTIONS)
    if unknown:
        raise JobRejected(f"unknown training option(s): {', '.join(sorted(unknown))}")
    if (study is None) == (not sft_data):
        raise JobRejected("give either a best/worst study or an SFT data folder")
    if study is not None:
        if study.kind != Study.Kind.BEST_WORST:
            raise JobRejected(f"study {study.name!r} is not a best/worst-of-five study")
        if best_worst_pairs(study).empty:
            raise JobRejected(f"study {study.name!r} has no decided winner/loser pair yet")
    elif options.get("method", "simpo") != "sft":
        raise JobRejected("an image folder trains SFT only; preference methods need a best/worst study")
    elif not Path(sft_data).exists():
        raise JobRejected(f"SFT data {sft_data} does not exist (workers read it from shared storage)")
    model = _weights_folder(base_version)
    options = {k: v for k, v in options.items() if v is not None}
    try:
        TrainConfig(model=model, data=sft_data or "(preference export)", output_dir="(job folder)", **options)
    except (ConfigError, TypeError) as exc:
        raise JobRejected(str(exc)) from exc
    version_name = version_name.strip()
    if version_name and ModelVersion.objects.filter(name=version_name).exists():
        raise JobRejected(f"a model version named {version_name!r} already exists")
    config = {"options": options, "sft_data": sft_data, "version_name": version_name}
    with transaction.atomic():
        job = Job.objects.create(
            kind=Job.Kind.TRAINING,
            config=config,
            model_version=base_version,
            source_study=study,
            progress_total=options.get("max_steps", TrainConfig.max_steps),
            created_by=user,
        )
        return _enqueue(job)


def generation_launch(
    *, user, model_version: ModelVersion, prompt_set: PromptSet, compare_after: bool = False, **options
) -> Job:
    """Queue N images per prompt of ``prompt_set`` from ``model_version``, imported when done.

    With ``compare_after`` the worker then creates the A/B and alignment studies against
    the version's parent (:func:`comparison_create`).
    """
    unknown = set(options) - set(GENERATION_DEFAULTS)
    if unknown:
        raise JobRejected(f"unknown generation option(s): {', '.join(sorted(unknown))}")
    options = {**GENERATION_DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    for name in ("images_per_prompt", "steps"):
        if not isinstance(options[name], int) or options[name] < 1:
            raise JobRejected(f"{name} must be a positive whole number")
    if options["guidance"] is not None and options["guidance"] < 0:
        raise JobRejected("guidance must not be negative")
    if compare_after and model_version.parent is None:
        raise JobRejected(f"model version {model_version.name} has no parent to compare with")
    _weights_folder(model_version)
    prompts = prompt_set.prompts.count()
    if not prompts:
        raise JobRejected(f"prompt set {prompt_set.name!r} has no prompts")
    with transaction.atomic():
        job = Job.objects.create(
            kind=Job.Kind.GENERATION,
            config={**options, "compare_after": compare_after},
            model_version=model_version,
            prompt_set=prompt_set,
            progress_total=prompts * options["images_per_prompt"],
            created_by=user,
        )
        return _enqueue(job)


def job_cancel(job: Job) -> Job:
    """A queued job is cancelled at once; a running one stops at its next step."""
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
        state=Job.State.CANCELLED, finished_at=now, cancel_requested=True
    ):
        job.refresh_from_db()
        return job
    if not Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(cancel_requested=True):
        job.refresh_from_db()
        raise JobRejected(f"job #{job.pk} has already ended ({job.state})")
    job.refresh_from_db()
    return job


def job_retry(job: Job, *, user) -> Job:
    """A new job with the same configuration as a failed or cancelled one."""
    if job.state not in (Job.State.FAILED, Job.State.CANCELLED):
        raise JobRejected(f"only a failed or cancelled job can be retried; job #{job.pk} is {job.state}")
    config = dict(job.config)
    if job.kind == Job.Kind.TRAINING:
        config.pop("train_config", None)
    with transaction.atomic():
        retry = Job.objects.create(
            kind=job.kind,
            config=config,
            model_version=job.model_version,
            prompt_set=job.prompt_set,
            source_study=job.source_study,
            progress_total=job.progress_total,
            retry_of=job,
            created_by=user,
        )
        return _enqueue(retry)


def jobs_reap_stale(now=None) -> int:
    """Mark running jobs whose worker stopped reporting as failed; returns how many.

    Cheap (one indexed query), so pages and the API call it before showing jobs, and each
    worker calls it when it starts.
    """
    now = now or timezone.now()
    timeout = settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT
    reaped = 0
    stale = Job.objects.filter(state=Job.State.RUNNING, heartbeat_at__lt=now - timedelta(seconds=timeout))
    for job in stale.only("pk", "heartbeat_at", "worker"):
        reason = (
            f"worker {job.worker or '?'} stopped reporting: no heartbeat since "
            f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC (timeout {timeout} s); it probably died mid-job"
        )
        reaped += Job.objects.filter(
            pk=job.pk, state=Job.State.RUNNING, heartbeat_at=job.heartbeat_at
        ).update(state=Job.State.FAILED, finished_at=now, error=reason)
    return reaped


def _free_name(base: str) -> str:
    name, n = base, 2
    while Study.objects.filter(name=name).exists():
        name, n = f"{base} ({n})", n + 1
    return name


def _has_images(model: ModelVersion, prompt_set: PromptSet) -> bool:
    """Whether ``model`` has any generated image for a prompt of ``prompt_set``."""
    return GeneratedImage.objects.filter(model_version=model, prompt__prompt_set=prompt_set).exists()


def comparison_create(*, user, version: ModelVersion, prompt_set: PromptSet) -> list[Study]:
    """An A/B study (visual flaws and appeal) of ``version`` (A) against its parent (B), and a
    text-alignment study over both where the prompts have questions."""
    from annotate.errors import AnnotationError
    from annotate.services import study_create

    parent = version.parent
    if parent is None:
        raise JobRejected(f"model version {version.name} has no parent to compare with")
    for model in (version, parent):
        if not _has_images(model, prompt_set):
            raise JobRejected(
                f"{model.name} has no images for prompt set {prompt_set.name!r}; generate them first"
            )
    kinds = [(Study.Kind.AB, f"{version.name} vs {parent.name}: flaws and appeal")]
    if prompt_set.prompts.filter(questions__isnull=False).exists():
        kinds.append((Study.Kind.ALIGNMENT, f"{version.name} and {parent.name}: text alignment"))
    try:
        with transaction.atomic():
            return [
                study_create(
                    name=_free_name(name),
                    kind=kind,
                    prompt_set=prompt_set,
                    model_versions=[version, parent],
                    created_by=user,
                    skip_incomplete=True,
                )
                for kind, name in kinds
            ]
    except AnnotationError as exc:
        raise JobRejected(exc.message) from exc


def comparison_request(*, user, version: ModelVersion, prompt_set: PromptSet, **generation) -> dict:
    """The "compare with parent" action: studies now if the images exist, else a generation
    job that creates them when it finishes."""
    parent = version.parent
    if parent is None:
        raise JobRejected(f"model version {version.name} has no parent to compare with")
    if not _has_images(parent, prompt_set):
        raise JobRejected(
            f"the parent {parent.name} has no images for prompt set {prompt_set.name!r}; "
            "generate or import them first"
        )
    if _has_images(version, prompt_set):
        return {"studies": comparison_create(user=user, version=version, prompt_set=prompt_set), "job": None}
    job = generation_launch(
        user=user, model_version=version, prompt_set=prompt_set, compare_after=True, **generation
    )
    return {"studies": [], "job": job}
