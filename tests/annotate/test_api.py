"""The annotation API end to end, per task kind, and who may call what."""

import uuid

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate import errors
from annotate.models import Judgment, Study, Task
from annotate.selectors import _image_url

NEXT = "/api/annotate/studies/{}/next/"
SUBMIT = "/api/annotate/assignments/{}/submit/"


@pytest.fixture
def api():
    return APIClient()


def create_study(api, researcher, **body) -> dict:
    api.force_authenticate(researcher)
    response = api.post("/api/studies/", body, format="json")
    assert response.status_code == 201, response.json()
    api.force_authenticate(None)
    return response.json()


def work_through(api, annotator, study_id: int, answer_for) -> int:
    """Answer every task the API hands this annotator; returns how many."""
    api.force_authenticate(annotator)
    answered = 0
    while True:
        response = api.post(NEXT.format(study_id), {"count": 2}, format="json")
        assert response.status_code == 200, response.json()
        assignments = response.json()["assignments"]
        if not assignments:
            return answered
        assignment = assignments[0]
        submitted = api.post(
            SUBMIT.format(assignment["token"]),
            {"client_id": str(uuid.uuid4()), "answer": answer_for(assignment)},
            format="json",
        )
        assert submitted.status_code == 201, submitted.json()
        answered += 1


def test_a_best_worst_study_end_to_end(api, alice, annotators, prompt_set, model_a):
    """Five annotators each pick a positive and a negative for every prompt."""
    study = create_study(
        api, alice, name="bw", kind="best_worst", prompt_set="animals", model_versions=[model_a.name]
    )
    assert study["progress"]["tasks"] == 3
    for annotator in annotators:
        assert work_through(api, annotator, study["id"], lambda a: {"positive": 4, "negative": 1}) == 3
    assert Judgment.objects.filter(task__study_id=study["id"]).count() == 15
    assert set(Task.objects.values_list("judgment_count", flat=True)) == {5}
    assert [j.answer for j in Judgment.objects.all()] == [{"positive": 4, "negative": 1}] * 15


def test_an_ab_study_end_to_end(api, alice, annotators, prompt_set, model_a, model_b):
    """A/B tasks come without the prompt, with the four choices; sides are resolved server side."""
    study = create_study(
        api,
        alice,
        name="ab",
        kind="ab",
        prompt_set="animals",
        model_versions=[model_a.name, model_b.name],
        overlap=2,
    )
    seen = []

    def choose(assignment):
        seen.append(assignment)
        return {"choice": "left"}

    for annotator in annotators[:2]:
        assert work_through(api, annotator, study["id"], choose) == 6
    assert {a["prompt"] for a in seen} == {None}
    assert {a["criterion"] for a in seen} == {"flaws", "appeal"}
    assert {a["choices"] == ["left", "tie", "right", "reject"] for a in seen} == {True}
    assert {len(a["images"]) for a in seen} == {2}
    for judgment in Judgment.objects.select_related("task"):
        left = judgment.task.task_images.get(position=0).image.model_version_id
        assert judgment.left_model_id == left


def test_an_alignment_study_end_to_end(api, alice, annotators, prompt_set, model_a, model_b):
    """Alignment tasks show the prompt, one image and its questions; answers are yes/no."""
    study = create_study(
        api,
        alice,
        name="al",
        kind="alignment",
        prompt_set="animals",
        model_versions=[model_a.name, model_b.name],
        overlap=1,
    )

    def answer(assignment):
        assert assignment["prompt"].startswith("a dog and a cat")
        assert [q["text"] for q in assignment["questions"]] == [
            "Is there one dog?",
            "Are there other animals present?",
        ]
        return {"answers": {str(q["id"]): "yes" for q in assignment["questions"]}}

    assert work_through(api, annotators[0], study["id"], answer) == 6
    assert {tuple(j.answer["answers"].values()) for j in Judgment.objects.all()} == {(True, True)}


def test_submit_is_idempotent_over_http(api, alice, annotators, prompt_set, model_a, model_b):
    """A resent request answers 200 'duplicate' and records nothing new."""
    study = create_study(
        api, alice, name="ab", kind="ab", prompt_set="animals", model_versions=[model_a.name, model_b.name]
    )
    api.force_authenticate(annotators[0])
    token = api.post(NEXT.format(study["id"]), {}, format="json").json()["assignments"][0]["token"]
    body = {"client_id": str(uuid.uuid4()), "answer": {"choice": "tie"}}
    first = api.post(SUBMIT.format(token), body, format="json")
    second = api.post(SUBMIT.format(token), body, format="json")
    assert (first.status_code, first.json()["status"]) == (201, "recorded")
    assert (second.status_code, second.json()["status"]) == (200, "duplicate")
    assert first.json()["progress"] == second.json()["progress"] == {"done": 1, "remaining": 5}
    other_tab = api.post(
        SUBMIT.format(token), {"client_id": str(uuid.uuid4()), "answer": {"choice": "left"}}, format="json"
    )
    assert (other_tab.status_code, other_tab.json()["detail"]) == (409, errors.ALREADY_ANSWERED)
    assert Judgment.objects.count() == 1


