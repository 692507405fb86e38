"""Creating studies and their tasks; changing them; gold items."""

import uuid

import pytest

from annotate import errors
from annotate.assignment import assignments_next
from annotate.errors import Conflict, InvalidInput
from annotate.models import Study, StudyModel, Task, TaskImage
from annotate.services import DEFAULT_GUIDELINES, study_create, study_update, task_set_gold
from annotate.submission import judgment_submit
from evalhub.catalog.models import GeneratedImage
from tests.annotate.conftest import MODEL_A, MODEL_B


def test_best_worst_has_one_task_per_prompt_with_five_images(prompt_set, model_a):
    """Each prompt becomes a task with the model's five images in index order."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    assert study.tasks.count() == 3
    for task in study.tasks.all():
        images = [ti.image for ti in task.task_images.order_by("position")]
        assert [image.index for image in images] == [0, 1, 2, 3, 4]
        assert {image.model_version_id for image in images} == {model_a.pk}
        assert {image.prompt_id for image in images} == {task.prompt_id}
    assert study.guidelines == DEFAULT_GUIDELINES[Study.Kind.BEST_WORST]
    assert "fewest flaws" in study.guidelines


def test_ab_has_one_task_per_prompt_and_criterion_with_random_sides(prompt_set, model_a, model_b):
    """A/B tasks pair the two models' first images; which is left is drawn per task."""
    study = study_create(name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b])
    assert sorted(study.tasks.values_list("key", flat=True)) == [
        f"p{i:04d}-{c}" for i in range(3) for c in ("appeal", "flaws")
    ]
    assert dict(StudyModel.objects.filter(study=study).values_list("model_version__name", "role")) == {
        MODEL_A: "A",
        MODEL_B: "B",
    }
    for task in study.tasks.all():
        pair = list(task.task_images.order_by("position").select_related("image"))
        assert {ti.image.model_version_id for ti in pair} == {model_a.pk, model_b.pk}
        assert {ti.image.index for ti in pair} == {0}


def test_ab_sides_are_not_fixed(prompt_set, model_a, model_b, tmp_path):
    """Over many tasks model A appears on both sides."""
    lefts = set()
    for i in range(8):
        study = study_create(
            name=f"ab{i}", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b]
        )
        lefts |= set(
            TaskImage.objects.filter(task__study=study, position=0).values_list(
                "image__model_version_id", flat=True
            )
        )
    assert lefts == {model_a.pk, model_b.pk}  # fails with probability 2 · 2^-48


def test_ab_criteria_can_be_limited(prompt_set, model_a, model_b):
    """A study for appeal only has one task per prompt."""
    study = study_create(
        name="appeal",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=[model_a, model_b],
        criteria=["appeal"],
    )
    assert set(study.tasks.values_list("criterion", flat=True)) == {"appeal"}
    assert study.tasks.count() == 3


def test_ab_shows_the_image_the_settings_name(prompt_set, model_a, model_b):
    """image_index picks which of a prompt's images is compared."""
    study = study_create(
        name="ab3", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], image_index=3
    )
    assert set(TaskImage.objects.filter(task__study=study).values_list("image__index", flat=True)) == {3}


def test_alignment_has_one_task_per_image_with_its_prompt(prompt_set, model_a, model_b):
    """Alignment tasks cover each model's shown image of every prompt that has questions."""
    study = study_create(
        name="al", kind="alignment", prompt_set=prompt_set, model_versions=[model_a, model_b]
    )
    assert study.tasks.count() == 6
    models = TaskImage.objects.filter(task__study=study).values_list("image__model_version__name", flat=True)
    assert sorted(models) == sorted([MODEL_A] * 3 + [MODEL_B] * 3)


