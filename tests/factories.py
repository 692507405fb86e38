"""factory_boy factories and small builders of test inputs."""

import io

import factory
from django.contrib.auth.models import User
from PIL import Image, PngImagePlugin

from evalhub.accounts.roles import user_grant_role
from evalhub.catalog.models import AlignmentQuestion, ModelVersion, Prompt, PromptSet

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        self.save()
        if extracted:
            user_grant_role(user=self, role=extracted)


class PromptSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptSet

    name = factory.Sequence(lambda n: f"prompt set {n}")


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    prompt_set = factory.SubFactory(PromptSetFactory)
    text = factory.Sequence(lambda n: f"a photo of object {n}")
    position = factory.Sequence(lambda n: n)


class AlignmentQuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlignmentQuestion

    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f"Is there object {n}?")
    position = factory.Sequence(lambda n: n)


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"model-{n}")


def png_bytes(color=(200, 30, 30), size=(16, 12), text_chunks: dict | None = None) -> bytes:
    """A small PNG, optionally carrying tEXt chunks (for the metadata-stripping tests)."""
    image = Image.new("RGB", size, color)
    info = PngImagePlugin.PngInfo()
    for key, value in (text_chunks or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def jpeg_with_exif(color=(30, 200, 30), size=(20, 10), orientation: int = 1, software: str = "") -> bytes:
    """A JPEG with EXIF tags: orientation and a software name."""
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[0x0112] = orientation
    if software:
        exif[0x0131] = software
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


SHAPE_PROMPTS = ["a red circle", "a blue square", "a green triangle"]


def shapes_prompt_set(name: str = "shapes"):
    """A prompt set of the three :data:`SHAPE_PROMPTS` and a model version ``sd15-base``
    for manifests to name."""
    prompt_set = PromptSetFactory(name=name)
    for position, text in enumerate(SHAPE_PROMPTS):
        PromptFactory(prompt_set=prompt_set, text=text, position=position)
    ModelVersionFactory(name="sd15-base")
    return prompt_set
