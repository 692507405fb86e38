"""Who may work on a study open to enrolled annotators only: invitation links, enrolling
and removing annotators.

A researcher makes an invitation for one or more studies (``invitation_create``); a
person who opens its link signs up as an annotator, or logs in, and accepts it
(``invitation_accept``, ``annotator_signup``), which enrolls them in its studies. A link
takes nobody new once revoked, expired or used ``max_uses`` times; the people it enrolled
stay enrolled. A study's ``access`` (annotate.study_settings) says whether enrollment
matters: an open study is every annotator's. Assignment reads the enrollment with the
study's state (annotate.queries.ALLOWED_COLUMN).

Removing an annotator (``annotator_remove``) skips the leases they hold in the study at
once, so their tasks go back to the pool and an answer still in flight is refused as a
skipped task (errors.TASK_SKIPPED). Their judgments stay and count: removal is about
who works from now on; excluding judgments is annotate.workforce's.
"""

import re
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from annotate import errors
from annotate.errors import Conflict, InvalidInput
from annotate.models import Enrollment, Invitation, Lease, Study
from annotate.workforce import reason_clean
from evalhub.accounts.roles import ANNOTATORS, user_grant_role, user_roles

MAX_DAYS = 365
MAX_USES = 100_000
REASON_LENGTH = Enrollment._meta.get_field("removed_reason").max_length
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


# ---------------------------------------------------------------- invitations


def invitation_expiry(days: int | None, now: datetime | None = None) -> datetime | None:
    """The moment an invitation made now for ``days`` days expires (None: never)."""
    if days is None:
        return None
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(errors.INVITATION_EXPIRY_RANGE.format(days=days))
    return (now or timezone.now()) + timedelta(days=days)


def email_domain_clean(domain: str) -> str:
    """A domain as invitations keep it: lower case, without a leading "@"; "" for none."""
    domain = domain.strip().lower().removeprefix("@")
    if domain and not _DOMAIN.fullmatch(domain):
        raise InvalidInput(errors.INVITATION_BAD_DOMAIN.format(domain=domain))
    return domain


@transaction.atomic
def invitation_create(
    *,
    studies: list[Study],
    created_by,
    expires_at: datetime | None = None,
    max_uses: int | None = None,
    email_domain: str = "",
    note: str = "",
) -> Invitation:
    """A new invitation link to ``studies``, with a random token."""
    if not studies:
        raise InvalidInput(errors.INVITATION_NO_STUDY)
    if max_uses is not None and not 1 <= max_uses <= MAX_USES:
        raise InvalidInput(errors.INVITATION_MAX_USES_RANGE.format(uses=max_uses))
    invitation = Invitation.objects.create(
        created_by=created_by,
        expires_at=expires_at,
        max_uses=max_uses,
        email_domain=email_domain_clean(email_domain),
        note=note.strip()[: Invitation._meta.get_field("note").max_length],
    )
    invitation.studies.set(studies)
    return invitation


def invitation_revoke(*, invitation: Invitation, now: datetime | None = None) -> Invitation:
    """Stop the link taking anyone new; who joined through it stays enrolled."""
    now = now or timezone.now()
    if not Invitation.objects.filter(pk=invitation.pk, revoked_at=None).update(revoked_at=now):
        raise Conflict(errors.INVITATION_ALREADY_REVOKED)
    invitation.revoked_at = now
    return invitation


REFUSALS = {
    "revoked": errors.INVITATION_REVOKED,
    "expired": errors.INVITATION_EXPIRED,
    "used up": errors.INVITATION_USED_UP,
}


def invitation_state(invitation: Invitation, now: datetime | None = None) -> str:
    """ "open" while the link takes people, else why not: "revoked", "expired", "used up"."""
    now = now or timezone.now()
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at is not None and invitation.expires_at <= now:
        return "expired"
    if invitation.max_uses is not None and invitation.uses >= invitation.max_uses:
        return "used up"
    return "open"


def invitation_refusal(invitation: Invitation, now: datetime | None = None) -> str | None:
    """The message for a link that takes nobody new, or None while it does."""
    return REFUSALS.get(invitation_state(invitation, now))


