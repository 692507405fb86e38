"""Launching, cancelling and retrying jobs; the checks that run before anything is queued.

Forms and the API both call these; a :class:`JobRejected` carries the message they show.
A job is queued with ``transaction.on_commit``, so a worker never receives the id of a
row it cannot read yet.
"""

from django.db import transaction
from django.db.models.functions import Now

from annotate.models import Study
from evalhub.catalog.models import ModelVersion, PromptSet
from evalhub.jobs.comparisons import comparison_create, images_exist
from evalhub.jobs.errors import (
    ALREADY_ENDED,
    FOLDER_TRAINS_SFT_ONLY,
    NO_DECIDED_PAIRS,
    NO_PARENT,
    NO_PROMPTS,
    NO_WEIGHTS,
    NOT_BEST_WORST,
    NOT_RETRYABLE,
    STUDY_OR_FOLDER,
    UNKNOWN_OPTIONS,
    VERSION_NAME_PROMISED,
    VERSION_NAME_TAKEN,
    JobRejected,
)
from evalhub.jobs.folders import sft_data_folder
from evalhub.jobs.job_options import GENERATION_OPTIONS, TRAINING_OPTIONS
from evalhub.jobs.models import Job
from evalhub.jobs.queueing import job_enqueue
from evalhub.jobs.weights import weights_family
from training.options import (
    OptionError,
    generate_options_validate,
    train_options_validate,
)
from training.pipelines import ModelLoadError


def _weights_folder(version: ModelVersion) -> str:
    """The version's weights folder, once its ``model_index.json`` names a family (read as
    plain JSON: the web app never loads torch)."""
    if not version.weights_uri:
        raise JobRejected(NO_WEIGHTS.format(version=version.name))
    try:
        weights_family(version.weights_uri)
    except ModelLoadError as exc:
        raise JobRejected(f"model version {version.name}: {exc}") from exc
    return version.weights_uri


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
    for SFT, the SFT data set named ``sft_data``: evalhub.jobs.folders; never a path). Every
    option is checked here, by the trainer's own rules (``training.options``), before the
    job exists."""
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
    else:
        sft_data_folder(sft_data)
        if checked["method"] != "sft":
            raise JobRejected(FOLDER_TRAINS_SFT_ONLY)
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
            # With epochs the data decides the steps: unknown (0) until the run's start line.
            progress_total=checked["max_steps"] or 0,
            created_by=user,
        )
        return job_enqueue(job)


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
        return job_enqueue(job)


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
    total = job.progress_total
    if job.kind == Job.Kind.TRAINING:
        config.pop("train_config", None)
        if config.get("options", {}).get("epochs"):
            total = 0  # the data, exported again, decides: the run's start line says
        if config.get("sft_data"):
            sft_data_folder(config["sft_data"])  # a set since removed, or a path from before sets
        _check_version_name(config.get("version_name", ""))
    with transaction.atomic():
        retry = Job.objects.create(
            kind=job.kind,
            config=config,
            model_version=job.model_version,
            prompt_set=job.prompt_set,
            source_study=job.source_study,
            progress_total=total,
            retry_of=job,
            created_by=user,
        )
        return job_enqueue(retry)


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
    if not images_exist(parent, prompt_set):
        raise JobRejected(
            f"the parent {parent.name} has no images for prompt set {prompt_set.name!r}; "
            "generate or import them first"
        )
    if images_exist(version, prompt_set):
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
