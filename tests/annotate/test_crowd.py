"""Crowd participants (annotate.crowd): the entry link makes a passwordless annotator with
an opaque username, the same participant resumes, one who completed cannot enroll again,
and the quota (tasks or minutes) ends with the completion code."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate import errors
from annotate.assignment import assignments_next
from annotate.crowd import crowd_enter
from annotate.errors import Conflict, Forbidden
from annotate.models import CrowdParticipant, Enrollment
from annotate.services import study_create
from annotate.submission import judgment_submit
from annotate.workforce import annotator_exclude

PID = "5f1a2b3c4d5e6f7a8b9c0d1e"
RETURN_URL = "https://app.prolific.com/submissions/complete?cc=ABC123"


@pytest.fixture
def crowd_study(prompt_set, model_a, model_b):
    """Six A/B tasks, N = 1, crowd participants answer two tasks each."""
    return study_create(
        name="crowd",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=[model_a, model_b],
        overlap=1,
        exposure="shared",
        crowd_enabled=True,
        crowd_quota_tasks=2,
        crowd_completion_url=RETURN_URL,
        crowd_completion_code="ABC123",
    )


def link(study, pid=PID, session="s1"):
    return f"/crowd/{study.pk}/?PROLIFIC_PID={pid}&STUDY_ID=st1&SESSION_ID={session}"


def answer(study, annotator, now=None):
    """Answer the next task handed out; returns the call's result."""
    result = assignments_next(study_id=study.pk, annotator=annotator, now=now)
    for lease in result.leases:
        judgment_submit(
            token=lease.token, annotator=annotator, client_id=uuid.uuid4(), answer={"choice": "tie"}
        )
    return result


def test_the_link_makes_a_passwordless_annotator_with_an_opaque_username(client, crowd_study):
    """The participant is logged in and sent to the labeling page; their username is not their id."""
    response = client.get(link(crowd_study))
    assert response.status_code == 302
    assert response["Location"] == f"/annotate/studies/{crowd_study.pk}/"
    participant = CrowdParticipant.objects.get(platform_id=PID)
    user = participant.user
    assert PID not in user.username and user.username.startswith("crowd-")
    assert not user.has_usable_password()
    assert int(client.session["_auth_user_id"]) == user.pk
    enrollment = Enrollment.objects.get(study=crowd_study, annotator=user)
    assert (enrollment.platform_study_id, enrollment.platform_session_id) == ("st1", "s1")
    assert enrollment.crowd_status == "started" and enrollment.started_at is not None
    assert client.get(f"/annotate/studies/{crowd_study.pk}/").status_code == 200


def test_generic_parameter_names_are_accepted(client, crowd_study):
    """participant, study and session work like Prolific's names."""
    response = client.get(f"/crowd/{crowd_study.pk}/?participant=W123&study=H9&session=A7")
    assert response.status_code == 302
    enrollment = Enrollment.objects.get(annotator__crowd__platform_id="W123")
    assert (enrollment.platform_study_id, enrollment.platform_session_id) == ("H9", "A7")


def test_the_same_participant_resumes(client, crowd_study):
    """Opening the link again finds the same annotator and enrollment, progress kept."""
    client.get(link(crowd_study))
    user = CrowdParticipant.objects.get(platform_id=PID).user
    answer(crowd_study, user)
    client.logout()
    client.get(link(crowd_study))
    assert int(client.session["_auth_user_id"]) == user.pk
    assert CrowdParticipant.objects.count() == 1
    assert Enrollment.objects.filter(study=crowd_study).count() == 1
    assert assignments_next(study_id=crowd_study.pk, annotator=user).progress.done == 1


