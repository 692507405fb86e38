"""Study set-up: create a study with its tasks, change its state, mark gold items.

Task layout per kind (paper §4.1):
- best/worst of five: one task per prompt with the model's first five images (by index);
- A/B: one task per (prompt, criterion) with the image at ``image_index`` of each model,
  the side of model A drawn at random per task and kept server side; both images of a
  pair have one size (annotate.display_size);
- text alignment: one task per image, holding all the prompt's questions (so the
  annotator looks at an image once and answers its questions together).

What annotators read (title, guidelines) never names a model (annotate.titles); which
images an annotator may meet where is the study's exposure rule (annotate.exposure).
"""

import secrets
from collections import defaultdict

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count

from annotate import errors
from annotate.answers import answer_clean
from annotate.display_size import ab_sizes_check, resampled_images
from annotate.errors import Conflict, InvalidInput
from annotate.exposure import exposures_record
from annotate.models import AnnotatorTally, Judgment, Lease, Study, StudyModel, Task, TaskImage
from annotate.study_settings import CONFIG_GROUPS, CROWD_COMPLETION_CODE, study_settings_clean
from annotate.titles import annotator_text_check, neutral_title
from evalhub.catalog.models import GeneratedImage, ModelVersion, PromptSet

# Each setting kept in a group of the study's config (the quality rule, the crowd), by name.
CONFIG_GROUP_OF = {setting.name: group for group, members in CONFIG_GROUPS.items() for setting in members}


def completion_code_new() -> str:
    """A random completion code for crowd participants (annotate.crowd)."""
    return secrets.token_hex(4).upper()


def _config_groups(settings: dict) -> dict:
    """The config groups of a new study from its checked settings; an empty completion code
    is made once here and kept."""
    groups = {
        group: {setting.name: settings[setting.name] for setting in members}
        for group, members in CONFIG_GROUPS.items()
    }
    groups["crowd"][CROWD_COMPLETION_CODE.name] = (
        settings[CROWD_COMPLETION_CODE.name] or completion_code_new()
    )
    return groups


IMAGES_PER_BEST_WORST = 5
DEFAULT_GUIDELINES = {
    Study.Kind.BEST_WORST: (
        "Pick the best image (positive) and the worst image (negative) of the five. Visual "
        "flaws come first: the image with the fewest flaws is the positive, even if another is "
        "more appealing."
    ),
    Study.Kind.AB: (
        "Compare the two images for the criterion shown. Visual flaws: major flaws such as "
        "displaced or extra body parts, minor ones such as distorted eyes or text. Visual "
        "appeal: which image is more pleasing. Choose tie when they are equal; reject when one "
        "image is photo-realistic and the other stylized (appeal)."
    ),
    Study.Kind.ALIGNMENT: ("Answer each question about the image with yes or no, judging only what you see."),
}


def study_create(
    *,
    name: str,
    kind: str,
    prompt_set: PromptSet,
    model_versions: list[ModelVersion],
    created_by=None,
    **settings,
) -> Study:
    """Create a study and all its tasks in one transaction.

    ``model_versions`` is ``[model]`` for best/worst, ``[A, B]`` for A/B and one or more
    models for alignment. ``settings`` are the others of annotate.study_settings, each
    checked there and defaulting as declared there: ``title`` (what annotators see;
    default: neutral, from the kind and criteria), ``criteria``, ``overlap``,
    ``lease_seconds``, ``image_index``, ``guidelines``, ``skip_incomplete`` (leave out
    prompts without the images a task needs, instead of naming them in an error),
    ``access`` (``open``, or ``enrolled``: annotate.enrollment), the quality rule's, the
    crowd's (``crowd_*``: annotate.crowd), and the
    A/B settings ``exposure`` (``isolated`` or ``shared``) and ``display_size`` (``"WxH"``,
    to serve both sides resampled to one size).
    """
    settings = study_settings_clean({"name": name, "kind": kind, **settings})
    kind = settings["kind"]
    _check_models(kind, model_versions)
    config = {"image_index": settings["image_index"]}
    if kind == Study.Kind.AB:
        config["criteria"] = settings["criteria"]
    if settings["display_size"] is not None:
        config["display_size"] = list(settings["display_size"])
    config |= _config_groups(settings)
    title = settings["title"] or neutral_title(kind, config.get("criteria", ()))
    guidelines = settings["guidelines"] or DEFAULT_GUIDELINES[kind]
    annotator_text_check(title=title, guidelines=guidelines)
    written: list[str] = []
    try:
        return _study_create(
            written,
            name=settings["name"],
            title=title,
            kind=kind,
            prompt_set=prompt_set,
            model_versions=model_versions,
            created_by=created_by,
            overlap=settings["overlap"],
            lease_seconds=settings["lease_seconds"],
            exposure=settings["exposure"] or "",
            access=settings["access"],
            config=config,
            guidelines=guidelines,
            skip_incomplete=settings["skip_incomplete"],
        )
    except BaseException:
        # Resampled images are files: they leave with the rows that named them.
        for file_name in written:
            default_storage.delete(file_name)
        raise


