"""Equal sizes in A/B: two models whose images differ in size are refused, or served both
at a common display size the researcher chose."""

import io
import itertools
import json

import pytest
from PIL import Image
from rest_framework.test import APIClient

from annotate.errors import InvalidInput
from annotate.models import ResampledImage, Study, Task, TaskImage
from annotate.services import study_create
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import ModelVersion
from tests.factories import PromptFactory, PromptSetFactory, png_bytes

_colours = itertools.count(10)


@pytest.fixture
def sized(db, tmp_path):
    """Two prompts; "wide-model" draws 12×10 images, "small-model" 8×8."""
    prompt_set = PromptSetFactory(name="sizes")
    rows = []
    for position in range(2):
        prompt = PromptFactory(prompt_set=prompt_set, text=f"prompt {position}", position=position)
        for model, size in (("wide-model", (12, 10)), ("small-model", (8, 8))):
            name = f"{model}-{position}.png"
            (tmp_path / name).write_bytes(png_bytes(color=(next(_colours), 40, 90), size=size))
            rows.append({"prompt": prompt.text, "model": model, "seed": 1, "index": 0, "image": name})
    generated_images_import(
        prompt_set=prompt_set,
        manifest="\n".join(json.dumps(row) for row in rows),
        source=DirectorySource(tmp_path),
        create_models=True,
    )
    return prompt_set, [ModelVersion.objects.get(name=n) for n in ("wide-model", "small-model")]


def test_an_ab_study_of_two_sizes_is_refused_with_the_sizes_named(sized):
    """Nothing is created, and the message says which sizes and how often."""
    prompt_set, models = sized
    with pytest.raises(InvalidInput, match="A 12×10, B 8×8 in 2 prompt"):
        study_create(name="ab", kind="ab", prompt_set=prompt_set, model_versions=models)
    assert not Study.objects.exists()


def test_a_display_size_serves_both_sides_resampled_to_it(sized, bob):
    """Payload sizes, served pixels and the study's record all say the one size."""
    prompt_set, models = sized
    study = study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=models, display_size="16x12"
    )
    assert study.config["display_size"] == [16, 12]
    assert set(ResampledImage.objects.values_list("width", "height")) == {(16, 12)}
    assert TaskImage.objects.filter(task__study=study, resampled__isnull=True).count() == 0
    api = APIClient()
    api.force_login(bob)
    assignment = api.post(f"/api/annotate/studies/{study.pk}/next/", {}, format="json").json()["assignments"][
        0
    ]
    for image in assignment["images"]:
        assert (image["width"], image["height"]) == (16, 12)
        png = api.get(image["url"]).content
        with Image.open(io.BytesIO(png)) as decoded:
            assert decoded.size == (16, 12)


def test_resampled_copies_are_made_once_per_image_and_size(sized):
    """A second study at the same size reuses them; another size makes new ones."""
    prompt_set, models = sized
    study_create(name="one", kind="ab", prompt_set=prompt_set, model_versions=models, display_size="16x12")
    study_create(name="two", kind="ab", prompt_set=prompt_set, model_versions=models, display_size="16 x 12")
    assert ResampledImage.objects.count() == 4
    study_create(name="three", kind="ab", prompt_set=prompt_set, model_versions=models, display_size="8x8")
    assert ResampledImage.objects.count() == 8


@pytest.mark.parametrize("value", ["16", "16x", "0x10", "5000x10", "axb"])
def test_a_display_size_is_checked(sized, value):
    """WIDTHxHEIGHT with sides in range, or a clear error."""
    prompt_set, models = sized
    with pytest.raises(InvalidInput, match="display size must be WIDTHxHEIGHT"):
        study_create(name="ab", kind="ab", prompt_set=prompt_set, model_versions=models, display_size=value)


def test_a_display_size_belongs_to_ab_studies(sized):
    """The other kinds show one model's images, whose size tells nothing apart."""
    prompt_set, models = sized
    with pytest.raises(InvalidInput, match="applies to A/B studies only"):
        study_create(
            name="al", kind="alignment", prompt_set=prompt_set, model_versions=models, display_size="8x8"
        )


def test_a_failed_creation_leaves_no_resampled_file(sized, monkeypatch, media_root):
    """The files made for a study that is rolled back are removed with its rows."""
    prompt_set, models = sized
    stored = sorted(media_root.rglob("*.png"))
    assert len(stored) == 4

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Task.objects, "bulk_create", fail)
    with pytest.raises(RuntimeError):
        study_create(name="ab", kind="ab", prompt_set=prompt_set, model_versions=models, display_size="16x12")
    assert not ResampledImage.objects.exists()
    assert sorted(media_root.rglob("*.png")) == stored


def test_the_form_and_the_api_take_a_display_size(client, alice, sized):
    """The researcher's form and POST /api/studies/ pass it through."""
    prompt_set, models = sized
    api = APIClient()
    api.force_login(alice)
    body = {"kind": "ab", "prompt_set": prompt_set.name, "model_versions": [m.name for m in models]}
    refused = api.post("/api/studies/", {**body, "name": "api"}, format="json")
    assert refused.status_code == 400 and "12×10" in refused.json()["detail"]
    created = api.post("/api/studies/", {**body, "name": "api", "display_size": "8x8"}, format="json")
    assert created.status_code == 201 and created.json()["config"]["display_size"] == [8, 8]
    client.force_login(alice)
    client.post(
        "/annotate/research/studies/new/",
        {"name": "form", "kind": "ab", "prompt_set": prompt_set.pk, "model_a": models[0].pk,
         "model_b": models[1].pk, "criteria": ["flaws"], "overlap": 5, "lease_seconds": 300,
         "image_index": 0, "exposure": "isolated", "display_size": "10x10"},
    )  # fmt: skip
    assert Study.objects.get(name="form").config["display_size"] == [10, 10]
