"""The API under a schema fuzzer: no input the schema allows, nor any it forbids, makes a
server error.

Schemathesis reads the app's own OpenAPI schema (``/api/schema/``, fetched with a token as
a signed-in user must) and calls every operation through the WSGI app, no server, with
values inside and outside each declared type and bound (huge numbers, wrong types, missing
fields, odd strings). Each case is sent as Bob the annotator and as Alice the researcher,
and where the path names a study, a job, a model version or an assignment, again with one
that exists, so the handlers behind the look-ups are reached too. Any 5xx fails the test
with the case that caused it (schemathesis prints it as a curl command and a reproduction).

Every whole number in a path is also sent past 64 bits, whatever bounds the schema
declares for it: that is how a study id reached the hand-written SQL and overflowed.

The seed is fixed and the number of examples bounded, so a run is the same every time and
takes about 25 seconds on two cores (some 5,000 requests).
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from annotate.assignment import assignments_next
from annotate.services import study_create
from evalhub.catalog.models import ModelVersion
from evalhub.jobs.models import Job
from evalhub.wsgi import application
from tests.annotate.conftest import MODEL_A, MODEL_B, prompt_set  # noqa: F401  (a fixture)

SEED = 20261129
EXAMPLES = 30  # per operation in the fuzzing phase; the examples and coverage phases add their own

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": EXAMPLES, "mode": "all"},
        "phases": {"stateful": {"enabled": False}},
    }
)

HUGE = 2**64  # sent for every whole number in a path


@pytest.fixture
def existing(prompt_set, bob):  # noqa: F811
    """An A/B study with a task leased to Bob, a best/worst study, a model version with a
    parent and a failed job: the rows the fuzzer's requests may find, change or refuse to
    change."""
    model_a, model_b = ModelVersion.objects.get(name=MODEL_A), ModelVersion.objects.get(name=MODEL_B)
    model_a.parent = model_b
    model_a.save()
    ab = study_create(
        name="=fuzzed A/B", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b], overlap=2
    )
    study_create(name="fuzzed best/worst", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    (lease,) = assignments_next(study_id=ab.pk, annotator=bob).leases
    job = Job.objects.create(
        kind=Job.Kind.TRAINING, state=Job.State.FAILED, config={"options": {}}, model_version=model_a
    )
    return {"study_id": ab.pk, "job_id": job.pk, "version_id": model_a.pk, "token": lease.token}


@pytest.fixture
def tokens(bob, alice) -> dict[str, str]:
    return {user.username: Token.objects.create(user=user).key for user in (bob, alice)}


@pytest.fixture
def in_test_transaction():
    """Requests reach the WSGI app directly, so the app's signals would close the test's
    connection at each request's start and end; Django's test client unhooks them the same
    way while it sends a request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, request, settings, in_test_transaction, existing, tokens):
    """The schema as Alice fetches it, with no request rate limit in the way."""
    # schemathesis 4.32 renames the test per operation through ``node._nodeid``, which
    # pytest 9 no longer has (its ``nodeid`` is read-only): give it one to rename.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    return schemathesis.openapi.from_wsgi(
        "/api/schema/", application, config=CONFIG, headers={"Authorization": f"Token {tokens['alice']}"}
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case, tokens, existing):
    """Every operation, with values inside and outside its schema, as an annotator and as a
    researcher, on generated and on existing rows, answers below 500."""
    generated = dict(case.path_parameters or {})
    variants = [generated]
    if any(name in generated for name in existing):
        variants.append({**generated, **{k: v for k, v in existing.items() if k in generated}})
    numbers = [
        parameter.name
        for parameter in case.operation.path_parameters
        if parameter.definition.get("schema", {}).get("type") == "integer"
    ]
    if numbers:
        variants.append({**generated, **dict.fromkeys(numbers, HUGE)})
    for path_parameters in variants:
        case.path_parameters = path_parameters
        for key in tokens.values():
            case.call_and_validate(headers={"Authorization": f"Token {key}"}, checks=[not_a_server_error])
