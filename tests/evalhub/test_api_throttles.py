"""API rates (evalhub/api_throttles.py): per annotator on the labeling calls, per user on
the researchers' API, per address for anonymous calls; a refusal is a 429 with Retry-After."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from evalhub.accounts.roles import user_grant_role
from tests.factories import UserFactory

ANNOTATOR_STUDIES = "/api/annotate/studies/"


@pytest.fixture(autouse=True)
def fresh_counts():
    """Counts of earlier tests (same user ids, same minute) do not leak in."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def rates(settings):
    """Set the scopes' rates for one test: ``rates(annotator="3/min")``."""

    def set_rates(**scoped: str) -> None:
        framework = dict(settings.REST_FRAMEWORK)
        framework["DEFAULT_THROTTLE_RATES"] = {**framework["DEFAULT_THROTTLE_RATES"], **scoped}
        settings.REST_FRAMEWORK = framework

    return set_rates


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_annotator_over_the_rate_gets_429_with_retry_after(bob, rates):
    """The call past the annotator rate answers 429 throttled, Retry-After in seconds."""
    rates(annotator="3/min")
    client = api_for(bob)
    assert [client.get(ANNOTATOR_STUDIES).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(ANNOTATOR_STUDIES)
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_the_annotator_rate_counts_each_annotator_apart(bob, rates):
    """Another annotator is not held back by Bob's calls."""
    rates(annotator="1/min")
    dora = UserFactory(username="dora", role="annotators")
    assert api_for(bob).get(ANNOTATOR_STUDIES).status_code == 200
    assert api_for(bob).get(ANNOTATOR_STUDIES).status_code == 429
    assert api_for(dora).get(ANNOTATOR_STUDIES).status_code == 200


def test_the_researchers_api_has_its_own_rate(alice, rates):
    """Researchers' calls count against the researcher rate, not the annotators'."""
    rates(annotator="1/min", researcher="2/min")
    client = api_for(alice)
    assert [client.get("/api/studies/").status_code for _ in range(3)] == [200, 200, 429]


def test_a_user_with_both_roles_has_one_count_per_scope(rates, db):
    """Used up on the annotator endpoints, the same user still reaches the researchers' API."""
    rates(annotator="1/min", researcher="5/min")
    both = UserFactory(username="erin", role="annotators")
    user_grant_role(user=both, role="researchers")
    client = api_for(both)
    assert client.get(ANNOTATOR_STUDIES).status_code == 200
    assert client.get(ANNOTATOR_STUDIES).status_code == 429
    assert client.get("/api/studies/").status_code == 200


@pytest.mark.urls("tests.evalhub.error_urls")
def test_anonymous_calls_are_counted_per_address(rates, db):
    """An endpoint open to anonymous callers applies the anonymous rate per client address."""
    rates(anon="2/min")
    client = APIClient()
    codes = [client.get("/api/test/open/", REMOTE_ADDR="10.0.0.1").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.get("/api/test/open/", REMOTE_ADDR="10.0.0.2").status_code == 200


@pytest.mark.urls("tests.evalhub.error_urls")
def test_a_forged_forwarded_for_header_does_not_reset_the_anonymous_count(rates, db):
    """With no proxy declared (PROXY_COUNT=0), X-Forwarded-For is ignored."""
    rates(anon="1/min")
    client = APIClient()
    assert client.get("/api/test/open/", HTTP_X_FORWARDED_FOR="1.1.1.1").status_code == 200
    assert client.get("/api/test/open/", HTTP_X_FORWARDED_FOR="2.2.2.2").status_code == 429


def test_a_rate_set_to_off_lifts_the_limit(bob, rates):
    """``off`` (None) means no limit for that scope, whatever the others'."""
    rates(annotator=None, researcher="1/min", anon="1/min")
    client = api_for(bob)
    assert {client.get(ANNOTATOR_STUDIES).status_code for _ in range(5)} == {200}