def test_next_leaves_the_progress_out_when_the_page_does_not_ask(api, alice, annotators, prompt_set, model_a):
    """progress: false skips the counts (null), for a page that has them from its last answer."""
    study = create_study(
        api, alice, name="bw", kind="best_worst", prompt_set="animals", model_versions=[model_a.name]
    )
    api.force_authenticate(annotators[0])
    asked = api.post(NEXT.format(study["id"]), {"count": 2}, format="json").json()
    assert asked["progress"] == {"done": 0, "remaining": 3}
    silent = api.post(NEXT.format(study["id"]), {"count": 2, "progress": False}, format="json").json()
    assert silent["progress"] is None
    assert [a["token"] for a in silent["assignments"]] == [a["token"] for a in asked["assignments"]]


def test_annotator_endpoints_take_json_only(api, alice, annotators, prompt_set, model_a):
    """A form-encoded body is refused with 400 and the reason, not read as something else."""
    study = create_study(
        api, alice, name="bw", kind="best_worst", prompt_set="animals", model_versions=[model_a.name]
    )
    api.force_authenticate(annotators[0])
    response = api.post(NEXT.format(study["id"]), {"count": 2}, format="multipart")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, status, detail",
    [
        ({"client_id": "x", "answer": {"choice": "tie"}}, 400, None),
        (
            {"client_id": str(uuid.uuid4()), "answer": {"choice": "sideways"}},
            400,
            errors.BAD_CHOICE.format(choices="left, tie, right, reject"),
        ),
        ({"client_id": str(uuid.uuid4())}, 400, None),
    ],
)
def test_invalid_submissions_get_a_4xx_with_a_reason(
    api, alice, annotators, prompt_set, model_a, model_b, body, status, detail
):
    """Malformed or invalid answers are refused with a message."""
    study = create_study(
        api, alice, name="ab", kind="ab", prompt_set="animals", model_versions=[model_a.name, model_b.name]
    )
    api.force_authenticate(annotators[0])
    token = api.post(NEXT.format(study["id"]), {}, format="json").json()["assignments"][0]["token"]
    response = api.post(SUBMIT.format(token), body, format="json")
    assert response.status_code == status
    if detail:
        assert response.json()["detail"] == detail
    assert not Judgment.objects.exists()


def test_a_task_not_leased_to_you_is_not_found(api, alice, annotators, prompt_set, model_a, model_b):
    """Submitting on someone else's assignment answers 404."""
    study = create_study(
        api, alice, name="ab", kind="ab", prompt_set="animals", model_versions=[model_a.name, model_b.name]
    )
    api.force_authenticate(annotators[0])
    token = api.post(NEXT.format(study["id"]), {}, format="json").json()["assignments"][0]["token"]
    api.force_authenticate(annotators[1])
    response = api.post(
        SUBMIT.format(token), {"client_id": str(uuid.uuid4()), "answer": {"choice": "tie"}}, format="json"
    )
    assert (response.status_code, response.json()["detail"]) == (404, errors.UNKNOWN_ASSIGNMENT)
    api.force_login(annotators[1])
    assert api.get(f"/annotate/images/{token}/0.png").status_code == 404
    api.force_login(annotators[0])
    assert api.get(f"/annotate/images/{token}/0.png").status_code == 200


def test_closed_and_paused_studies_answer_409(api, alice, annotators, prompt_set, model_a):
    """The researcher's pause and close reach annotators as clear conflicts."""
    study = create_study(
        api, alice, name="bw", kind="best_worst", prompt_set="animals", model_versions=[model_a.name]
    )
    for status, message in (("paused", errors.STUDY_PAUSED), ("closed", errors.STUDY_CLOSED)):
        api.force_authenticate(alice)
        assert api.patch(f"/api/studies/{study['id']}/", {"status": status}, format="json").status_code == 200
        api.force_authenticate(annotators[0])
        response = api.post(NEXT.format(study["id"]), {}, format="json")
        assert (response.status_code, response.json()["detail"]) == (409, message)


