"""Builders for results tests: an A/B study of any size, and judgments written in A/B
terms that are stored the way annotators' answers are (by side, sides random per task)."""

import uuid

import pytest
from django.utils import timezone

from annotate.models import Judgment, Task
from annotate.services import study_create, study_recount
from evalhub.catalog.models import AlignmentQuestion, GeneratedImage, ModelVersion, Prompt, PromptSet
from tests.factories import UserFactory

MODEL_A, MODEL_B = "ours-pixel-simpo", "baseline-latent"


def ab_study(
    prompts: int, criteria=("flaws",), overlap: int = 5, name: str = "study", models=(MODEL_A, MODEL_B)
):
    """An A/B study over ``prompts`` prompts; the image rows are enough, files are not read."""
    prompt_set = PromptSet.objects.create(name=f"set for {name}")
    created = Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, text=f"prompt {i}", position=i) for i in range(prompts)
    )
    models = [ModelVersion.objects.get_or_create(name=n)[0] for n in models]
    GeneratedImage.objects.bulk_create(
        GeneratedImage(
            model_version=m,
            prompt=p,
            seed=0,
            index=0,
            file="images/none.png",
            width=8,
            height=8,
            sha256=uuid.uuid4().hex + uuid.uuid4().hex,
        )
        for m in models
        for p in created
    )
    return study_create(
        name=name,
        kind="ab",
        prompt_set=prompt_set,
        model_versions=models,
        criteria=list(criteria),
        overlap=overlap,
    )


_TO_SIDE = {("A", True): "left", ("A", False): "right", ("B", True): "right", ("B", False): "left"}


def vote(study, votes_by_task: dict[Task, list[str]]) -> None:
    """Store votes given in A/B terms ("A", "B", "tie", "reject") as side choices."""
    model_a = study.study_models.get(role="A").model_version_id
    annotators = [
        UserFactory(username=f"voter{i}", role="annotators")
        for i in range(max((len(v) for v in votes_by_task.values()), default=0))
    ]
    now = timezone.now()
    judgments = []
    for task, votes in votes_by_task.items():
        left = task.task_images.get(position=0).image.model_version_id
        for annotator, outcome in zip(annotators, votes, strict=False):
            choice = outcome if outcome in ("tie", "reject") else _TO_SIDE[(outcome, left == model_a)]
            judgments.append(
                Judgment(
                    task=task,
                    annotator=annotator,
                    client_id=uuid.uuid4(),
                    answer={"choice": choice},
                    left_model_id=left,
                    fetched_at=now,
                    answered_at=now,
                )
            )
        task.judgment_count = len(votes)
    Judgment.objects.bulk_create(judgments)
    Task.objects.bulk_update(votes_by_task.keys(), ["judgment_count"])
    study_recount(study_id=study.pk)


@pytest.fixture
def small_study(db):
    """Six flaws tasks, N = 5."""
    return ab_study(6)


def ab_with_alignment(categories=()):
    """An A/B study over two prompts and an alignment study (N = 3) over the same prompts
    and both models, each prompt asking "a cat?" (yes expected) and "a dog?" (no expected);
    ``categories`` names the prompts' categories, in order."""
    ab = ab_study(2, name="ab")
    for prompt, category in zip(ab.prompt_set.prompts.order_by("position"), categories, strict=False):
        Prompt.objects.filter(pk=prompt.pk).update(category=category)
    for prompt in ab.prompt_set.prompts.all():
        AlignmentQuestion.objects.create(
            prompt=prompt, text="Is there a cat?", expected_answer=True, position=0
        )
        AlignmentQuestion.objects.create(
            prompt=prompt, text="Is there a dog?", expected_answer=False, position=1
        )
    models = [ModelVersion.objects.get(name=MODEL_A), ModelVersion.objects.get(name=MODEL_B)]
    alignment = study_create(
        name="al", kind="alignment", prompt_set=ab.prompt_set, model_versions=models, overlap=3
    )
    return ab, alignment
