"""Login lockout (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username
from one address, that pair is refused, the right password included, on the site's and
the admin's login pages."""

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.factories import PASSWORD, UserFactory

LIMIT = 10  # the default of LOGIN_FAILURE_LIMIT

LOGINS = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def staff(db):
    """Sam, a staff member who may use the admin."""
    return UserFactory(username="sam", is_staff=True)


def attempt(client: Client, url: str, username: str, password: str, address: str = "10.1.1.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGINS)
def test_ten_wrong_passwords_lock_the_login_even_with_the_right_one_next(staff, url):
    """The tenth failure locks; the right password then answers 429 with Retry-After and no session."""
    client = Client()
    for _ in range(LIMIT - 1):
        assert attempt(client, url, "sam", "wrong").status_code == 200
    assert attempt(client, url, "sam", "wrong").status_code == 429
    locked = attempt(client, url, "sam", PASSWORD)
    assert locked.status_code == 429 and not logged_in(client)
    assert int(locked["Retry-After"]) == 15 * 60
    page = locked.content.decode()
    assert "Too many failed log-ins" in page and "/static/evalhub/site.css" in page


def test_the_lock_holds_one_username_from_one_address(staff):
    """Sam can still log in from another address; the lock is for the pair."""
    for _ in range(LIMIT):
        attempt(Client(), "/accounts/login/", "sam", "wrong", address="10.1.1.1")
    assert attempt(Client(), "/accounts/login/", "sam", PASSWORD, address="10.1.1.1").status_code == 429
    elsewhere = Client()
    assert attempt(elsewhere, "/accounts/login/", "sam", PASSWORD, address="10.2.2.2").status_code == 302
    assert logged_in(elsewhere)


def test_a_success_before_the_limit_starts_the_count_again(staff):
    """Nine failures, a success, nine more failures: still not locked."""
    client = Client()
    for _ in range(LIMIT - 1):
        attempt(client, "/accounts/login/", "sam", "wrong")
    assert attempt(client, "/accounts/login/", "sam", PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        assert attempt(client, "/accounts/login/", "sam", "wrong").status_code == 200
    assert attempt(client, "/accounts/login/", "sam", PASSWORD).status_code == 302


def test_failures_are_recorded_in_the_database(staff):
    """The count lives in the database, shared by every web worker."""
    for _ in range(3):
        attempt(Client(), "/accounts/login/", "sam", "wrong")
    assert AccessAttempt.objects.get(username="sam").failures_since_start == 3


def test_a_forged_forwarded_for_header_does_not_escape_the_lock(staff):
    """With no proxy declared (PROXY_COUNT=0), X-Forwarded-For is ignored."""
    client = Client()
    for number in range(LIMIT):
        client.post(
            "/accounts/login/",
            {"username": "sam", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"10.9.9.{number}",
        )
    response = client.post(
        "/accounts/login/", {"username": "sam", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="10.9.9.99"
    )
    assert response.status_code == 429
