"""The number of statements each annotator call makes, pinned on both databases: the hot
path's statements go through Django's cursor wrappers, so they are counted like any
other (the savepoints of transaction bookkeeping are left out)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.services import study_create


def statements(context: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"].strip()
        for query in context.captured_queries
        if not query["sql"].lstrip().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
    ]


@pytest.fixture
def api(annotators):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotators[0]).key}")
    return client


@pytest.fixture
def ab(prompt_set, model_a, model_b):
    return study_create(
        name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=1
    )


def counted(call) -> list[str]:
    with CaptureQueriesContext(connection) as context:
        response = call()
    assert response.status_code in (200, 201), response.content
    return statements(context)


def test_next_is_authentication_study_one_lease_each_and_the_payload(api, ab):
    """Token and roles, study and progress, one statement per lease (SQLite writes the
    exposures apart), and the payloads."""
    per_lease = 1 if connection.vendor == "postgresql" else 2
    one = counted(lambda: api.post(f"/api/annotate/studies/{ab.pk}/next/", {"count": 1}, format="json"))
    assert len(one) == 3 + per_lease, one
    two = counted(
        lambda: api.post(
            f"/api/annotate/studies/{ab.pk}/next/", {"count": 3, "progress": False}, format="json"
        )
    )
    assert len(two) == 3 + 2 * per_lease, two  # the one held, two new


def test_submit_is_one_transaction_of_six_statements(api, ab):
    """Lease read, count (the row lock), fresh read, judgment, lease state, tally; when the
    answer fills its task, the lease update marks the task's leases and the study counts
    one open task fewer."""
    token = api.post(f"/api/annotate/studies/{ab.pk}/next/", {}, format="json").json()["assignments"][0][
        "token"
    ]
    body = {"client_id": str(uuid.uuid4()), "answer": {"choice": "tie"}}
    filled = counted(lambda: api.post(f"/api/annotate/assignments/{token}/submit/", body, format="json"))
    assert len(filled) == 1 + 7, filled  # overlap 1: this answer fills the task
    assert filled[-2].startswith("UPDATE annotate_study SET open_tasks")
    repeat = counted(lambda: api.post(f"/api/annotate/assignments/{token}/submit/", body, format="json"))
    assert len(repeat) == 1 + 3, repeat  # the lease read finds the judgment; it and progress are read


def test_heartbeat_reads_the_lease_locks_the_task_and_extends(api, ab):
    """Four statements with authentication."""
    token = api.post(f"/api/annotate/studies/{ab.pk}/next/", {}, format="json").json()["assignments"][0][
        "token"
    ]
    beat = counted(lambda: api.post(f"/api/annotate/assignments/{token}/heartbeat/", format="json"))
    assert len(beat) == 4, beat
