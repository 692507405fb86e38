"""Reads for the researcher pages, each a fixed number of queries."""

from django.db.models import Count, Prefetch, QuerySet

from evalhub.catalog.models import AlignmentQuestion, GeneratedImage, ModelVersion, Prompt, PromptSet


def prompt_set_list() -> QuerySet[PromptSet]:
    """Prompt sets with how many prompts and images each holds."""
    return PromptSet.objects.annotate(
        prompt_count=Count("prompts", distinct=True),
        image_count=Count("prompts__images", distinct=True),
    )


def prompt_set_prompts(prompt_set: PromptSet) -> QuerySet[Prompt]:
    """The set's prompts in file order, with question and image counts."""
    return prompt_set.prompts.annotate(
        question_count=Count("questions", distinct=True),
        image_count=Count("images", distinct=True),
    ).order_by("position")


def prompt_set_model_counts(prompt_set: PromptSet) -> list[dict]:
    """Per model version: how many of the set's prompts have images, and how many images."""
    return list(
        GeneratedImage.objects.filter(prompt__prompt_set=prompt_set)
        .values("model_version__id", "model_version__name", "model_version__kind")
        .annotate(images=Count("id"), prompts=Count("prompt", distinct=True))
        .order_by("model_version__name")
    )


def prompt_with_images(prompt_id: int) -> Prompt:
    """A prompt with its questions and its images grouped by model version."""
    return (
        Prompt.objects.select_related("prompt_set")
        .prefetch_related(
            Prefetch("questions", queryset=AlignmentQuestion.objects.order_by("position")),
            Prefetch(
                "images",
                queryset=GeneratedImage.objects.select_related("model_version").order_by(
                    "model_version__name", "index"
                ),
            ),
        )
        .get(pk=prompt_id)
    )


def images_by_model(prompt: Prompt) -> list[tuple[ModelVersion, list[GeneratedImage]]]:
    """The prompt's prefetched images as (model version, images) in name order."""
    groups: dict[int, tuple[ModelVersion, list[GeneratedImage]]] = {}
    for image in prompt.images.all():
        groups.setdefault(image.model_version_id, (image.model_version, []))[1].append(image)
    return list(groups.values())


def model_version_list() -> QuerySet[ModelVersion]:
    """Model versions with their parent and image counts."""
    return ModelVersion.objects.select_related("parent").annotate(image_count=Count("images"))
