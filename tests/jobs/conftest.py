"""Fixtures for the jobs tests: a base version with real (tiny) weights, and a best/worst
study over its images answered by five annotators through the real submit path."""

import shutil
import uuid

import pytest

from annotate.assignment import assignments_next
from annotate.models import Study
from annotate.services import study_create
from annotate.submission import judgment_submit
from tests.annotate.conftest import MODEL_A, MODEL_B, annotators, prompt_set  # noqa: F401  (fixtures)
from training.tiny import build_tiny_pipeline


@pytest.fixture(scope="session")
def tiny_unet_folder(tmp_path_factory):
    return build_tiny_pipeline("unet", tmp_path_factory.mktemp("weights") / "tiny-unet", seed=0)


@pytest.fixture
def jobs_dir(settings, tmp_path):
    settings.EVALHUB_JOBS_DIR = tmp_path / "jobs"
    return settings.EVALHUB_JOBS_DIR


@pytest.fixture
def base_version(prompt_set, tiny_unet_folder, tmp_path):  # noqa: F811
    from evalhub.catalog.models import ModelVersion

    weights = tmp_path / "weights"
    shutil.copytree(tiny_unet_folder, weights)
    version = ModelVersion.objects.get(name=MODEL_A)
    version.weights_uri = str(weights)
    version.save()
    return version


@pytest.fixture
def other_version(prompt_set):  # noqa: F811
    from evalhub.catalog.models import ModelVersion

    return ModelVersion.objects.get(name=MODEL_B)


def answer_best_worst(study: Study, users) -> None:
    """Each user answers every task: image 0 best, image 1 worst, so every prompt is decided."""
    for user in users:
        while leases := assignments_next(study_id=study.pk, annotator=user).leases:
            judgment_submit(
                token=leases[0].token,
                annotator=user,
                client_id=uuid.uuid4(),
                answer={"positive": 0, "negative": 1},
            )


@pytest.fixture
def preference_study(prompt_set, base_version, annotators):  # noqa: F811
    study = study_create(
        name="prefs", kind=Study.Kind.BEST_WORST, prompt_set=prompt_set, model_versions=[base_version]
    )
    answer_best_worst(study, annotators)
    return study
