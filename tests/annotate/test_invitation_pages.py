"""The invitation pages: the researchers' list (make, revoke) and the public join page
(sign up, continue as a logged-in user, a closed link, the sign-up rate)."""

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from annotate import errors
from annotate.enrollment import invitation_create, invitation_revoke
from annotate.models import Enrollment, Invitation
from annotate.services import study_create

PASSWORD = "a quiet brown heron 42"


@pytest.fixture(autouse=True)
def fresh_cache():
    """The sign-up counts live in the cache, shared by the tests of a process."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def study(prompt_set, model_a):
    return study_create(
        name="secret-name-bw",
        title="Pick the best and the worst",
        kind="best_worst",
        prompt_set=prompt_set,
        model_versions=[model_a],
        access="enrolled",
    )


@pytest.fixture
def invitation(study, alice):
    return invitation_create(studies=[study], created_by=alice)


def signup(client, invitation, **fields):
    data = {"username": "ines", "password1": PASSWORD, "password2": PASSWORD, "email": "", **fields}
    return client.post(f"/join/{invitation.token}/", data)


def test_a_researcher_makes_a_link_and_sees_it_listed(client, alice, study):
    """The form makes the invitation; the list shows its absolute link and its uses."""
    client.force_login(alice)
    response = client.post(
        "/annotate/research/invitations/",
        {"studies": [study.pk], "expires_in_days": 7, "max_uses": 3, "email_domain": "", "note": "panel A"},
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.max_uses, invitation.note) == (3, "panel A") and invitation.expires_at is not None
    page = client.get("/annotate/research/invitations/").content.decode()
    assert f"http://testserver/join/{invitation.token}/" in page and "0 / 3" in page
    studies = client.get("/annotate/research/studies/").content.decode()
    assert 'href="/annotate/research/invitations/"' in studies


def test_the_form_refuses_a_bad_domain_and_no_study(client, alice):
    """The service's messages, by their fields."""
    client.force_login(alice)
    page = client.post("/annotate/research/invitations/", {"email_domain": "nope"}).content.decode()
    assert errors.INVITATION_NO_STUDY in page
    assert errors.INVITATION_BAD_DOMAIN.format(domain="nope").replace("'", "&#x27;") in page
    assert not Invitation.objects.exists()


def test_a_researcher_revokes_a_link(client, alice, invitation):
    """Revoke: the link is closed, and its page answers 410."""
    client.force_login(alice)
    client.post(f"/annotate/research/invitations/{invitation.pk}/revoke/")
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is not None
    client.logout()
    assert client.get(f"/join/{invitation.token}/").status_code == 410


def test_annotators_cannot_see_the_invitations(client, bob):
    """Bob, an annotator, is refused the researchers' page."""
    client.force_login(bob)
    assert client.get("/annotate/research/invitations/").status_code == 403


def test_the_join_page_shows_titles_never_names(client, invitation):
    """A newcomer reads the title, a sign-up form and a way to log in and come back."""
    page = client.get(f"/join/{invitation.token}/").content.decode()
    assert "Pick the best and the worst" in page and "secret-name-bw" not in page
    assert 'id="join-form"' in page
    assert f"/accounts/login/?next=/join/{invitation.token}/" in page


def test_a_newcomer_signs_up_and_lands_on_the_study(client, invitation, study):
    """The account is made, logged in, enrolled, and sent to the study's page."""
    response = signup(client, invitation)
    assert response.status_code == 302 and response.url == f"/annotate/studies/{study.pk}/"
    ines = User.objects.get(username="ines")
    assert Enrollment.objects.filter(study=study, annotator=ines).exists()
    assert client.get(response.url).status_code == 200


def test_the_password_is_checked_by_djangos_validators(client, invitation):
    """A common password or two different ones: no account."""
    assert signup(client, invitation, password1="password", password2="password").status_code == 200
    assert signup(client, invitation, password2="something else entirely").status_code == 200
    assert not User.objects.filter(username="ines").exists()


def test_an_email_at_the_domain_is_required(client, study, alice):
    """With a domain, the form wants an address there, in the service's words."""
    invitation = invitation_create(studies=[study], created_by=alice, email_domain="example.org")
    page = signup(client, invitation, email="ines@gmail.com").content.decode()
    assert errors.EMAIL_WRONG_DOMAIN.format(domain="example.org") in page
    assert signup(client, invitation, email="ines@example.org").status_code == 302


def test_a_logged_in_annotator_continues(client, invitation, study, bob):
    """Continue as bob: enrolled, sent to the study."""
    client.force_login(bob)
    assert "Continue as bob" in client.get(f"/join/{invitation.token}/").content.decode()
    response = client.post(f"/join/{invitation.token}/")
    assert response.url == f"/annotate/studies/{study.pk}/"
    assert Enrollment.objects.filter(study=study, annotator=bob).exists()


def test_a_closed_link_answers_410_without_a_form(client, invitation):
    """Revoked: a polite page with the reason, no form."""
    invitation_revoke(invitation=invitation)
    response = client.get(f"/join/{invitation.token}/")
    page = response.content.decode()
    assert response.status_code == 410 and errors.INVITATION_REVOKED in page
    assert "<form" not in page.split("<main>")[1]
    assert signup(client, invitation).status_code == 410
    assert not User.objects.filter(username="ines").exists()


def test_an_unknown_token_is_not_found(client, db):
    assert client.get("/join/0123456789abcdef0123456789abcdef/").status_code == 404


def test_sign_ups_are_rated_per_address(client, invitation, settings):
    """Past SIGNUPS_PER_HOUR tries from one address: 429, no account."""
    settings.SIGNUPS_PER_HOUR = 1
    signup(client, invitation, password2="typo")
    response = signup(client, invitation)
    assert response.status_code == 429 and errors.SIGNUPS_THROTTLED in response.content.decode()
    assert not User.objects.filter(username="ines").exists()