def test_quota_by_tasks_ends_with_the_completion(crowd_study):
    """After two answers "next" hands out nothing and gives the code and URL; the enrollment is completed."""
    user = crowd_enter(study=crowd_study, platform_id=PID).annotator
    first = assignments_next(study_id=crowd_study.pk, annotator=user, count=3)
    assert len(first.leases) == 2  # no more than the quota allows
    for lease in first.leases:
        judgment_submit(token=lease.token, annotator=user, client_id=uuid.uuid4(), answer={"choice": "left"})
    done = assignments_next(study_id=crowd_study.pk, annotator=user)
    assert done.leases == []
    assert (done.completion.code, done.completion.url) == ("ABC123", RETURN_URL)
    enrollment = Enrollment.objects.get(study=crowd_study, annotator=user)
    assert enrollment.completed_at is not None and enrollment.crowd_status == "completed"


def test_the_api_answers_next_with_the_completion(client, crowd_study):
    """The labeling page's call carries the completion once the quota is spent."""
    client.get(link(crowd_study))
    user = CrowdParticipant.objects.get(platform_id=PID).user
    answer(crowd_study, user)
    answer(crowd_study, user)
    body = client.post(
        f"/api/annotate/studies/{crowd_study.pk}/next/", {}, content_type="application/json"
    ).json()
    assert body["assignments"] == []
    assert body["completion"] == {"code": "ABC123", "url": RETURN_URL}


def test_quota_by_minutes_counts_from_arrival(crowd_study):
    """With ten minutes, a task is handed out at minute 9 and none at minute 10."""
    from annotate.services import study_update

    study_update(study=crowd_study, crowd_quota_tasks=0, crowd_quota_minutes=10)
    start = timezone.now()
    user = crowd_enter(study=crowd_study, platform_id=PID, now=start).annotator
    assert len(answer(crowd_study, user, now=start + timedelta(minutes=9)).leases) == 1
    late = assignments_next(study_id=crowd_study.pk, annotator=user, now=start + timedelta(minutes=10))
    assert late.leases == [] and late.completion.code == "ABC123"


def test_a_completed_participant_cannot_enroll_again(client, crowd_study):
    """Another session of a participant who completed is told they took part, and gets no task."""
    user = crowd_enter(study=crowd_study, platform_id=PID, platform_session_id="s1").annotator
    answer(crowd_study, user)
    answer(crowd_study, user)
    assignments_next(study_id=crowd_study.pk, annotator=user)
    with pytest.raises(Conflict, match=errors.CROWD_ALREADY_TOOK_PART):
        crowd_enter(study=crowd_study, platform_id=PID, platform_session_id="s2")
    response = client.get(link(crowd_study, session="s2"))
    assert response.status_code == 409
    assert errors.CROWD_ALREADY_TOOK_PART in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_excluded_participant_stays_excluded(client, crowd_study):
    """Excluded from the study, the participant's link is refused."""
    user = crowd_enter(study=crowd_study, platform_id=PID).annotator
    annotator_exclude(study=crowd_study, annotator=user, reason="failed attention checks")
    with pytest.raises(Forbidden):
        crowd_enter(study=crowd_study, platform_id=PID)
    assert client.get(link(crowd_study)).status_code == 403


def test_a_crowd_participant_gets_no_other_open_study(crowd_study, prompt_set, model_a):
    """Crowd accounts work on the studies they arrived at only."""
    other = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    user = crowd_enter(study=crowd_study, platform_id=PID).annotator
    with pytest.raises(Forbidden):
        assignments_next(study_id=other.pk, annotator=user)


@pytest.mark.parametrize("pid", ["", "a b", "x" * 65, "<script>"])
def test_a_malformed_id_is_a_400_page(client, crowd_study, pid):
    """A missing or malformed participant id makes nobody."""
    response = client.get(f"/crowd/{crowd_study.pk}/", {"PROLIFIC_PID": pid})
    assert response.status_code == 400
    assert errors.CROWD_BAD_ID in response.content.decode().replace("&#x27;", "'")
    assert not CrowdParticipant.objects.exists()


def test_a_study_without_crowd_participants_is_a_404_page(client, prompt_set, model_a):
    """The link of a study that takes no crowd participants says so."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    response = client.get(link(study))
    assert response.status_code == 404
    assert errors.CROWD_NOT_ACCEPTED in response.content.decode()
    assert not CrowdParticipant.objects.exists()
