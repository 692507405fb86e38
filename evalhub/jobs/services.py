"""Launching, cancelling and retrying jobs; the checks that run before anything is queued.

Forms and the API both call these; a :class:`JobRejected` carries the message they show.
A job is queued with ``transaction.on_commit``, so a worker never receives the id of a
row it cannot read yet.
"""

import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Model, QuerySet
from django.db.models.functions import Now

from annotate.models import Study
from evalhub.catalog.models import GeneratedImage, ModelVersion, PromptSet
from evalhub.jobs.models import Job
from training.options import (
    GENERATE_OPTIONS,
    TRAIN_OPTIONS,
    OptionError,
    generate_options_validate,
    train_options_validate,
)
from training.pipelines import ModelLoadError, pipeline_family

logger = logging.getLogger(__name__)

# The trainer's options a job takes, as training.options declares them (type, bounds,
# default, help); the launch forms and API fields are built from these.
TRAINING_OPTIONS = {
    name: TRAIN_OPTIONS[name]
    for name in (
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
}
GENERATION_OPTIONS = {
    name: GENERATE_OPTIONS[name] for name in ("images_per_prompt", "steps", "guidance", "seed")
}

# Messages users see (on forms, in API errors, on the job page); tests reuse them.
UNKNOWN_OPTIONS = "unknown {kind} option(s): {names}"
STUDY_OR_FOLDER = "give either a best/worst study or an SFT data folder"
NOT_BEST_WORST = "study {study!r} is not a best/worst-of-five study"
NO_DECIDED_PAIRS = (
    "study {study!r} has no decided winner/loser pair yet: {incomplete} of {tasks} tasks still lack "
    "their {overlap} judgments"
)
FOLDER_TRAINS_SFT_ONLY = "an image folder trains SFT only; preference methods need a best/worst study"
NO_SFT_DATA = "SFT data {path} does not exist (workers read it from shared storage)"
NO_WEIGHTS = "model version {version} has no weights folder (weights_uri is empty)"
VERSION_NAME_TAKEN = "a model version named {name!r} already exists"
VERSION_NAME_PROMISED = "job #{job} ({state}) will register a version named {name!r}; choose another name"
NO_PARENT = "model version {version} has no parent to compare with"
NO_PROMPTS = "prompt set {prompt_set!r} has no prompts"
ALREADY_ENDED = "job #{job} has already ended ({state})"
NOT_RETRYABLE = "only a failed or cancelled job can be retried; job #{job} is {state}"
BROKER_UNREACHABLE = (
    "the job could not be queued: the broker at CELERY_BROKER_URL did not take it ({error}); "
    "retry it once the broker runs"
)
WORKER_SILENT = (
    "worker {worker} stopped reporting: no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC "
    "(timeout {timeout} s); it probably died mid-job"
)


class JobRejected(ValueError):
    pass


def _weights_folder(version: ModelVersion) -> str:
    """The version's weights folder, once its ``model_index.json`` names a family (read as
    plain JSON: the web app never loads torch)."""
    if not version.weights_uri:
        raise JobRejected(NO_WEIGHTS.format(version=version.name))
    try:
        pipeline_family(version.weights_uri)
    except ModelLoadError as exc:
        raise JobRejected(f"model version {version.name}: {exc}") from exc
    return version.weights_uri


def _enqueue(job: Job) -> Job:
    """Send ``job`` to the workers once the transaction that created it commits."""
    transaction.on_commit(lambda: _publish(job))
    return job


def _publish(job: Job) -> None:
    """Publish the job's ``run_job`` message; if the broker refuses it, the job fails at once
    with the broker's error (and can be retried) instead of staying queued forever."""
    from evalhub.jobs.tasks import run_job

    try:
        # No time limits in the message: the worker applies its own EVALHUB_JOB_TIME_LIMIT.
        run_job.apply_async((job.pk,), time_limit=None, soft_time_limit=None)
    except Exception as exc:  # kombu's OperationalError, or the transport's own connection error
        logger.exception("could not queue job #%s", job.pk)
        Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
            state=Job.State.FAILED, error=BROKER_UNREACHABLE.format(error=exc), finished_at=Now()
        )
        job.refresh_from_db()


