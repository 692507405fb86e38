"""The data every study is built from: prompts, their alignment questions, model
versions and the images those versions generated (paper §4.1)."""

import secrets

from django.db import models
from django.db.models import Q


class PromptSet(models.Model):
    """A named list of prompts, imported together and evaluated together."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("import_data", "Can import prompt sets and generated images")]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    """One text prompt; its position keeps the order of the imported file."""

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    category = models.CharField(max_length=100, blank=True)
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["prompt_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["prompt_set", "text"], name="prompt_text_unique_in_set"),
            models.UniqueConstraint(fields=["prompt_set", "position"], name="prompt_position_unique_in_set"),
        ]

    def __str__(self) -> str:
        return self.text


class AlignmentQuestion(models.Model):
    """A binary text-alignment question about a prompt's image (paper §4.1).

    ``expected_answer`` is what a faithful image answers: "is there one dog?" expects
    yes, "are there other animals present?" expects no.
    """

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="questions")
    text = models.CharField(max_length=500)
    expected_answer = models.BooleanField(default=True)
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["prompt", "position"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "position"], name="question_position_unique_in_prompt"),
        ]

    def __str__(self) -> str:
        return f"{self.text} (expects {'yes' if self.expected_answer else 'no'})"


class ModelVersion(models.Model):
    """A text-to-image model at one point of its post-training lineage."""

    class Kind(models.TextChoices):
        BASE = "base", "Base"
        SFT = "sft", "SFT"
        DPO = "dpo", "DPO"
        SIMPO = "simpo", "SimPO"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BASE)
    weights_uri = models.CharField(
        max_length=1000, blank=True, help_text="Where the weights live: a folder or URI."
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # Set when a training job produced this version: what exactly made it.
    training_config = models.JSONField(default=dict, blank=True)
    training_data_hash = models.CharField(
        max_length=64, blank=True, help_text="Content hash of the preference export it was trained on."
    )
    final_metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def lineage(self) -> list["ModelVersion"]:
        """This version and its ancestors, newest first."""
        chain, node, seen = [], self, set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            chain.append(node)
            node = node.parent
        return chain


def new_public_id() -> str:
    """An opaque random identifier: image URLs and file names carry nothing else."""
    return secrets.token_hex(16)


class GeneratedImage(models.Model):
    """An image a model version generated for a prompt.

    The file is stored under ``public_id`` only, its metadata stripped, so that neither
    the URL nor the bytes tell an annotator which model drew it (SPEC "Blinding").
    """

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="images")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="images")
    seed = models.BigIntegerField()
    index = models.PositiveIntegerField(help_text="Position among this prompt's images.")
    settings = models.JSONField(default=dict, blank=True, help_text="Generation settings.")
    file = models.FileField(upload_to="images/", max_length=200)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prompt", "model_version", "index"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "prompt", "index"], name="image_index_unique"),
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="image_size_positive"),
        ]

    def __str__(self) -> str:
        return f"image {self.public_id}"
