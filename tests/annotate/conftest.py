"""Fixtures for the annotation tests: a prompt set with images from distinctively named
models, and annotator personas."""

import itertools
import json

import pytest

from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import AlignmentQuestion, ModelVersion
from tests.factories import PromptFactory, PromptSetFactory, UserFactory, png_bytes

# Distinctive names: the blinding tests assert none of them reaches an annotator.
MODEL_A = "zebracorn-secret-model-a"
MODEL_B = "platypus-hidden-model-b"
_colours = itertools.count(1)


def unique_png() -> bytes:
    i = next(_colours)
    return png_bytes(color=(i // 65536 % 256, i // 256 % 256, i % 256), size=(8, 6))


def catalog_images(tmp_path, prompt_set, models: list[str], images_per_prompt: int) -> None:
    """Import ``images_per_prompt`` images per prompt for each model, through the real importer."""
    rows = []
    for model in models:
        for prompt in prompt_set.prompts.all():
            for index in range(images_per_prompt):
                name = f"{model}-{prompt.pk}-{index}.png"
                (tmp_path / name).write_bytes(unique_png())
                rows.append(
                    {"prompt": prompt.text, "model": model, "seed": index, "index": index, "image": name}
                )
    generated_images_import(
        prompt_set=prompt_set,
        manifest="\n".join(json.dumps(r) for r in rows),
        source=DirectorySource(tmp_path),
        create_models=True,
    )


@pytest.fixture
def prompt_set(db, tmp_path):
    """Three prompts with two alignment questions each; five images per prompt from two models."""
    prompt_set = PromptSetFactory(name="animals")
    for position in range(3):
        prompt = PromptFactory(
            prompt_set=prompt_set, text=f"a dog and a cat, take {position}", position=position
        )
        AlignmentQuestion.objects.create(
            prompt=prompt, text="Is there one dog?", expected_answer=True, position=0
        )
        AlignmentQuestion.objects.create(
            prompt=prompt, text="Are there other animals present?", expected_answer=False, position=1
        )
    (tmp_path / "imgs").mkdir()
    catalog_images(tmp_path / "imgs", prompt_set, [MODEL_A, MODEL_B], images_per_prompt=5)
    return prompt_set


@pytest.fixture
def model_a(prompt_set):
    return ModelVersion.objects.get(name=MODEL_A)


@pytest.fixture
def model_b(prompt_set):
    return ModelVersion.objects.get(name=MODEL_B)


@pytest.fixture
def annotators(db):
    """Five annotators: dana, eve, finn, gus, hana."""
    return [UserFactory(username=name, role="annotators") for name in ("dana", "eve", "finn", "gus", "hana")]
