"""Exposure control: nobody meets an image both blinded and revealed, whichever came first."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from annotate import errors
from annotate.assignment import assignments_next, lease_skip
from annotate.errors import InvalidInput
from annotate.exposure import study_exposure_blocks
from annotate.judgment_import import judgments_import
from annotate.models import ImageExposure, Study, TaskImage
from annotate.services import study_create, study_recount
from tests.factories import UserFactory


def take_all(study, annotator) -> list[set[int]]:
    """Lease every task the annotator may take in ``study``; the image ids of each."""
    taken = []
    while leases := assignments_next(study_id=study.pk, annotator=annotator).leases:
        for lease in leases:
            taken.append(
                set(TaskImage.objects.filter(task_id=lease.task_id).values_list("image_id", flat=True))
            )
            lease_skip(token=lease.token, annotator=annotator)
    return taken


def first_images(prompt_set, model):
    return set(
        prompt_set.prompts.filter(images__model_version=model, images__index=0).values_list(
            "images", flat=True
        )
    )


@pytest.fixture
def ab(prompt_set, model_a, model_b):
    return study_create(name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b])


@pytest.fixture
def alignment(prompt_set, model_a):
    return study_create(name="al", kind="alignment", prompt_set=prompt_set, model_versions=[model_a])


def test_an_annotator_who_saw_images_with_their_prompt_gets_no_ab_task_with_them(bob, ab, alignment, model_a):
    """Alignment first: every A/B task holds one of model A's first images, all seen with their prompt."""
    assert len(take_all(alignment, bob)) == 3
    assert take_all(ab, bob) == []
    dana = UserFactory(username="dana", role="annotators")
    assert len(take_all(ab, dana)) == 6  # someone who saw nothing gets them all


def test_an_annotator_who_judged_images_blind_gets_no_revealing_task_with_them(
    bob, ab, alignment, prompt_set, model_a
):
    """A/B first: the alignment and best/worst tasks of those images are barred, the others are not."""
    (lease,) = assignments_next(study_id=ab.pk, annotator=bob).leases
    seen = set(TaskImage.objects.filter(task_id=lease.task_id).values_list("image_id", flat=True))
    alignment_images = set().union(*take_all(alignment, bob))
    assert len(alignment_images) == 2 and not alignment_images & seen
    best_worst = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    assert len(take_all(best_worst, bob)) == 2


def test_a_lease_writes_its_images_as_seen_in_its_context(bob, ab, alignment):
    """Blind for an isolated A/B study, revealing for the others; a skipped task still counts."""
    (lease,) = assignments_next(study_id=ab.pk, annotator=bob).leases
    lease_skip(token=lease.token, annotator=bob)
    blind = set(TaskImage.objects.filter(task_id=lease.task_id).values_list("image_id", flat=True))
    assert set(bob.exposures.filter(context="blind").values_list("image_id", flat=True)) == blind
    (lease,) = assignments_next(study_id=alignment.pk, annotator=bob).leases
    assert bob.exposures.filter(context="revealing").get().image_id == lease.task.task_images.get().image_id


def test_a_shared_ab_study_neither_checks_nor_restricts(bob, alignment, prompt_set, model_a, model_b):
    """Opting out: its tasks ignore what the annotator saw, and what it shows bars nothing."""
    shared = study_create(
        name="shared", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], exposure="shared"
    )
    assert len(take_all(alignment, bob)) == 3
    assert len(take_all(shared, bob)) == 6
    assert not bob.exposures.filter(context="blind").exists()
    dana = UserFactory(username="dana", role="annotators")
    take_all(shared, dana)
    assert len(take_all(alignment, dana)) == 3


def test_exposure_is_a_setting_of_ab_studies(prompt_set, model_a, model_b, ab):
    """A/B studies are isolated by default; the other kinds take no setting; values are checked."""
    assert ab.exposure == Study.Exposure.ISOLATED
    with pytest.raises(InvalidInput, match="exposure is a setting of A/B studies"):
        study_create(
            name="x", kind="alignment", prompt_set=prompt_set, model_versions=[model_a], exposure="shared"
        )
    with pytest.raises(InvalidInput) as raised:
        study_create(
            name="y", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], exposure="loose"
        )
    assert raised.value.message == errors.UNKNOWN_EXPOSURE.format(exposure="loose")


def test_the_api_and_the_command_take_the_exposure_setting(alice, prompt_set, model_a, model_b):
    """``exposure`` in POST /api/studies/ and ``--exposure`` on create_study."""
    api = APIClient()
    api.force_login(alice)
    response = api.post(
        "/api/studies/",
        {
            "name": "api",
            "kind": "ab",
            "prompt_set": prompt_set.name,
            "model_versions": [model_a.name, model_b.name],
            "exposure": "shared",
        },
        format="json",
    )
    assert response.status_code == 201 and response.json()["exposure"] == "shared"
    call_command(
        "create_study", "cli", "--kind", "ab", "--prompt-set", prompt_set.name,
        "--model", model_a.name, "--model", model_b.name, "--exposure", "shared",
    )  # fmt: skip
    assert Study.objects.get(name="cli").exposure == "shared"


def test_the_blocked_tasks_are_counted_with_their_reason(ab, alignment, annotators):
    """With five annotators and N = 5, one who saw the images revealed leaves tasks short."""
    dana = annotators[0]
    take_all(alignment, dana)
    blocks = study_exposure_blocks(ab)
    assert (blocks.annotators, blocks.open_tasks) == (5, 6)
    assert (blocks.short, blocks.by_exposure, blocks.by_pool, blocks.barred_annotators) == (6, 6, 0, 1)
    assert study_exposure_blocks(alignment).short == 3  # dana skipped them all: only four left


def test_the_study_page_says_how_many_tasks_are_blocked_and_why(client, alice, ab, alignment, annotators):
    """The researcher reads the count, the reason and what to do."""
    take_all(alignment, annotators[0])
    client.force_login(alice)
    page = client.get(reverse("results:study", args=[ab.pk])).content.decode()
    assert "6 of 6 open tasks cannot get their 5 judgments" in page
    assert "6 because of exposure control: 1 annotator" in page
    assert "saw their images with the prompt or in a one-model study" in page
    assert "exposure: shared" in page
    other = client.get(reverse("results:study", args=[alignment.pk])).content.decode()
    assert "because too few annotators are left" in other and "exposure control" not in other


def test_imported_judgments_count_as_seen(ab, alignment, model_a):
    """A vendor's alignment answers bar their annotators from the A/B tasks of those images."""
    task = alignment.tasks.first()
    answers = ", ".join(f'""{q.pk}"": true' for q in task.prompt.questions.all())
    judgments_import(
        text=f'study,task_key,annotator,answer\nal,{task.key},vendor1,"{{""answers"": {{{answers}}}}}"\n'
    )
    image = task.task_images.get().image_id
    vendor = ImageExposure.objects.get(image_id=image, context="revealing").annotator
    assert vendor.username == "vendor1"
    assert study_recount(study_id=alignment.pk) == 3  # recounting writes nothing twice
    assert ImageExposure.objects.filter(annotator=vendor).count() == 1
    taken = take_all(ab, vendor)
    assert len(taken) == 4 and all(image not in images for images in taken)
