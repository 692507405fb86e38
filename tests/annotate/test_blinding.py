"""Blinding is a security property (SPEC): nothing an annotator can reach names the model
that made an image. The models here have distinctive names, descriptions and weight
paths; the test collects every byte an annotator can fetch and looks for them."""

import io
import json
import uuid

import pytest
from PIL import Image
from rest_framework.test import APIClient

from annotate.services import study_create
from evalhub.catalog.models import GeneratedImage, ModelVersion

ASSIGNMENT_KEYS = {"token", "kind", "criterion", "prompt", "images", "questions", "choices", "expires_at"}
IMAGE_KEYS = {"position", "url", "width", "height"}


@pytest.fixture
def secrets_of_models(model_a, model_b) -> list[str]:
    """Strings that would identify a model, or an image's catalog identity."""
    for model in (model_a, model_b):
        model.description = f"description-of-{model.name}"
        model.weights_uri = f"/weights/{model.name}/checkpoint-4242"
        model.save()
    images = GeneratedImage.objects.all()
    return (
        [m.name for m in (model_a, model_b)]
        + [m.description for m in (model_a, model_b)]
        + [m.weights_uri for m in (model_a, model_b)]
        + [image.public_id for image in images]
        + [image.sha256 for image in images]
        + [image.file.name for image in images]
        + ["zebracorn", "platypus"]
    )


@pytest.fixture
def studies(prompt_set, model_a, model_b):
    return [
        study_create(name="Study one", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a]),
        study_create(name="Study two", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b]),
        study_create(
            name="Study three", kind="alignment", prompt_set=prompt_set, model_versions=[model_a, model_b]
        ),
    ]


def collect_everything(annotator, studies) -> tuple[list[bytes], list[dict]]:
    """Every response body and header an annotator gets while working through the studies."""
    api = APIClient()
    api.force_login(annotator)
    bodies, assignments = [], []

    def fetch(method, url, data=None):
        response = (
            getattr(api, method)(url, data, format="json") if data is not None else getattr(api, method)(url)
        )
        body = b"".join(response.streaming_content) if response.streaming else response.content
        bodies.append(body)
        bodies.append(json.dumps(dict(response.headers)).encode())
        return response, body

    for url in (
        "/",
        "/annotate/",
        "/api/annotate/studies/",
        "/api/schema/",
        "/catalog/prompt-sets/",
        "/catalog/models/",
    ):
        fetch("get", url)
    for study in studies:
        fetch("get", f"/annotate/studies/{study.pk}/")
        while True:
            response, body = fetch("post", f"/api/annotate/studies/{study.pk}/next/", {"count": 2})
            batch = json.loads(body)["assignments"]
            if not batch:
                break
            assignment = batch[0]
            assignments.append(assignment)
            for image in assignment["images"]:
                _, png = fetch("get", image["url"])
                with Image.open(io.BytesIO(png)) as decoded:
                    bodies.append(json.dumps({k: str(v) for k, v in decoded.info.items()}).encode())
            fetch("post", f"/api/annotate/assignments/{assignment['token']}/heartbeat/")
            fetch(
                "post",
                f"/api/annotate/assignments/{assignment['token']}/submit/",
                {"client_id": str(uuid.uuid4()), "answer": answer_for(assignment)},
            )
            # A second tab's answer and a bad answer: their error messages too.
            fetch(
                "post",
                f"/api/annotate/assignments/{assignment['token']}/submit/",
                {"client_id": str(uuid.uuid4()), "answer": answer_for(assignment)},
            )
            fetch("post", f"/api/annotate/assignments/{assignment['token']}/skip/")
    return bodies, assignments


def answer_for(assignment: dict) -> dict:
    if assignment["kind"] == "ab":
        return {"choice": "left"}
    if assignment["kind"] == "best_worst":
        return {"positive": 0, "negative": 1}
    return {"answers": {str(q["id"]): "yes" for q in assignment["questions"]}}


def test_nothing_an_annotator_sees_identifies_a_model(bob, studies, secrets_of_models):
    """Pages, API payloads, image URLs, image bytes and headers carry no model identity."""
    bodies, assignments = collect_everything(bob, studies)
    assert len(assignments) == 3 + 6 + 6
    everything = b"\n".join(bodies)
    leaked = [secret for secret in secrets_of_models if secret.encode() in everything]
    assert leaked == []


def test_assignment_payloads_hold_only_the_allowed_fields(bob, studies, secrets_of_models):
    """Each assignment has exactly the documented keys; images only position, url and size."""
    _, assignments = collect_everything(bob, studies)
    for assignment in assignments:
        assert set(assignment) == ASSIGNMENT_KEYS
        for image in assignment["images"]:
            assert set(image) == IMAGE_KEYS
            token = assignment["token"]
            assert image["url"] == f"/annotate/images/{token}/{image['position']}.png"


def test_ab_tasks_never_show_the_prompt(bob, studies, secrets_of_models):
    """The A/B page is judged on the images alone."""
    _, assignments = collect_everything(bob, studies)
    assert {a["prompt"] for a in assignments if a["kind"] == "ab"} == {None}


def test_the_same_image_gets_a_different_url_in_each_task(bob, studies, secrets_of_models):
    """URLs are per assignment, so an image seen in a best-of-five cannot be recognised by URL in an A/B."""
    _, assignments = collect_everything(bob, studies)
    urls = [image["url"] for a in assignments for image in a["images"]]
    assert len(urls) == len(set(urls))


def test_served_images_carry_no_metadata(bob, studies, secrets_of_models):
    """The PNGs an annotator downloads hold pixels only."""
    api = APIClient()
    api.force_login(bob)
    assignment = api.post(f"/api/annotate/studies/{studies[1].pk}/next/", {}, format="json").json()[
        "assignments"
    ][0]
    for image in assignment["images"]:
        response = api.get(image["url"])
        assert response["Content-Disposition"] == 'inline; filename="image.png"'
        data = b"".join(response.streaming_content)
        for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf"):
            assert chunk not in data
        assert ModelVersion.objects.filter(name__in=[s for s in secrets_of_models]).count() == 2