def invitation_email_check(invitation: Invitation, email: str) -> None:
    """Refuse an e-mail address outside the invitation's domain (if it names one)."""
    domain = invitation.email_domain
    if not domain:
        return
    email = email.strip().lower()
    if not email:
        raise InvalidInput(errors.EMAIL_REQUIRED.format(domain=domain))
    if not email.endswith("@" + domain):
        raise InvalidInput(errors.EMAIL_WRONG_DOMAIN.format(domain=domain))


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user, now: datetime | None = None) -> list[Enrollment]:
    """Enroll ``user`` in the invitation's studies, as an annotator, and count one use.

    The invitation's row is locked while its uses are counted, so ``max_uses`` people get
    in, never more. A user with no role becomes an annotator. Accepting again is harmless
    and uses nothing: a user already enrolled in every study (or removed from one: only a
    researcher re-enrolls them, annotator_enroll) gets their enrollments back unchanged,
    even from a link that has since closed. Raises InvalidInput with the reason the link
    takes nobody new."""
    now = now or timezone.now()
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    studies = list(invitation.studies.all())
    enrollments = {e.study_id: e for e in Enrollment.objects.filter(annotator=user, study__in=studies)}
    new = [study for study in studies if study.pk not in enrollments]
    if not new:
        return list(enrollments.values())
    refusal = invitation_refusal(invitation, now)
    if refusal is not None:
        raise InvalidInput(refusal)
    roles = user_roles(user)
    if ANNOTATORS not in roles:
        if roles or user.is_superuser:
            raise InvalidInput(errors.INVITATION_FOR_ANNOTATORS)
        user_grant_role(user=user, role=ANNOTATORS)
    created = Enrollment.objects.bulk_create(
        Enrollment(study=study, annotator=user, invitation=invitation, joined_at=now) for study in new
    )
    invitation.uses += 1
    invitation.save(update_fields=["uses"])
    return list(enrollments.values()) + created


@transaction.atomic
def annotator_signup(
    *, invitation: Invitation, username: str, password: str, email: str = "", now: datetime | None = None
) -> User:
    """A new annotator account through an invitation, enrolled in its studies; nothing is
    created when the link takes nobody new. The username and password are the form's to
    check (Django's validators); the e-mail's domain is checked here."""
    invitation_email_check(invitation, email)
    user = User.objects.create_user(username=username, password=password, email=email.strip())
    invitation_accept(invitation=invitation, user=user, now=now)
    return user


# ---------------------------------------------------------------- by hand


@transaction.atomic
def annotator_enroll(*, study: Study, annotator, now: datetime | None = None) -> Enrollment:
    """Enroll an annotator in a study by hand, or re-enroll a removed one."""
    now = now or timezone.now()
    enrollment, created = Enrollment.objects.select_for_update().get_or_create(
        study=study, annotator=annotator, defaults={"joined_at": now}
    )
    if not created and enrollment.status == Enrollment.Status.REMOVED:
        enrollment.status = Enrollment.Status.ENROLLED
        enrollment.joined_at = now
        enrollment.removed_at = None
        enrollment.removed_reason = ""
        enrollment.save(update_fields=["status", "joined_at", "removed_at", "removed_reason"])
    return enrollment


@transaction.atomic
def annotator_remove(*, study: Study, annotator, reason: str, now: datetime | None = None) -> int:
    """Remove an enrolled annotator from a study and skip the leases they hold in it at
    once, which go back to the pool. Returns the leases released.

    The enrollment is written before the leases: a lease request that read it before this
    commits can still take a task in that instant, which then lives out the study's
    ``lease_seconds`` like any lease."""
    now = now or timezone.now()
    reason = reason_clean(reason, REASON_LENGTH)
    updated = Enrollment.objects.filter(
        study=study, annotator=annotator, status=Enrollment.Status.ENROLLED
    ).update(status=Enrollment.Status.REMOVED, removed_at=now, removed_reason=reason)
    if not updated:
        raise InvalidInput(errors.NOT_ENROLLED_IN.format(annotator=annotator.username))
    return Lease.objects.filter(task__study=study, annotator=annotator, state=Lease.State.ACTIVE).update(
        state=Lease.State.SKIPPED
    )