def _check_version_name(name: str) -> None:
    """A chosen version name must be free: no model version has it and no unfinished job
    will register it."""
    if not name:
        return
    if ModelVersion.objects.filter(name=name).exists():
        raise JobRejected(VERSION_NAME_TAKEN.format(name=name))
    pending = Job.objects.filter(
        kind=Job.Kind.TRAINING, state__in=(Job.State.QUEUED, Job.State.RUNNING), config__version_name=name
    ).first()
    if pending is not None:
        raise JobRejected(VERSION_NAME_PROMISED.format(job=pending.pk, state=pending.state, name=name))


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
    for SFT, an image folder). Every option is checked here, by the trainer's own rules
    (``training.options``), before the job exists."""
    from evalhub.results.best_worst import best_worst_pairs, task_completion

    unknown = set(options) - set(TRAINING_OPTIONS)
    if unknown:
        raise JobRejected(UNKNOWN_OPTIONS.format(kind="training", names=", ".join(sorted(unknown))))
    options = {k: v for k, v in options.items() if v is not None}
    try:
        checked = train_options_validate(options)
    except OptionError as exc:
        raise JobRejected(str(exc)) from exc
    options = {name: checked[name] for name in options}
    if (study is None) == (not sft_data):
        raise JobRejected(STUDY_OR_FOLDER)
    if study is not None:
        if study.kind != Study.Kind.BEST_WORST:
            raise JobRejected(NOT_BEST_WORST.format(study=study.name))
        if best_worst_pairs(study).empty:  # complete tasks only, as the export the run trains on
            complete, incomplete = task_completion(study)
            raise JobRejected(
                NO_DECIDED_PAIRS.format(
                    study=study.name,
                    incomplete=incomplete,
                    tasks=complete + incomplete,
                    overlap=study.overlap,
                )
            )
    elif checked["method"] != "sft":
        raise JobRejected(FOLDER_TRAINS_SFT_ONLY)
    elif not Path(sft_data).exists():
        raise JobRejected(NO_SFT_DATA.format(path=sft_data))
    _weights_folder(base_version)
    version_name = version_name.strip()
    _check_version_name(version_name)
    config = {"options": options, "sft_data": sft_data, "version_name": version_name}
    with transaction.atomic():
        job = Job.objects.create(
            kind=Job.Kind.TRAINING,
            config=config,
            model_version=base_version,
            source_study=study,
            progress_total=checked["max_steps"],
            created_by=user,
        )
        return _enqueue(job)


def generation_launch(
    *,
    user,
    model_version: ModelVersion,
    prompt_set: PromptSet,
    compare_after: bool = False,
    display_size: str = "",
    **options,
) -> Job:
    """Queue N images per prompt of ``prompt_set`` from ``model_version``, imported when done.

    With ``compare_after`` the worker then creates the A/B and alignment studies against
    the version's parent (:func:`comparison_create`, with ``display_size``).
    """
    unknown = set(options) - set(GENERATION_OPTIONS)
    if unknown:
        raise JobRejected(UNKNOWN_OPTIONS.format(kind="generation", names=", ".join(sorted(unknown))))
    try:
        checked = generate_options_validate({k: v for k, v in options.items() if v is not None})
    except OptionError as exc:
        raise JobRejected(str(exc)) from exc
    options = {name: checked[name] for name in GENERATION_OPTIONS}
    if compare_after and model_version.parent is None:
        raise JobRejected(NO_PARENT.format(version=model_version.name))
    _weights_folder(model_version)
    prompts = prompt_set.prompts.count()
    if not prompts:
        raise JobRejected(NO_PROMPTS.format(prompt_set=prompt_set.name))
    with transaction.atomic():
        job = Job.objects.create(
            kind=Job.Kind.GENERATION,
            config={**options, "compare_after": compare_after, "display_size": display_size},
            model_version=model_version,
            prompt_set=prompt_set,
            progress_total=prompts * options["images_per_prompt"],
            created_by=user,
        )
        return _enqueue(job)


def job_cancel(job: Job) -> Job:
    """A queued job is cancelled at once; a running one stops at its next step."""
    if Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
        state=Job.State.CANCELLED, finished_at=Now(), cancel_requested=True
    ):
        job.refresh_from_db()
        return job
    if not Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(cancel_requested=True):
        job.refresh_from_db()
        raise JobRejected(ALREADY_ENDED.format(job=job.pk, state=job.state))
    job.refresh_from_db()
    return job


def job_retry(job: Job, *, user) -> Job:
    """A new job with the same configuration as a failed or cancelled one (its chosen version
    name checked again: another job may have taken it meanwhile)."""
    if job.state not in (Job.State.FAILED, Job.State.CANCELLED):
        raise JobRejected(NOT_RETRYABLE.format(job=job.pk, state=job.state))
    config = dict(job.config)
    if job.kind == Job.Kind.TRAINING:
        config.pop("train_config", None)
        _check_version_name(config.get("version_name", ""))
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


def jobs_reap_stale() -> int:
    """Mark running jobs whose worker stopped reporting as failed; returns how many.

    Heartbeats are written and judged by the database's clock (``Now()``), so a worker's
    or a web server's clock that is off decides nothing. Cheap (one indexed query), so the
    ``reap_stale_jobs`` task runs it on the ``celery beat`` schedule, pages and the API
    before showing jobs, and each worker when it starts.
    """
    timeout = settings.EVALHUB_JOB_HEARTBEAT_TIMEOUT
    stale = Job.objects.filter(state=Job.State.RUNNING, heartbeat_at__lt=Now() - timedelta(seconds=timeout))
    reaped = 0
    for job in stale.only("pk", "heartbeat_at", "worker"):
        reason = WORKER_SILENT.format(worker=job.worker or "?", since=job.heartbeat_at, timeout=timeout)
        # Still running and still stale when written: a beat that came in meanwhile wins.
        reaped += stale.filter(pk=job.pk).update(state=Job.State.FAILED, finished_at=Now(), error=reason)
    return reaped


def free_name(base: str, taken: QuerySet[Model] | None = None) -> str:
    """``base``, or ``base (2)``, ``base (3)``… : the first name no row of ``taken`` (studies
    by default) has."""
    taken = Study.objects.all() if taken is None else taken
    name, n = base, 2
    while taken.filter(name=name).exists():
        name, n = f"{base} ({n})", n + 1
    return name


def _has_images(model: ModelVersion, prompt_set: PromptSet, index: int | None = None) -> bool:
    """Whether ``model`` has any generated image (at ``index``) for a prompt of ``prompt_set``."""
    images = GeneratedImage.objects.filter(model_version=model, prompt__prompt_set=prompt_set)
    return (images if index is None else images.filter(index=index)).exists()


def comparison_create(
    *, user, version: ModelVersion, prompt_set: PromptSet, display_size: str = ""
) -> list[Study]:
    """An A/B study (visual flaws and appeal) of ``version`` (A) against its parent (B), and a
    text-alignment study over both where the prompts have questions.

    The A/B study shows each prompt's first image; the alignment study shows the second
    where both versions have one, so that the two studies never bar each other's
    annotators (annotate.exposure). ``display_size`` ("WxH") serves the A/B images
    resampled to one size, which an A/B study of two differently sized models needs.
    """
    from annotate.errors import AnnotationError
    from annotate.services import study_create

    parent = version.parent
    if parent is None:
        raise JobRejected(NO_PARENT.format(version=version.name))
    for model in (version, parent):
        if not _has_images(model, prompt_set):
            raise JobRejected(
                f"{model.name} has no images for prompt set {prompt_set.name!r}; generate them first"
            )
    # The researchers' names; annotators see neutral titles (annotate.titles).
    kinds = [
        (Study.Kind.AB, f"{version.name} vs {parent.name}: flaws and appeal", {"display_size": display_size})
    ]
    if prompt_set.prompts.filter(questions__isnull=False).exists():
        index = 1 if all(_has_images(model, prompt_set, index=1) for model in (version, parent)) else 0
        kinds.append(
            (
                Study.Kind.ALIGNMENT,
                f"{version.name} and {parent.name}: text alignment",
                {"image_index": index},
            )
        )
    try:
        with transaction.atomic():
            return [
                study_create(
                    name=free_name(name),
                    kind=kind,
                    prompt_set=prompt_set,
                    model_versions=[version, parent],
                    created_by=user,
                    skip_incomplete=True,
                    **settings,
                )
                for kind, name, settings in kinds
            ]
    except AnnotationError as exc:
        raise JobRejected(exc.message) from exc


def comparison_request(
    *, user, version: ModelVersion, prompt_set: PromptSet, display_size: str = "", **generation
) -> dict:
    """The "compare with parent" action: studies now if the images exist, else a generation
    job that creates them when it finishes (with the same ``display_size``)."""
    from annotate.display_size import display_size_parse
    from annotate.errors import AnnotationError

    try:
        display_size_parse(display_size)
    except AnnotationError as exc:
        raise JobRejected(exc.message) from exc
    parent = version.parent
    if parent is None:
        raise JobRejected(NO_PARENT.format(version=version.name))
    if not _has_images(parent, prompt_set):
        raise JobRejected(
            f"the parent {parent.name} has no images for prompt set {prompt_set.name!r}; "
            "generate or import them first"
        )
    if _has_images(version, prompt_set):
        studies = comparison_create(
            user=user, version=version, prompt_set=prompt_set, display_size=display_size
        )
        return {"studies": studies, "job": None}
    job = generation_launch(
        user=user,
        model_version=version,
        prompt_set=prompt_set,
        compare_after=True,
        display_size=display_size,
        **generation,
    )
    return {"studies": [], "job": job}