def test_heartbeat_skip_and_report(api, alice, annotators, prompt_set, model_a):
    """The page's keep-alive, skip and broken-image report work by token."""
    study = create_study(
        api, alice, name="bw", kind="best_worst", prompt_set="animals", model_versions=[model_a.name]
    )
    api.force_authenticate(annotators[0])
    first, second = api.post(NEXT.format(study["id"]), {"count": 2}, format="json").json()["assignments"]
    beat = api.post(f"/api/annotate/assignments/{first['token']}/heartbeat/")
    assert beat.status_code == 200 and beat.json()["expires_at"] >= first["expires_at"]
    assert api.post(f"/api/annotate/assignments/{first['token']}/skip/").json() == {"status": "skipped"}
    report = api.post(
        f"/api/annotate/assignments/{second['token']}/report/",
        {"position": 2, "reason": "blank"},
        format="json",
    )
    assert report.status_code == 201
    assert api.post(f"/api/annotate/assignments/{first['token']}/heartbeat/").status_code == 409


def test_researchers_create_list_and_update_studies(api, alice, prompt_set, model_a, model_b):
    """The researcher API validates input and reports progress."""
    api.force_authenticate(alice)
    bad = api.post(
        "/api/studies/",
        {"name": "x", "kind": "ab", "prompt_set": "animals", "model_versions": [model_a.name]},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["detail"] == errors.WRONG_MODEL_COUNT.format(
        kind="A/B comparison", expected="two model versions", got=1
    )
    unknown = api.post(
        "/api/studies/",
        {"name": "x", "kind": "ab", "prompt_set": "nope", "model_versions": [model_a.name]},
        format="json",
    )
    assert unknown.status_code == 400 and "prompt_set" in unknown.json()
    study = create_study(
        api,
        alice,
        name="ab",
        kind="ab",
        prompt_set="animals",
        model_versions=[model_a.name, model_b.name],
        criteria=["flaws"],
        overlap=3,
    )
    api.force_authenticate(alice)
    listed = api.get("/api/studies/").json()
    assert [s["name"] for s in listed] == ["ab"]
    assert listed[0]["model_versions"] == [
        {"name": model_a.name, "role": "A"},
        {"name": model_b.name, "role": "B"},
    ]
    assert listed[0]["progress"]["judgments_needed"] == 9
    gold = api.post(
        f"/api/studies/{study['id']}/gold/",
        {"task_key": "p0000-flaws", "answer": {"choice": "tie"}},
        format="json",
    )
    assert gold.json() == {"task_key": "p0000-flaws", "is_gold": True}
    assert Study.objects.get().overlap == 3


def test_annotators_cannot_use_researcher_endpoints(api, bob, annotators, alice, prompt_set, model_a):
    """An annotator can neither create nor list studies with their models, nor mark gold."""
    study = create_study(
        api, alice, name="bw", kind="best_worst", prompt_set="animals", model_versions=[model_a.name]
    )
    api.force_authenticate(bob)
    assert api.get("/api/studies/").status_code == 403
    assert api.get(f"/api/studies/{study['id']}/").status_code == 403
    assert api.post("/api/studies/", {"name": "mine"}, format="json").status_code == 403
    assert api.post(f"/api/studies/{study['id']}/gold/", {}, format="json").status_code == 403


def test_researchers_and_strangers_cannot_annotate(api, alice, charlie, prompt_set, model_a):
    """Annotator endpoints need the annotator role; anonymous calls need to log in."""
    study = create_study(
        api, alice, name="bw", kind="best_worst", prompt_set="animals", model_versions=[model_a.name]
    )
    for user in (alice, charlie):
        api.force_authenticate(user)
        assert api.post(NEXT.format(study["id"]), {}, format="json").status_code == 403
    api.force_authenticate(None)
    assert api.post(NEXT.format(study["id"]), {}, format="json").status_code in (401, 403)


def test_token_authentication_works(alice, bob, prompt_set, model_a):
    """Scripts can call the API with a token instead of a session."""
    api = APIClient()
    create_study(
        api, alice, name="bw", kind="best_worst", prompt_set="animals", model_versions=[model_a.name]
    )
    token = Token.objects.create(user=bob)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    studies = api.get("/api/annotate/studies/")
    assert studies.status_code == 200
    assert [(s["title"], s["done"], s["remaining"]) for s in studies.json()] == [
        ("Pick the best and the worst of five images", 0, 3)
    ]


def test_the_openapi_schema_is_served(client, alice):
    """drf-spectacular serves the schema with the annotation endpoints."""
    client.force_login(alice)
    schema = client.get("/api/schema/?format=json").json()
    assert "/api/annotate/studies/{study_id}/next/" in schema["paths"]
    assert "/api/annotate/assignments/{token}/submit/" in schema["paths"]


def test_an_image_url_is_the_reversed_one_whatever_digits_its_token_holds():
    """The payload's image URLs come from one cached reverse; a token whose hex happens to
    hold a stand-in's digits or letters must not be altered by it."""
    for token in ("a" * 32, "0987654321" + "b" * 22, "9" * 32, "TOKEN" + "c" * 27):
        for position in (0, 3, 987654321):
            assert _image_url(token, position) == reverse("annotate:image", args=[token, position])
