"""Bad inputs to the annotation API, one row each: the 4xx, the message the caller reads, and
nothing left behind — no row added, changed or removed, no file written.

Found by an attacker's test: a study id past 64 bits reached the hand-written SQL and
raised OverflowError (a 500); a name taken by another study, given on PATCH, raised an
IntegrityError (a 500); a report could be repeated without end."""

import uuid
from dataclasses import dataclass, field

import pytest
from rest_framework.test import APIClient

from annotate import errors
from annotate.assignment import assignments_next
from annotate.models import (
    AnnotatorTally,
    ImageExposure,
    ImageReport,
    Judgment,
    Lease,
    Study,
    StudyModel,
    Task,
    TaskImage,
)
from annotate.services import study_create
from annotate.submission import MAX_TIMING_MS
from tests.annotate.conftest import MODEL_A, MODEL_B
from tests.responses import said

PAST_64_BITS = 99999999999999999999  # > 2**64
MODELS = (Study, StudyModel, Task, TaskImage, Lease, Judgment, AnnotatorTally, ImageExposure, ImageReport)


@dataclass(frozen=True)
class Bad:
    """A request (``{study}``, ``{token}`` fill in the A/B study's id and Bob's lease on
    it), who sends it, and the answer: a status and, where the API words it, a message."""

    name: str
    who: str  # "bob" (annotator) or "alice" (researcher)
    method: str
    path: str
    body: dict = field(default_factory=dict)
    status: int = 400
    message: str | None = None