@pytest.mark.parametrize(
    "kind, count, message",
    [
        (
            "best_worst",
            2,
            errors.WRONG_MODEL_COUNT.format(kind="Best/worst of five", expected="one model version", got=2),
        ),
        (
            "ab",
            1,
            errors.WRONG_MODEL_COUNT.format(kind="A/B comparison", expected="two model versions", got=1),
        ),
        (
            "alignment",
            0,
            errors.WRONG_MODEL_COUNT.format(
                kind="Text alignment", expected="at least one model version", got=0
            ),
        ),
    ],
)
def test_it_checks_the_number_of_models(prompt_set, model_a, model_b, kind, count, message):
    """Each kind takes its number of model versions."""
    with pytest.raises(InvalidInput) as caught:
        study_create(name="x", kind=kind, prompt_set=prompt_set, model_versions=[model_a, model_b][:count])
    assert caught.value.message == message
    assert not Study.objects.exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"criteria": []}, errors.NO_CRITERIA),
        ({"criteria": ["beauty"]}, errors.UNKNOWN_CRITERION.format(criterion="beauty")),
        ({"overlap": 0}, errors.OVERLAP_RANGE.format(overlap=0)),
        ({"lease_seconds": 5}, errors.LEASE_RANGE.format(seconds=5)),
    ],
)
def test_it_validates_the_settings(prompt_set, model_a, model_b, kwargs, message):
    """Bad settings are refused before anything is created."""
    with pytest.raises(InvalidInput) as caught:
        study_create(name="x", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], **kwargs)
    assert caught.value.message == message
    assert not Study.objects.exists()


def test_it_refuses_comparing_a_model_with_itself(prompt_set, model_a):
    """A/B needs two different models."""
    with pytest.raises(InvalidInput, match=errors.SAME_MODEL_TWICE):
        study_create(name="x", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_a])


def test_it_names_prompts_without_enough_images(prompt_set, model_a):
    """A prompt with four images cannot be a best/worst task; the error names it."""
    GeneratedImage.objects.filter(model_version=model_a, prompt__position=1, index=4).delete()
    with pytest.raises(InvalidInput) as caught:
        study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    assert caught.value.message == errors.MISSING_IMAGES.format(
        count=1, what="5 images", model=MODEL_A, examples="'a dog and a cat, take 1'"
    )
    assert not Study.objects.exists() and not Task.objects.exists()
    study = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], skip_incomplete=True
    )
    assert study.tasks.count() == 2


def test_it_refuses_a_taken_name(prompt_set, model_a):
    """Study names are unique."""
    study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    with pytest.raises(InvalidInput, match="already exists"):
        study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])


def test_overlap_is_fixed_once_a_judgment_exists(prompt_set, model_a, annotators):
    """N can change before the first judgment, not after."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    study = study_update(study=study, overlap=3)
    assert study.overlap == 3
    (lease,) = assignments_next(study_id=study.pk, annotator=annotators[0]).leases
    judgment_submit(
        token=lease.token,
        annotator=annotators[0],
        client_id=uuid.uuid4(),
        answer={"positive": 0, "negative": 1},
    )
    with pytest.raises(Conflict, match=errors.OVERLAP_LOCKED):
        study_update(study=study, overlap=5)
    assert Study.objects.get(pk=study.pk).overlap == 3
    study_update(study=study, status="paused")
    assert Study.objects.get(pk=study.pk).status == "paused"


def test_gold_answers_are_validated_like_annotators_answers(prompt_set, model_a):
    """A gold answer must be a valid answer for its task."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    task = task_set_gold(study=study, task_key="p0001", answer={"positive": 2, "negative": 0})
    assert (task.is_gold, task.gold_answer) == (True, {"positive": 2, "negative": 0})
    with pytest.raises(InvalidInput, match=errors.SAME_POSITIVE_NEGATIVE):
        task_set_gold(study=study, task_key="p0002", answer={"positive": 2, "negative": 2})
    with pytest.raises(InvalidInput, match="no task 'p9999'"):
        task_set_gold(study=study, task_key="p9999", answer={"positive": 2, "negative": 0})
    assert task_set_gold(study=study, task_key="p0001", answer=None).is_gold is False
