"""Blinding is a security property (SPEC): an annotator who hashes, measures and remembers
everything they are shown learns no model and no hidden prompt, not even across studies.

The hostile annotator here works through a best/worst study, a text-alignment study and
an A/B study over the same images (one model's five images per prompt, and both models'
first image), created in every order, taking one task from each study in turn. They keep
every byte the server sends them: pages, payloads, images, headers and error messages.
"""

import hashlib
import io
import itertools
import json
import uuid
from dataclasses import dataclass

import pytest
from PIL import Image
from rest_framework.test import APIClient

from annotate.services import study_create
from evalhub.catalog.models import GeneratedImage

KINDS = ("best_worst", "alignment", "ab")
ASSIGNMENT_KEYS = {"token", "kind", "criterion", "prompt", "images", "questions", "choices", "expires_at"}
IMAGE_KEYS = {"position", "url", "width", "height"}
# Equal lengths for the same pixels in two tasks: each serve's length is one of 4,096
# (annotate.served_png), so even two such pairs in one run would be a one-in-millions event.
EQUAL_LENGTH_PAIRS_ALLOWED = 1


@dataclass(frozen=True)
class Served:
    """One image as the annotator received it."""

    kind: str  # the task's kind
    token: str
    position: int
    body: bytes
    pixels: str  # a hash of the decoded pixels and size


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


def three_studies(order, prompt_set, model_a, model_b) -> list:
    """The three kinds over the same images, created in ``order``, named the way
    researchers name studies: after their models."""
    models = {"best_worst": [model_a], "alignment": [model_a, model_b], "ab": [model_a, model_b]}
    return [
        study_create(
            name=f"{kind}: {' vs '.join(m.name for m in models[kind])}",
            kind=kind,
            prompt_set=prompt_set,
            model_versions=models[kind],
        )
        for kind in order
    ]


@pytest.fixture(params=list(itertools.permutations(KINDS)), ids="-".join)
def studies_in_every_order(request, prompt_set, model_a, model_b, secrets_of_models):
    return three_studies(request.param, prompt_set, model_a, model_b)


@pytest.fixture
def studies(prompt_set, model_a, model_b):
    return three_studies(KINDS, prompt_set, model_a, model_b)


def pixel_hash(png: bytes) -> str:
    with Image.open(io.BytesIO(png)) as decoded:
        rgba = decoded.convert("RGBA")
        return hashlib.sha256(repr(rgba.size).encode() + rgba.tobytes()).hexdigest()


def work_through(annotator, studies) -> tuple[list[bytes], list[Served], list[dict]]:
    """Every response body and header the annotator gets while taking one task from each
    study in turn until none has any left for them."""
    api = APIClient()
    api.force_login(annotator)
    bodies, served, assignments = [], [], []

    def fetch(method, url, data=None):
        response = (
            getattr(api, method)(url, data, format="json") if data is not None else getattr(api, method)(url)
        )
        body = b"".join(response.streaming_content) if response.streaming else response.content
        bodies.append(body)
        bodies.append(json.dumps(dict(response.headers)).encode())
        return response, body

    for url in ("/", "/annotate/", "/api/annotate/studies/", "/api/schema/", "/catalog/prompt-sets/"):
        fetch("get", url)
    fetch("post", "/api/annotate/assignments/0123456789abcdef0123456789abcdef/submit/", {})
    for study in studies:
        fetch("get", f"/annotate/studies/{study.pk}/")
    working = list(studies)
    while working:
        for study in list(working):
            # One task at a time: every study gets a turn before one study's tasks reveal
            # the images of all three prompts.
            _, body = fetch("post", f"/api/annotate/studies/{study.pk}/next/", {"count": 1})
            batch = json.loads(body)["assignments"]
            if not batch:
                working.remove(study)
                continue
            assignment = batch[0]
            assignments.append(assignment)
            for image in assignment["images"]:
                _, png = fetch("get", image["url"])
                _, again = fetch("get", image["url"])
                assert again == png, "a task's image is the same bytes on every fetch"
                with Image.open(io.BytesIO(png)) as decoded:
                    bodies.append(json.dumps({k: str(v) for k, v in decoded.info.items()}).encode())
                served.append(
                    Served(assignment["kind"], assignment["token"], image["position"], png, pixel_hash(png))
                )
            submit = f"/api/annotate/assignments/{assignment['token']}/submit/"
            fetch("post", f"/api/annotate/assignments/{assignment['token']}/heartbeat/")
            fetch("post", submit, {"client_id": str(uuid.uuid4()), "answer": {"nonsense": 1}})
            fetch("post", submit, {"client_id": str(uuid.uuid4()), "answer": answer_for(assignment)})
            # A second tab's answer and a skip after answering: their error messages too.
            fetch("post", submit, {"client_id": str(uuid.uuid4()), "answer": answer_for(assignment)})
            fetch("post", f"/api/annotate/assignments/{assignment['token']}/skip/")
    fetch("get", "/api/annotate/studies/")
    return bodies, served, assignments