CASES = [
    # Huge ints in paths: no URL matches, so nothing reaches SQL.
    Bad("study id past 64 bits", "bob", "post", f"/api/annotate/studies/{PAST_64_BITS}/next/", status=404),
    Bad("study id 2**63", "bob", "post", f"/api/annotate/studies/{2**63}/next/", status=404),
    Bad("study id zero", "bob", "post", "/api/annotate/studies/0/next/", status=404),
    Bad("study detail past 64 bits", "alice", "get", f"/api/studies/{PAST_64_BITS}/", status=404),
    Bad("study PATCH past 64 bits", "alice", "patch", f"/api/studies/{2**64}/", {"status": "paused"}, 404),
    Bad("gold past 64 bits", "alice", "post", f"/api/studies/{PAST_64_BITS}/gold/", {"task_key": "x"}, 404),
    Bad(
        "image position past 64 bits",
        "bob",
        "get",
        f"/annotate/images/{{token}}/{PAST_64_BITS}.png",
        status=404,
    ),
    Bad("image position past the column", "bob", "get", "/annotate/images/{token}/32768.png", status=404),
    Bad(
        "token longer than a lease's",
        "bob",
        "post",
        f"/api/annotate/assignments/{'a' * 33}/skip/",
        status=404,
    ),
    Bad("token with a NUL", "bob", "post", "/api/annotate/assignments/ab%00cd/heartbeat/", status=404),
    # Unknown ids.
    Bad(
        "unknown study",
        "bob",
        "post",
        "/api/annotate/studies/987654/next/",
        status=404,
        message=errors.UNKNOWN_STUDY,
    ),
    Bad("unknown study detail", "alice", "get", "/api/studies/987654/", status=404),
    Bad(
        "unknown assignment",
        "bob",
        "post",
        f"/api/annotate/assignments/{'0' * 32}/report/",
        {"position": 0},
        404,
        errors.UNKNOWN_ASSIGNMENT,
    ),
    Bad(
        "unknown gold task",
        "alice",
        "post",
        "/api/studies/{study}/gold/",
        {"task_key": "nope", "answer": None},
        message=errors.UNKNOWN_TASK_KEY.format(key="nope"),
    ),
    # Huge ints and indexes out of range in fields.
    Bad(
        "count past its bound",
        "bob",
        "post",
        "/api/annotate/studies/{study}/next/",
        {"count": 10**30},
        message="Ensure this value is less than or equal to 3.",
    ),
    Bad(
        "report position past 64 bits",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/report/",
        {"position": 2**70},
        message="Ensure this value is less than or equal to 32767.",
    ),
    Bad(
        "report position negative",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/report/",
        {"position": -1},
        message="Ensure this value is greater than or equal to 0.",
    ),
    Bad(
        "report position with no image",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/report/",
        {"position": 7},
        404,
        errors.NO_IMAGE_AT.format(position=7),
    ),
    Bad(
        "timing past its bound",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/submit/",
        {
            "client_id": str(uuid.uuid4()),
            "answer": {"choice": "tie"},
            "timing": {"shown_for_ms": 10**30, "on_screen_ms": 0, "answered_ms_ago": 0},
        },
        message=f"Ensure this value is less than or equal to {MAX_TIMING_MS}.",
    ),
    Bad(
        "answer past 64 bits",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/submit/",
        {"client_id": str(uuid.uuid4()), "answer": {"choice": 2**70}},
        message=errors.BAD_CHOICE.format(choices="left, tie, right, reject"),
    ),
    Bad(
        "overlap past 64 bits",
        "alice",
        "patch",
        "/api/studies/{study}/",
        {"overlap": 2**70},
        message=errors.OVERLAP_RANGE.format(overlap=2**70),
    ),
    Bad(
        "lease past 64 bits",
        "alice",
        "patch",
        "/api/studies/{study}/",
        {"lease_seconds": 2**64},
        message=errors.LEASE_RANGE.format(seconds=2**64),
    ),
    Bad(
        "overlap past 64 bits at creation",
        "alice",
        "post",
        "/api/studies/",
        {
            "name": "new",
            "kind": "ab",
            "prompt_set": "animals",
            "model_versions": [MODEL_A, MODEL_B],
            "overlap": 2**70,
        },
        message=errors.OVERLAP_RANGE.format(overlap=2**70),
    ),
    Bad(
        "image index past 64 bits at creation",
        "alice",
        "post",
        "/api/studies/",
        {
            "name": "new",
            "kind": "ab",
            "prompt_set": "animals",
            "model_versions": [MODEL_A, MODEL_B],
            "image_index": 2**70,
        },
        message=errors.IMAGE_INDEX_RANGE.format(index=2**70),
    ),
    # Taken names.
    Bad(
        "a taken name on PATCH",
        "alice",
        "patch",
        "/api/studies/{study}/",
        {"name": "bw"},
        message=errors.STUDY_NAME_TAKEN.format(name="bw"),
    ),
    Bad(
        "a taken name, padded, on PATCH",
        "alice",
        "patch",
        "/api/studies/{study}/",
        {"name": " bw "},
        message=errors.STUDY_NAME_TAKEN.format(name="bw"),
    ),
    Bad(
        "a taken name at creation",
        "alice",
        "post",
        "/api/studies/",
        {"name": "bw", "kind": "best_worst", "prompt_set": "animals", "model_versions": [MODEL_A]},
        message=errors.STUDY_NAME_TAKEN.format(name="bw"),
    ),
    # Text no row can hold: a NUL character, which PostgreSQL refuses in a query.
    Bad(
        "a prompt set name with a NUL",
        "alice",
        "post",
        "/api/studies/",
        {"name": "new", "kind": "best_worst", "prompt_set": "anim\x00als", "model_versions": [MODEL_A]},
        message="Object with name=anim\x00als does not exist.",
    ),
    Bad(
        "a model name with a NUL",
        "alice",
        "post",
        "/api/studies/",
        {"name": "new", "kind": "best_worst", "prompt_set": "animals", "model_versions": [MODEL_A + "\x00"]},
        message="does not exist.",
    ),
    Bad(
        "a study name with a NUL",
        "alice",
        "patch",
        "/api/studies/{study}/",
        {"name": "a\x00b"},
        message="Null characters are not allowed.",
    ),
    Bad(
        "a gold task key with a NUL",
        "alice",
        "post",
        "/api/studies/{study}/gold/",
        {"task_key": "\x00", "answer": None},
        message="Null characters are not allowed.",
    ),
    # Wrong types.
    Bad(
        "count as text",
        "bob",
        "post",
        "/api/annotate/studies/{study}/next/",
        {"count": "two"},
        message="A valid integer is required.",
    ),
    Bad(
        "count as a float",
        "bob",
        "post",
        "/api/annotate/studies/{study}/next/",
        {"count": 1e300},
        message="A valid integer is required.",
    ),
    Bad(
        "progress as text",
        "bob",
        "post",
        "/api/annotate/studies/{study}/next/",
        {"progress": "maybe"},
        message="Must be a valid boolean.",
    ),
    Bad(
        "position as text",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/report/",
        {"position": "left"},
        message="A valid integer is required.",
    ),
    Bad(
        "client_id past 128 bits",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/submit/",
        {"client_id": 2**200, "answer": {"choice": "tie"}},
        message="Must be a valid UUID.",
    ),
    Bad(
        "client_id as a list",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/submit/",
        {"client_id": ["a"], "answer": {"choice": "tie"}},
        message="Must be a valid UUID.",
    ),
    Bad(
        "answer as a list",
        "bob",
        "post",
        "/api/annotate/assignments/{token}/submit/",
        {"client_id": str(uuid.uuid4()), "answer": [1]},
        message=errors.ANSWER_NOT_OBJECT,
    ),
    Bad(
        "status unknown",
        "alice",
        "patch",
        "/api/studies/{study}/",
        {"status": "archived"},
        message=errors.NOT_ONE_OF.format(setting="status", choices="open, paused, closed", value="archived"),
    ),
    Bad(
        "name as a list",
        "alice",
        "patch",
        "/api/studies/{study}/",
        {"name": ["bw"]},
        message="Not a valid string.",
    ),
    Bad(
        "overlap as text",
        "alice",
        "patch",
        "/api/studies/{study}/",
        {"overlap": "five"},
        message="A valid integer is required.",
    ),
]


