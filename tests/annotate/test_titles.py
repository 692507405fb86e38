"""What annotators read about a study never names a model: neutral titles by default, and
no title or guidelines containing a model version's name, from any path."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotate import errors
from annotate.errors import InvalidInput
from annotate.services import study_create, study_update
from annotate.titles import neutral_title
from evalhub.catalog.models import ModelVersion


def names_a_model(field: str, model: str) -> str:
    return errors.NAMES_A_MODEL.format(field=field, model=model)


def test_each_kind_gets_a_neutral_title_by_default(prompt_set, model_a, model_b):
    """The title says what the task is, from the kind and the criteria, and nothing else."""
    made = [
        study_create(
            name=f"{model_a.name} bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a]
        ),
        study_create(
            name=f"{model_a.name} vs {model_b.name}",
            kind="ab",
            prompt_set=prompt_set,
            model_versions=[model_a, model_b],
            criteria=["appeal"],
        ),
        study_create(
            name=f"{model_b.name} al", kind="alignment", prompt_set=prompt_set, model_versions=[model_b]
        ),
    ]
    assert [study.title for study in made] == [
        "Pick the best and the worst of five images",
        "Compare two images: visual appeal",
        "Answer questions about an image",
    ]
    assert neutral_title("ab", ["appeal", "flaws"]) == "Compare two images: visual flaws and visual appeal"


@pytest.mark.parametrize("field", ["title", "guidelines"])
def test_a_text_naming_any_model_is_refused_whatever_its_case(prompt_set, model_a, model_b, field):
    """Any model version's name, not only the study's own, in any case."""
    other = ModelVersion.objects.create(name="SD15-SimPO")
    for text, named in ((f"Round 1: {model_b.name.upper()}", model_b.name), ("about sd15-simpo", other.name)):
        with pytest.raises(InvalidInput) as refused:
            study_create(
                name="x", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], **{field: text}
            )
        assert refused.value.message == names_a_model(field, named)


def test_renaming_checks_the_title_and_the_guidelines(prompt_set, model_a):
    """study_update refuses a model name and an empty title; the researchers' name is free."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    with pytest.raises(InvalidInput, match="must not name a model"):
        study_update(study=study, title=f"More {model_a.name}")
    with pytest.raises(InvalidInput, match="must not name a model"):
        study_update(study=study, guidelines=f"Judge {model_a.name} kindly")
    with pytest.raises(InvalidInput) as empty:
        study_update(study=study, title="  ")
    assert empty.value.message == errors.TITLE_EMPTY
    study = study_update(study=study, name=f"{model_a.name}, round 2", title="Round 2")
    assert (study.name, study.title) == (f"{model_a.name}, round 2", "Round 2")


def test_the_api_refuses_a_model_name_on_create_and_on_rename(alice, prompt_set, model_a):
    """POST and PATCH /api/studies/ answer 400 with the reason; the output names both fields."""
    api = APIClient()
    api.force_login(alice)
    body = {
        "name": "api",
        "kind": "best_worst",
        "prompt_set": prompt_set.name,
        "model_versions": [model_a.name],
    }
    refused = api.post("/api/studies/", {**body, "title": f"{model_a.name}?"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["detail"] == names_a_model("title", model_a.name)
    created = api.post("/api/studies/", body, format="json").json()
    assert created["title"] == "Pick the best and the worst of five images"
    patch = api.patch(f"/api/studies/{created['id']}/", {"title": model_a.name.title()}, format="json")
    assert patch.status_code == 400
    assert (
        api.patch(f"/api/studies/{created['id']}/", {"title": "Round 2"}, format="json").json()["title"]
        == "Round 2"
    )


def test_the_form_refuses_a_model_name(client, alice, prompt_set, model_a):
    """The researcher's form shows the reason and creates nothing."""
    client.force_login(alice)
    response = client.post(
        reverse("annotate:study_create"),
        {
            "name": "form",
            "title": f"Rate {model_a.name}",
            "kind": "best_worst",
            "prompt_set": prompt_set.pk,
            "model_a": model_a.pk,
            "overlap": 5,
            "lease_seconds": 300,
            "image_index": 0,
        },
    )
    assert response.status_code == 200
    assert names_a_model("title", model_a.name) in response.content.decode().replace("&#x27;", "'")


def test_annotators_see_the_title_and_never_the_name(client, bob, prompt_set, model_a):
    """The study list, its API and the labeling page show the title only."""
    study = study_create(
        name=f"{model_a.name} round 1", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a]
    )
    client.force_login(bob)
    pages = [
        client.get(reverse("annotate:home")).content.decode(),
        client.get(reverse("annotate:label", args=[study.pk])).content.decode(),
        client.get("/api/annotate/studies/").content.decode(),
    ]
    for page in pages:
        assert study.title in page and model_a.name not in page
