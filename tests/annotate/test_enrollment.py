"""Invitations and enrollment (annotate.enrollment): a link enrolls whoever accepts it until
it is revoked, expired or used up; a study open to enrolled annotators only hands tasks
to them alone (the assignment's gate) and shows on their home only; removing an annotator
releases their leases at once. Personas: Alice the researcher, Charlie with no role, and
the annotators dana and eve."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from annotate import errors
from annotate.assignment import assignments_next
from annotate.enrollment import (
    annotator_enroll,
    annotator_remove,
    annotator_signup,
    invitation_accept,
    invitation_create,
    invitation_expiry,
    invitation_revoke,
    invitation_state,
)
from annotate.errors import Conflict, Forbidden, InvalidInput
from annotate.models import Enrollment, Invitation, Lease, Study
from annotate.selectors import studies_open_for
from annotate.services import study_create, study_update
from annotate.submission import judgment_submit
from evalhub.accounts.roles import user_is_annotator


@pytest.fixture
def closed_study(prompt_set, model_a):
    """Best/worst of five, three tasks, N = 2, for enrolled annotators only."""
    return study_create(
        name="bw private",
        title="Pick the best and the worst",
        kind="best_worst",
        prompt_set=prompt_set,
        model_versions=[model_a],
        overlap=2,
        access="enrolled",
    )


@pytest.fixture
def open_study(prompt_set, model_a):
    return study_create(
        name="bw public", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=2
    )


@pytest.fixture
def dana(annotators):
    return annotators[0]


@pytest.fixture
def eve(annotators):
    return annotators[1]


def enrolled(study: Study) -> set[str]:
    return set(
        Enrollment.objects.filter(study=study, status=Enrollment.Status.ENROLLED).values_list(
            "annotator__username", flat=True
        )
    )


# ---------------------------------------------------------------- invitations


def test_accepting_enrolls_in_every_study_and_counts_one_use(closed_study, open_study, alice, dana):
    """One acceptance: an enrollment per study, one use."""
    invitation = invitation_create(studies=[closed_study, open_study], created_by=alice, note="round 1")
    enrollments = invitation_accept(invitation=invitation, user=dana)
    assert {e.study_id for e in enrollments} == {closed_study.pk, open_study.pk}
    assert all(e.invitation_id == invitation.pk for e in enrollments)
    invitation.refresh_from_db()
    assert invitation.uses == 1 and len(invitation.token) == 32


def test_accepting_again_uses_nothing_even_once_the_link_closed(closed_study, alice, dana):
    """Idempotent: a second acceptance, before or after a revocation, counts no use."""
    invitation = invitation_create(studies=[closed_study], created_by=alice)
    invitation_accept(invitation=invitation, user=dana)
    invitation_accept(invitation=invitation, user=dana)
    invitation_revoke(invitation=invitation)
    assert invitation_accept(invitation=invitation, user=dana)[0].study_id == closed_study.pk
    assert Invitation.objects.get(pk=invitation.pk).uses == 1
    assert enrolled(closed_study) == {"dana"}


def test_a_user_without_a_role_becomes_an_annotator(closed_study, alice, charlie):
    """Charlie has no role; accepting makes him an annotator."""
    invitation = invitation_create(studies=[closed_study], created_by=alice)
    invitation_accept(invitation=invitation, user=charlie)
    assert user_is_annotator(User.objects.get(pk=charlie.pk))
    assert enrolled(closed_study) == {"charlie"}


def test_a_researcher_is_refused(closed_study, alice):
    """A link is for annotators: a researcher gets no enrollment and no annotator role."""
    invitation = invitation_create(studies=[closed_study], created_by=alice)
    with pytest.raises(InvalidInput) as refused:
        invitation_accept(invitation=invitation, user=alice)
    assert refused.value.message == errors.INVITATION_FOR_ANNOTATORS
    assert enrolled(closed_study) == set()


def test_a_revoked_link_takes_nobody_new(closed_study, alice, dana):
    """Revoked: refused, with the message the join page shows; revoking twice is refused."""
    invitation = invitation_create(studies=[closed_study], created_by=alice)
    invitation_revoke(invitation=invitation)
    with pytest.raises(InvalidInput) as refused:
        invitation_accept(invitation=invitation, user=dana)
    assert refused.value.message == errors.INVITATION_REVOKED
    with pytest.raises(Conflict):
        invitation_revoke(invitation=invitation)
    assert invitation_state(invitation) == "revoked" and enrolled(closed_study) == set()


def test_an_expired_link_takes_nobody_new(closed_study, alice, dana):
    """Past expires_at: refused."""
    invitation = invitation_create(studies=[closed_study], created_by=alice, expires_at=invitation_expiry(1))
    later = timezone.now() + timedelta(days=1, seconds=1)
    with pytest.raises(InvalidInput) as refused:
        invitation_accept(invitation=invitation, user=dana, now=later)
    assert refused.value.message == errors.INVITATION_EXPIRED
    assert invitation_state(invitation, later) == "expired" and invitation_state(invitation) == "open"


def test_a_link_takes_max_uses_people(closed_study, alice, annotators):
    """Two uses: dana and eve get in, finn does not."""
    dana, eve, finn = annotators[:3]
    invitation = invitation_create(studies=[closed_study], created_by=alice, max_uses=2)
    invitation_accept(invitation=invitation, user=dana)
    invitation_accept(invitation=invitation, user=eve)
    with pytest.raises(InvalidInput) as refused:
        invitation_accept(invitation=invitation, user=finn)
    assert refused.value.message == errors.INVITATION_USED_UP
    assert enrolled(closed_study) == {"dana", "eve"}


@pytest.mark.parametrize(
    "values, refusal",
    [
        ({"studies": []}, errors.INVITATION_NO_STUDY),
        ({"max_uses": 0}, errors.INVITATION_MAX_USES_RANGE.format(uses=0)),
        ({"email_domain": "not a domain"}, errors.INVITATION_BAD_DOMAIN.format(domain="not a domain")),
    ],
)
def test_a_malformed_invitation_is_refused(closed_study, alice, values, refusal):
    """No study, no use, or a domain that is not one."""
    with pytest.raises(InvalidInput) as refused:
        invitation_create(**{"studies": [closed_study], "created_by": alice, **values})
    assert refused.value.message == refusal
    assert not Invitation.objects.exists()


def test_an_expiry_is_one_to_365_days():
    """Days out of range are refused in the message the form shows."""
    with pytest.raises(InvalidInput) as refused:
        invitation_expiry(366)
    assert refused.value.message == errors.INVITATION_EXPIRY_RANGE.format(days=366)


@pytest.mark.parametrize(
    "email, refusal",
    [
        ("", errors.EMAIL_REQUIRED.format(domain="example.org")),
        ("ines@example.com", errors.EMAIL_WRONG_DOMAIN.format(domain="example.org")),
        ("ines@evil-example.org", errors.EMAIL_WRONG_DOMAIN.format(domain="example.org")),
        ("Ines@Example.org", None),
    ],
)
def test_a_sign_up_gives_an_email_at_the_domain(closed_study, alice, email, refusal):
    """With a domain, the new account's e-mail must be at it; nothing is made otherwise."""
    invitation = invitation_create(studies=[closed_study], created_by=alice, email_domain="@Example.org")
    assert invitation.email_domain == "example.org"
    if refusal is None:
        user = annotator_signup(invitation=invitation, username="ines", password="x" * 12, email=email)
        assert user_is_annotator(user) and enrolled(closed_study) == {"ines"}
        return
    with pytest.raises(InvalidInput) as refused:
        annotator_signup(invitation=invitation, username="ines", password="x" * 12, email=email)
    assert refused.value.message == refusal
    assert not User.objects.filter(username="ines").exists()