@transaction.atomic
def _study_create(written: list[str], *, name, model_versions, skip_incomplete, **fields) -> Study:
    kind = fields["kind"]
    try:
        with transaction.atomic():
            study = Study.objects.create(name=name, **fields)
    except IntegrityError:
        raise InvalidInput(errors.STUDY_NAME_TAKEN.format(name=name)) from None
    roles = "AB" if kind == Study.Kind.AB else ""
    StudyModel.objects.bulk_create(
        StudyModel(study=study, model_version=model, role=roles[i] if roles else "")
        for i, model in enumerate(model_versions)
    )
    builder = {
        Study.Kind.BEST_WORST: _best_worst_tasks,
        Study.Kind.AB: _ab_tasks,
        Study.Kind.ALIGNMENT: _alignment_tasks,
    }[kind]
    layouts = builder(study, model_versions, skip_incomplete)
    if not layouts:
        raise InvalidInput(errors.NO_TASKS.format(reason="no prompt has what a task needs"))
    resampled = {}
    if "display_size" in study.config:
        images = {image.pk: image for *_, pair in layouts for image in pair}
        resampled = resampled_images(list(images.values()), tuple(study.config["display_size"]), written)
    tasks = Task.objects.bulk_create(
        Task(study=study, key=key, prompt=prompt, criterion=criterion)
        for key, prompt, criterion, _ in layouts
    )
    TaskImage.objects.bulk_create(
        TaskImage(task=task, image=image, position=position, resampled=resampled.get(image.pk))
        for task, (_, _, _, images) in zip(tasks, layouts, strict=True)
        for position, image in enumerate(images)
    )
    study.open_tasks = len(tasks)
    study.save(update_fields=["open_tasks"])
    return study


@transaction.atomic
def study_recount(*, study_id: int) -> int:
    """Set what a study keeps counted as submissions arrive (its open tasks, each annotator's
    tally, which leases are on full tasks) from its tasks and judgments, and write the
    exposures of its leases, after judgments arrive by any other way: an import, or a
    fixture. Returns the open tasks."""
    study = Study.objects.select_for_update().get(pk=study_id)
    study.open_tasks = study.tasks.filter(judgment_count__lt=study.overlap).count()
    study.save(update_fields=["open_tasks"])
    leases = Lease.objects.filter(task__study=study)
    leases.filter(task__judgment_count__gte=study.overlap, task_filled=False).update(task_filled=True)
    leases.filter(task__judgment_count__lt=study.overlap, task_filled=True).update(task_filled=False)
    tallies = [
        AnnotatorTally(study=study, annotator_id=row["annotator"], judgments=row["n"])
        for row in Judgment.objects.filter(task__study=study).values("annotator").annotate(n=Count("pk"))
    ]
    # An excluded annotator's row keeps their exclusion, judgments or not.
    AnnotatorTally.objects.filter(study=study, excluded_at__isnull=True).exclude(
        annotator__in=[tally.annotator_id for tally in tallies]
    ).delete()
    AnnotatorTally.objects.bulk_create(
        tallies, update_conflicts=True, unique_fields=["study", "annotator"], update_fields=["judgments"]
    )
    exposures_record(leases)
    return study.open_tasks


@transaction.atomic
def study_update(*, study: Study, **changes) -> Study:
    """Change the settings annotate.study_settings declares changeable: ``status``,
    ``overlap``, ``lease_seconds``, ``guidelines``, ``name``, ``title``, ``access``, or those
    kept in a group of the study's config: the quality rule's (``quality_*``) and the
    crowd's (``crowd_*``; an empty completion code keeps the one the study has).

    The overlap is fixed once a judgment exists: changing it would change what the
    judgments already collected count towards. The title and guidelines are checked like
    at creation: annotators read them; a name another study has is refused as at creation.
    """
    study = Study.objects.select_for_update().get(pk=study.pk)
    changes = study_settings_clean(changes, kind=study.kind)
    if "guidelines" in changes:
        changes["guidelines"] = changes["guidelines"] or DEFAULT_GUIDELINES[study.kind]
    annotator_text_check(**{field: changes[field] for field in ("title", "guidelines") if field in changes})
    if "overlap" in changes and changes["overlap"] != study.overlap:
        if study.tasks.filter(judgment_count__gt=0).exists():
            raise Conflict(errors.OVERLAP_LOCKED)
        # With no judgment yet, every task stays open whatever N is.
    if changes.get(CROWD_COMPLETION_CODE.name) == "":
        code = study.config.get("crowd", {}).get(CROWD_COMPLETION_CODE.name)
        changes[CROWD_COMPLETION_CODE.name] = code or completion_code_new()
    for field, value in changes.items():
        group = CONFIG_GROUP_OF.get(field)
        if group is not None:
            study.config = {**study.config, group: {**study.config.get(group, {}), field: value}}
        else:
            setattr(study, field, value)
    try:
        with transaction.atomic():
            study.save()
    except IntegrityError:
        if "name" not in changes:
            raise
        raise InvalidInput(errors.STUDY_NAME_TAKEN.format(name=changes["name"])) from None
    return study


