"""The create_study management command."""

import io

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Study


def test_it_creates_an_ab_study(prompt_set, model_a, model_b):
    """The command takes models in A, B order and reports the tasks."""
    out = io.StringIO()
    call_command(
        "create_study",
        "flaws only",
        "--kind",
        "ab",
        "--prompt-set",
        "animals",
        "--model",
        model_a.name,
        "--model",
        model_b.name,
        "--criteria",
        "flaws",
        "--overlap",
        "3",
        stdout=out,
    )
    study = Study.objects.get()
    assert (
        f"Created study 'flaws only' (id {study.pk}): 3 tasks, 3 annotators each; annotators see it as "
        "'Compare two images: visual flaws'." in out.getvalue()
    )
    assert list(study.study_models.order_by("role").values_list("model_version__name", flat=True)) == [
        model_a.name,
        model_b.name,
    ]


def test_it_reports_errors_clearly(prompt_set, model_a):
    """Unknown names and invalid settings are command errors, nothing is created."""
    with pytest.raises(CommandError, match="no model version named 'nope'"):
        call_command("create_study", "x", "--kind", "ab", "--prompt-set", "animals", "--model", "nope")
    with pytest.raises(CommandError, match="needs two model versions, got 1"):
        call_command("create_study", "x", "--kind", "ab", "--prompt-set", "animals", "--model", model_a.name)
    assert not Study.objects.exists()


def test_it_takes_a_title_an_exposure_and_a_display_size(prompt_set, model_a, model_b):
    """--title, --exposure and --display-size reach the study; a title naming a model is refused."""
    models = ["--model", model_a.name, "--model", model_b.name]
    with pytest.raises(CommandError, match="must not name a model: it contains 'platypus-hidden-model-b'"):
        call_command("create_study", "x", "--kind", "ab", "--prompt-set", "animals", *models,
                     "--title", "Is PLATYPUS-hidden-model-b better?")  # fmt: skip
    call_command("create_study", "x", "--kind", "ab", "--prompt-set", "animals", *models,
                 "--title", "Round 2", "--exposure", "shared", "--display-size", "16x12")  # fmt: skip
    study = Study.objects.get()
    assert (study.title, study.exposure, study.config["display_size"]) == ("Round 2", "shared", [16, 12])