def answer_for(assignment: dict) -> dict:
    if assignment["kind"] == "ab":
        return {"choice": "left"}
    if assignment["kind"] == "best_worst":
        return {"positive": 0, "negative": 1}
    return {"answers": {str(q["id"]): "yes" for q in assignment["questions"]}}


def test_a_hostile_annotator_links_no_image_across_contexts_and_learns_no_model(
    bob, studies_in_every_order, secrets_of_models
):
    """In every order of creation: (a) no image judged blind has the pixels of one seen with
    its prompt or in a one-model study; (b) no two tasks' images are the same bytes, and the
    same pixels come at equal lengths no more often than chance; (c) nothing names a model."""
    bodies, served, _ = work_through(bob, studies_in_every_order)

    blind = {s.pixels for s in served if s.kind == "ab"}
    revealed = {s.pixels for s in served if s.kind != "ab"}
    assert blind and revealed, "the annotator worked in both contexts"
    assert blind & revealed == set()

    assert len({hashlib.sha256(s.body).digest() for s in served}) == len(served)
    same_pixels = [(x, y) for x, y in itertools.combinations(served, 2) if x.pixels == y.pixels]
    assert same_pixels, "some image was served in two tasks"
    assert sum(len(x.body) == len(y.body) for x, y in same_pixels) <= EQUAL_LENGTH_PAIRS_ALLOWED

    everything = b"\n".join(bodies)
    assert [secret for secret in secrets_of_models if secret.encode() in everything] == []


def test_assignment_payloads_hold_only_the_allowed_fields(bob, studies):
    """Each assignment has exactly the documented keys; images only position, url and size."""
    _, _, assignments = work_through(bob, studies)
    for assignment in assignments:
        assert set(assignment) == ASSIGNMENT_KEYS
        for image in assignment["images"]:
            assert set(image) == IMAGE_KEYS
            token = assignment["token"]
            assert image["url"] == f"/annotate/images/{token}/{image['position']}.png"


def test_ab_tasks_never_show_the_prompt(bob, studies):
    """The A/B page is judged on the images alone."""
    _, _, assignments = work_through(bob, studies)
    assert {a["prompt"] for a in assignments if a["kind"] == "ab"} == {None}


def test_the_same_image_gets_a_different_url_in_each_task(bob, studies):
    """URLs are per assignment, so an image met in one task cannot be recognised by URL in another."""
    _, _, assignments = work_through(bob, studies)
    urls = [image["url"] for a in assignments for image in a["images"]]
    assert len(urls) == len(set(urls))


def test_served_images_carry_no_metadata(bob, studies):
    """The PNGs an annotator downloads hold pixels only, whatever chunk makes them unique."""
    _, served, _ = work_through(bob, studies)
    for image in served:
        for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP", b"tIME"):
            assert chunk not in image.body