@transaction.atomic
def task_set_gold(*, study: Study, task_key: str, answer: dict | None) -> Task:
    """Mark a task as gold with its known answer (in the annotators' answer format), or
    unmark it with ``answer=None``. Gold tasks are served like any other."""
    task = study.tasks.filter(key=task_key).first()
    if task is None:
        raise InvalidInput(errors.UNKNOWN_TASK_KEY.format(key=task_key))
    task.is_gold = answer is not None
    task.gold_answer = answer_clean(task, answer) if answer is not None else None
    task.save(update_fields=["is_gold", "gold_answer"])
    return task


# ---------------------------------------------------------------- validation


def _check_models(kind: str, model_versions: list[ModelVersion]) -> None:
    expected = {
        Study.Kind.BEST_WORST: (1, 1, "one model version"),
        Study.Kind.AB: (2, 2, "two model versions"),
        Study.Kind.ALIGNMENT: (1, 100, "at least one model version"),
    }[kind]
    if not expected[0] <= len(model_versions) <= expected[1]:
        raise InvalidInput(
            errors.WRONG_MODEL_COUNT.format(
                kind=Study.Kind(kind).label, expected=expected[2], got=len(model_versions)
            )
        )
    if len({m.pk for m in model_versions}) != len(model_versions):
        raise InvalidInput(errors.SAME_MODEL_TWICE)


def _missing(prompts, model, what) -> InvalidInput:
    examples = "; ".join(repr(p.text) for p in prompts[:3]) + (" …" if len(prompts) > 3 else "")
    return InvalidInput(
        errors.MISSING_IMAGES.format(count=len(prompts), what=what, model=model.name, examples=examples)
    )


def _images_by_prompt(study: Study, model: ModelVersion) -> dict[int, list[GeneratedImage]]:
    grouped = defaultdict(list)
    for image in GeneratedImage.objects.filter(
        prompt__prompt_set=study.prompt_set, model_version=model
    ).order_by("prompt_id", "index"):
        grouped[image.prompt_id].append(image)
    return grouped


def _image_at(images: list[GeneratedImage], index: int) -> GeneratedImage | None:
    return next((image for image in images if image.index == index), None)


# ---------------------------------------------------------------- task layouts


def _best_worst_tasks(study, models, skip_incomplete):
    (model,) = models
    images = _images_by_prompt(study, model)
    layouts, incomplete = [], []
    for prompt in study.prompt_set.prompts.order_by("position"):
        chosen = images.get(prompt.pk, [])[:IMAGES_PER_BEST_WORST]
        if len(chosen) < IMAGES_PER_BEST_WORST:
            incomplete.append(prompt)
            continue
        layouts.append((f"p{prompt.position:04d}", prompt, "", chosen))
    if incomplete and not skip_incomplete:
        raise _missing(incomplete, model, f"{IMAGES_PER_BEST_WORST} images")
    return layouts


def _ab_tasks(study, models, skip_incomplete):
    index = study.config["image_index"]
    model_a, model_b = models
    images_a, images_b = _images_by_prompt(study, model_a), _images_by_prompt(study, model_b)
    coin = secrets.SystemRandom()
    layouts, incomplete, pairs = [], defaultdict(list), []
    for prompt in study.prompt_set.prompts.order_by("position"):
        image_a = _image_at(images_a.get(prompt.pk, []), index)
        image_b = _image_at(images_b.get(prompt.pk, []), index)
        if image_a is None or image_b is None:
            incomplete[model_a if image_a is None else model_b].append(prompt)
            continue
        pairs.append((image_a, image_b))
        for criterion in study.config["criteria"]:
            pair = [image_a, image_b] if coin.random() < 0.5 else [image_b, image_a]
            layouts.append((f"p{prompt.position:04d}-{criterion}", prompt, criterion, pair))
    if incomplete and not skip_incomplete:
        model, prompts = next(iter(incomplete.items()))
        raise _missing(prompts, model, f"an image at index {index}")
    if "display_size" not in study.config:
        ab_sizes_check(pairs)
    return layouts


def _alignment_tasks(study, models, skip_incomplete):
    index = study.config["image_index"]
    prompts = list(
        study.prompt_set.prompts.annotate(question_count=Count("questions"))
        .filter(question_count__gt=0)
        .order_by("position")
    )
    if not prompts:
        raise InvalidInput(errors.NO_TASKS.format(reason="no prompt in the set has alignment questions"))
    layouts = []
    for model in models:
        images = _images_by_prompt(study, model)
        incomplete = []
        for prompt in prompts:
            image = _image_at(images.get(prompt.pk, []), index)
            if image is None:
                incomplete.append(prompt)
                continue
            layouts.append((f"p{prompt.position:04d}-m{model.pk}", prompt, "", [image]))
        if incomplete and not skip_incomplete:
            raise _missing(incomplete, model, f"an image at index {index}")
    return layouts
