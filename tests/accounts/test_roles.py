"""Roles: the two groups and their permissions, where each role lands, login, logout,
and the ``grant_role`` command."""

import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.urls import reverse

from evalhub.accounts.roles import ANNOTATORS, RESEARCHERS, ROLE_PERMISSIONS, roles_sync
from tests.factories import PASSWORD, UserFactory


def permission_codes(group: Group) -> set[str]:
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


def catalog_permission_codes() -> set[str]:
    return {
        f"catalog.{codename}"
        for codename in Permission.objects.filter(content_type__app_label="catalog").values_list(
            "codename", flat=True
        )
    }


# ---------------------------------------------------------------- groups


def test_migrations_create_both_groups(db):
    """After migrate, the researchers and annotators groups exist."""
    assert set(Group.objects.values_list("name", flat=True)) >= {RESEARCHERS, ANNOTATORS}


def test_researchers_have_exactly_the_listed_permissions(db):
    """The researchers group holds the catalog permissions ROLE_PERMISSIONS lists, no more."""
    assert permission_codes(Group.objects.get(name=RESEARCHERS)) == set(ROLE_PERMISSIONS[RESEARCHERS])


def test_annotators_have_no_catalog_permission(bob):
    """Nothing an annotator holds lets them browse models, prompts or images."""
    assert permission_codes(Group.objects.get(name=ANNOTATORS)) == set()
    assert catalog_permission_codes(), "the catalog app defines permissions"
    assert not any(bob.has_perm(code) for code in catalog_permission_codes())


def test_a_researcher_has_every_listed_permission(alice):
    """Alice, in the researchers group, has each listed permission."""
    assert all(alice.has_perm(code) for code in ROLE_PERMISSIONS[RESEARCHERS])


def test_roles_sync_is_idempotent_and_resets_stray_permissions(db):
    """Running roles_sync again changes nothing, and removes a permission added by hand."""
    roles_sync()
    before = {group.name: permission_codes(group) for group in Group.objects.all()}
    stray = Permission.objects.get(content_type__app_label="catalog", codename="delete_promptset")
    Group.objects.get(name=ANNOTATORS).permissions.add(stray)

    roles_sync()
    roles_sync()

    assert Group.objects.filter(name__in=[RESEARCHERS, ANNOTATORS]).count() == 2
    assert {group.name: permission_codes(group) for group in Group.objects.all()} == before


# ---------------------------------------------------------------- home


def test_it_redirects_a_researcher_to_the_prompt_set_list(client, alice):
    """A researcher's home is the catalog."""
    client.force_login(alice)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url == reverse("catalog:prompt_set_list")


def test_it_redirects_an_annotator_to_the_annotation_home(client, bob):
    """An annotator's home is the annotation page."""
    client.force_login(bob)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url == reverse("annotate:home")


def test_it_tells_a_user_without_a_role_to_ask_for_one(client, charlie):
    """A user with no role gets 403 and the page explaining how to get a role."""
    client.force_login(charlie)
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert "accounts/no_role.html" in [template.name for template in response.templates]
    html = response.content.decode()
    assert "No role yet" in html
    assert "python manage.py grant_role charlie annotator" in html


def test_home_sends_an_anonymous_visitor_to_log_in(client, db):
    """Without a session, the home page redirects to the login page."""
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next=/"


# ---------------------------------------------------------------- login and logout


@pytest.mark.parametrize(
    ("persona", "landing"),
    [("alice", "catalog:prompt_set_list"), ("bob", "annotate:home")],
)
def test_logging_in_lands_on_the_role_home(client, request, persona, landing):
    """Username and password log in, then the user lands on their role's page."""
    user = request.getfixturevalue(persona)
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse(landing)
    assert response.wsgi_request.user == user
    assert int(client.session["_auth_user_id"]) == user.pk


def test_a_wrong_password_is_refused_with_a_message(client, alice):
    """A wrong password re-renders the login page with an error and logs nobody in."""
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_login_page_renders_its_form(client, db):
    """The login page shows the username and password fields."""
    html = client.get(reverse("login")).content.decode()
    assert 'name="username"' in html
    assert 'name="password"' in html


def test_logout_is_a_post_and_logs_out(client, alice):
    """POST to logout ends the session and goes back to the login page; GET does not log out."""
    client.force_login(alice)
    assert client.get(reverse("logout")).status_code == 405
    assert "_auth_user_id" in client.session

    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("catalog:prompt_set_list")).status_code == 302


def test_every_page_offers_a_logout_form(client, alice):
    """The header carries a POST form to log out, with a CSRF token."""
    client.force_login(alice)
    html = client.get(reverse("catalog:prompt_set_list")).content.decode()
    assert f'<form method="post" action="{reverse("logout")}">' in html
    assert 'name="csrfmiddlewaretoken"' in html


# ---------------------------------------------------------------- grant_role


def test_grant_role_makes_a_user_a_researcher(charlie):
    """The command puts the user in the role's group and says so."""
    out = io.StringIO()
    call_command("grant_role", "charlie", "researcher", stdout=out)
    assert list(charlie.groups.values_list("name", flat=True)) == [RESEARCHERS]
    assert out.getvalue().strip() == "charlie is now a researcher."


def test_grant_role_makes_a_user_an_annotator(client, charlie):
    """After the command, the user lands on the annotation page."""
    call_command("grant_role", "charlie", "annotator", stdout=io.StringIO())
    client.force_login(charlie)
    assert client.get(reverse("home")).url == reverse("annotate:home")


def test_grant_role_is_safe_to_run_twice(charlie):
    """Granting the same role again leaves one membership."""
    for _ in range(2):
        call_command("grant_role", "charlie", "annotator", stdout=io.StringIO())
    assert charlie.groups.filter(name=ANNOTATORS).count() == 1


def test_grant_role_errors_clearly_on_an_unknown_user(db):
    """An unknown username is a CommandError naming it; no user is created."""
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("grant_role", "nobody", "researcher")
    assert not UserFactory._meta.model.objects.filter(username="nobody").exists()


def test_grant_role_refuses_an_unknown_role(charlie):
    """Only researcher and annotator are accepted as roles."""
    with pytest.raises(CommandError, match="invalid choice: 'admin'"):
        call_command("grant_role", "charlie", "admin")
    assert not charlie.groups.exists()