def test_a_sign_up_through_a_used_up_link_makes_no_account(closed_study, alice, dana):
    """The account and the enrollment are one transaction."""
    invitation = invitation_create(studies=[closed_study], created_by=alice, max_uses=1)
    invitation_accept(invitation=invitation, user=dana)
    with pytest.raises(InvalidInput):
        annotator_signup(invitation=invitation, username="ines", password="x" * 12)
    assert not User.objects.filter(username="ines").exists()


# ---------------------------------------------------------------- the gate


def test_an_annotator_not_enrolled_gets_nothing_and_does_not_see_the_study(closed_study, dana):
    """Forbidden with NOT_ENROLLED, and the study is missing from their home."""
    with pytest.raises(Forbidden) as refused:
        assignments_next(study_id=closed_study.pk, annotator=dana)
    assert refused.value.message == errors.NOT_ENROLLED
    assert studies_open_for(dana) == []
    assert not Lease.objects.exists()


def test_an_enrolled_annotator_works_and_sees_the_study(closed_study, alice, dana):
    """Enrolled through a link: tasks, and the study on the home page by its title."""
    invitation_accept(invitation=invitation_create(studies=[closed_study], created_by=alice), user=dana)
    assert len(assignments_next(study_id=closed_study.pk, annotator=dana).leases) == 1
    assert [study["title"] for study in studies_open_for(dana)] == ["Pick the best and the worst"]