@pytest.fixture
def world(db, prompt_set, model_a, model_b, bob):
    """An A/B study (N = 2) with a task leased to Bob, and a best/worst study named "bw"."""
    ab = study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=2
    )
    study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    (lease,) = assignments_next(study_id=ab.pk, annotator=bob).leases
    return {"study": ab.pk, "token": lease.token}


def database_state() -> dict:
    """Every row of every annotation table, as values."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


def files_under(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("bad", CASES, ids=lambda bad: bad.name)
def test_a_bad_input_is_refused_and_leaves_nothing_behind(bad, world, alice, bob, media_root):
    """The 4xx with its message; every table and the media folder as they were."""
    client = APIClient()
    client.force_login({"alice": alice, "bob": bob}[bad.who])
    rows, files = database_state(), files_under(media_root)
    response = getattr(client, bad.method)(bad.path.format(**world), bad.body, format="json")
    assert response.status_code == bad.status, response.content
    if bad.message is not None:
        assert any(bad.message in text for text in said(response.json())), response.json()
    assert database_state() == rows
    assert files_under(media_root) == files
    assert Study.objects.get(pk=world["study"]).name == "ab"


def test_a_repeated_report_answers_200_with_the_first_and_counts_once(world, bob):
    """One report per annotator and task: the first is 201, a repeat (at any position) is
    200 with the first report, and the study's report count stays at one."""
    client = APIClient()
    client.force_login(bob)
    url = f"/api/annotate/assignments/{world['token']}/report/"
    first = client.post(url, {"position": 1, "reason": "grey square"}, format="json")
    assert first.status_code == 201
    assert first.json() == {"status": "reported", "position": 1, "reason": "grey square"}
    rows = database_state()
    for position in (1, 0):
        repeat = client.post(url, {"position": position, "reason": "again"}, format="json")
        assert repeat.status_code == 200
        assert repeat.json() == {"status": "duplicate", "position": 1, "reason": "grey square"}
    assert database_state() == rows
    assert ImageReport.objects.filter(task__study_id=world["study"]).count() == 1
