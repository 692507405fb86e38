"""A trained version against its parent: the A/B and alignment studies of "Compare with
parent", made now (``comparison_request``) or after the generation job (the runner)."""

from django.db import transaction
from django.db.models import Model, QuerySet

from annotate.errors import AnnotationError
from annotate.models import Study
from annotate.services import study_create
from evalhub.catalog.models import GeneratedImage, ModelVersion, PromptSet
from evalhub.jobs.errors import NO_PARENT, JobRejected


def free_name(base: str, taken: QuerySet[Model] | None = None) -> str:
    """``base``, or ``base (2)``, ``base (3)``… : the first name no row of ``taken`` (studies
    by default) has."""
    taken = Study.objects.all() if taken is None else taken
    name, n = base, 2
    while taken.filter(name=name).exists():
        name, n = f"{base} ({n})", n + 1
    return name


def images_exist(model: ModelVersion, prompt_set: PromptSet, index: int | None = None) -> bool:
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
    parent = version.parent
    if parent is None:
        raise JobRejected(NO_PARENT.format(version=version.name))
    for model in (version, parent):
        if not images_exist(model, prompt_set):
            raise JobRejected(
                f"{model.name} has no images for prompt set {prompt_set.name!r}; generate them first"
            )
    # The researchers' names; annotators see neutral titles (annotate.titles).
    kinds = [
        (Study.Kind.AB, f"{version.name} vs {parent.name}: flaws and appeal", {"display_size": display_size})
    ]
    if prompt_set.prompts.filter(questions__isnull=False).exists():
        index = 1 if all(images_exist(model, prompt_set, index=1) for model in (version, parent)) else 0
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