def test_an_open_study_is_every_annotators(open_study, closed_study, dana):
    """Access open: no enrollment needed."""
    assert len(assignments_next(study_id=open_study.pk, annotator=dana).leases) == 1
    assert [study["id"] for study in studies_open_for(dana)] == [open_study.pk]


def test_the_api_refuses_an_annotator_not_enrolled(closed_study, dana, client):
    """POST …/next/ answers 403 with the message; the labeling page too."""
    client.force_login(dana)
    url = f"/api/annotate/studies/{closed_study.pk}/next/"
    response = client.post(url, {}, content_type="application/json")
    assert response.status_code == 403 and errors.NOT_ENROLLED in response.content.decode()
    page = client.get(f"/annotate/studies/{closed_study.pk}/")
    assert page.status_code == 403 and errors.NOT_ENROLLED in page.content.decode()


def test_access_can_change_while_the_study_runs(open_study, dana):
    """open → enrolled closes the study to annotators not enrolled, and back."""
    study_update(study=open_study, access="enrolled")
    with pytest.raises(Forbidden):
        assignments_next(study_id=open_study.pk, annotator=dana)
    study_update(study=open_study, access="open")
    assert assignments_next(study_id=open_study.pk, annotator=dana).leases


# ---------------------------------------------------------------- removal


def test_removal_releases_the_leases_at_once(closed_study, dana, eve):
    """Dana's held leases are skipped at removal: the tasks go back to the pool, her answer
    in flight is refused as a skipped task, and she gets nothing more."""
    annotator_enroll(study=closed_study, annotator=dana)
    annotator_enroll(study=closed_study, annotator=eve)
    held = assignments_next(study_id=closed_study.pk, annotator=dana, count=3).leases
    assert len(held) == 3
    assert annotator_remove(study=closed_study, annotator=dana, reason="left the team") == 3
    assert set(Lease.objects.filter(annotator=dana).values_list("state", flat=True)) == {Lease.State.SKIPPED}
    with pytest.raises(Conflict) as refused:
        judgment_submit(
            token=held[0].token, annotator=dana, client_id=uuid.uuid4(), answer={"positive": 0, "negative": 1}
        )
    assert refused.value.message == errors.TASK_SKIPPED
    with pytest.raises(Forbidden):
        assignments_next(study_id=closed_study.pk, annotator=dana)
    removal = Enrollment.objects.get(study=closed_study, annotator=dana)
    assert (removal.status, removal.removed_reason) == (Enrollment.Status.REMOVED, "left the team")
    assert enrolled(closed_study) == {"eve"}


def test_removal_needs_a_reason_and_an_enrolled_annotator(closed_study, dana):
    """No reason, or nobody to remove: refused."""
    annotator_enroll(study=closed_study, annotator=dana)
    with pytest.raises(InvalidInput) as refused:
        annotator_remove(study=closed_study, annotator=dana, reason="  ")
    assert refused.value.message == errors.REASON_EMPTY
    annotator_remove(study=closed_study, annotator=dana, reason="done")
    with pytest.raises(InvalidInput) as refused:
        annotator_remove(study=closed_study, annotator=dana, reason="again")
    assert refused.value.message == errors.NOT_ENROLLED_IN.format(annotator="dana")


def test_a_removed_annotator_comes_back_only_by_a_researchers_hand(closed_study, alice, dana):
    """The link does not re-enroll a removed annotator; annotator_enroll does."""
    invitation = invitation_create(studies=[closed_study], created_by=alice)
    invitation_accept(invitation=invitation, user=dana)
    annotator_remove(study=closed_study, annotator=dana, reason="paused the panel")
    invitation_accept(invitation=invitation, user=dana)
    assert enrolled(closed_study) == set()
    annotator_enroll(study=closed_study, annotator=dana)
    assert enrolled(closed_study) == {"dana"}
    assert assignments_next(study_id=closed_study.pk, annotator=dana).leases
