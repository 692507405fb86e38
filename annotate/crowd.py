"""Participants from a crowd platform (Prolific, MTurk): the entry at the study's crowd
link, their quota of tasks or minutes, and the completion code.

A participant arrives at ``/crowd/<study>/`` with the platform's participant, study and
session ids as URL parameters (``PARTICIPANT_PARAMETERS`` and the others below).
``crowd_enter`` finds or makes a passwordless annotator bound to the participant id
(``CrowdParticipant``; its username is random, so nothing any other annotator sees can
show the platform's id) and enrolls them in the study, with the platform's ids and the
moment they arrived on the enrollment. Opening the link again resumes the same session.
A participant who completed the study, or was excluded or removed from it, is not taken
again.

Assignment reads when the participant arrived in the statement it reads the study with
(annotate.queries.CROWD_STARTED_COLUMN), and only for a crowd participant asks
``crowd_completion`` whether their quota is spent: then it hands out nothing more and the
API answers with the completion code and the completion URL the researcher set
(annotate.study_settings, ``crowd_*``).
"""

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate import errors
from annotate.errors import Conflict, Forbidden, InvalidInput, NotFound
from annotate.models import AnnotatorTally, CrowdParticipant, Enrollment, Study
from annotate.study_settings import config_group
from evalhub.accounts.roles import ANNOTATORS, user_grant_role

PLATFORM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The URL parameters each id may come in: Prolific's names first, then generic ones (MTurk
# and other platforms put their own ids in these with the link's placeholders).
PARTICIPANT_PARAMETERS = ("PROLIFIC_PID", "participant")
STUDY_PARAMETERS = ("STUDY_ID", "study")
SESSION_PARAMETERS = ("SESSION_ID", "session")


@dataclass(frozen=True)
class Completion:
    code: str
    url: str


@dataclass(frozen=True)
class CrowdState:
    """A crowd participant's standing in a study: their completion once their quota is
    spent (None before), and the tasks their quota still allows (None: no task quota)."""

    completion: Completion | None
    tasks_left: int | None


def crowd_parameters(query) -> dict[str, str]:
    """The platform's ids from a link's query (``request.GET``), by the first parameter name
    given of each: ``platform_id``, ``platform_study_id``, ``platform_session_id``."""

    def first(names: tuple[str, ...]) -> str:
        return next((query[name].strip() for name in names if query.get(name, "").strip()), "")

    return {
        "platform_id": first(PARTICIPANT_PARAMETERS),
        "platform_study_id": first(STUDY_PARAMETERS),
        "platform_session_id": first(SESSION_PARAMETERS),
    }


def crowd_link_template(base_url: str) -> str:
    """The study's crowd link as researchers paste it into Prolific (its placeholders)."""
    placeholders = "&".join(f"{name}={{{{%{name}%}}}}" for name in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"))
    return f"{base_url}?{placeholders}"


def _platform_value(value: str) -> str:
    """A platform id checked: 1 to 64 letters, digits, '-' or '_'."""
    if not PLATFORM_ID.fullmatch(value):
        raise InvalidInput(errors.CROWD_BAD_ID)
    return value


def crowd_enabled(study: Study) -> bool:
    return bool(config_group(study, "crowd")["crowd_enabled"])


@transaction.atomic
def crowd_enter(
    *,
    study: Study,
    platform_id: str,
    platform_study_id: str = "",
    platform_session_id: str = "",
    now: datetime | None = None,
) -> Enrollment:
    """Find or make the participant's annotator and enroll them in ``study``; returns the
    enrollment (``.annotator`` to log in). The same participant resumes their enrollment.

    Refused: a study that takes no crowd participants (NotFound), a malformed id
    (InvalidInput), a participant who completed the study and comes back under another
    session (Conflict), one excluded or removed from it (Forbidden)."""
    now = now or timezone.now()
    if not crowd_enabled(study):
        raise NotFound(errors.CROWD_NOT_ACCEPTED)
    platform_id = _platform_value(platform_id)
    platform_study_id = _platform_value(platform_study_id) if platform_study_id else ""
    platform_session_id = _platform_value(platform_session_id) if platform_session_id else ""
    user = _participant_user(platform_id)
    enrollment = Enrollment.objects.select_for_update().filter(study=study, annotator=user).first()
    if enrollment is not None and enrollment.status == Enrollment.Status.REMOVED:
        raise Forbidden(errors.CROWD_EXCLUDED)
    if AnnotatorTally.objects.filter(study=study, annotator=user, excluded_at__isnull=False).exists():
        raise Forbidden(errors.CROWD_EXCLUDED)
    if enrollment is None:
        return Enrollment.objects.create(
            study=study,
            annotator=user,
            joined_at=now,
            platform_study_id=platform_study_id,
            platform_session_id=platform_session_id,
            started_at=now,
            crowd_status=Enrollment.CrowdStatus.STARTED,
        )
    if enrollment.completed_at is not None and platform_session_id != enrollment.platform_session_id:
        raise Conflict(errors.CROWD_ALREADY_TOOK_PART)
    if enrollment.started_at is None:  # enrolled before by hand: the session starts now
        enrollment.started_at = now
        enrollment.platform_study_id = platform_study_id
        enrollment.platform_session_id = platform_session_id
        enrollment.crowd_status = Enrollment.CrowdStatus.STARTED
        enrollment.save(
            update_fields=["started_at", "platform_study_id", "platform_session_id", "crowd_status"]
        )
    return enrollment


def _participant_user(platform_id: str) -> User:
    """The passwordless annotator bound to the participant id, made on their first visit
    with a random username (never the platform's id)."""
    participant = CrowdParticipant.objects.select_related("user").filter(platform_id=platform_id).first()
    if participant is not None:
        return participant.user
    try:
        with transaction.atomic():
            user = User(username=f"crowd-{secrets.token_hex(8)}")
            user.set_unusable_password()
            user.save()
            user_grant_role(user=user, role=ANNOTATORS)
            CrowdParticipant.objects.create(platform_id=platform_id, user=user)
    except IntegrityError:  # the same participant arrived twice at once: theirs stands
        return CrowdParticipant.objects.select_related("user").get(platform_id=platform_id).user
    return user


def crowd_completion(
    *, study_id: int, annotator, started_at: datetime, done: int | None, now: datetime
) -> CrowdState:
    """Whether a crowd participant's quota is spent: ``crowd_quota_tasks`` answers, or
    ``crowd_quota_minutes`` since they arrived. The first time it is, their enrollment is
    marked completed (a conditional update: once)."""
    completed_at, config = (
        Enrollment.objects.filter(study_id=study_id, annotator=annotator)
        .values_list("completed_at", "study__config")
        .get()
    )
    crowd = config_group(Study(config=config), "crowd")
    quota, minutes = crowd["crowd_quota_tasks"], crowd["crowd_quota_minutes"]
    if done is None and quota:
        done = (
            AnnotatorTally.objects.filter(study_id=study_id, annotator=annotator)
            .values_list("judgments", flat=True)
            .first()
            or 0
        )
    spent = (
        completed_at is not None
        or (quota and done >= quota)
        or (minutes and now >= started_at + timedelta(minutes=minutes))
    )
    if spent:
        completion = crowd_complete(study_id=study_id, annotator=annotator, crowd=crowd, now=now)
        return CrowdState(completion=completion, tasks_left=0)
    return CrowdState(completion=None, tasks_left=quota - done if quota else None)


def crowd_complete(*, study_id: int, annotator, now: datetime, crowd: dict | None = None) -> Completion:
    """Mark the participant's enrollment completed (once) and return their completion
    (``crowd``: the study's crowd settings, when already read)."""
    Enrollment.objects.filter(study_id=study_id, annotator=annotator, completed_at=None).update(
        completed_at=now, crowd_status=Enrollment.CrowdStatus.COMPLETED
    )
    if crowd is None:
        config = Study.objects.values_list("config", flat=True).get(pk=study_id)
        crowd = config_group(Study(config=config), "crowd")
    return Completion(code=crowd["crowd_completion_code"], url=crowd["crowd_completion_url"])
