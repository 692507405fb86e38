"""The participants CSV (evalhub.results.participants_csv): one row per crowd participant,
every column checked against the database."""

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from annotate.assignment import assignments_next
from annotate.crowd import crowd_enter
from annotate.models import CrowdParticipant, Enrollment, Judgment
from annotate.services import study_update, task_set_gold
from annotate.submission import Timing, judgment_submit
from annotate.workforce import annotator_exclude, gold_score
from evalhub.results.participants_csv import COLUMNS, participants_csv
from tests.factories import UserFactory
from tests.results.conftest import ab_study

QUOTA = 4


@pytest.fixture
def study(db):
    """Twenty prompts, N = 5, two gold tasks; crowd participants answer four tasks each."""
    study = ab_study(20, overlap=5, name="crowd")
    study = study_update(study=study, crowd_enabled=True, crowd_quota_tasks=QUOTA)
    for task in study.tasks.order_by("key")[:2]:
        task_set_gold(study=study, task_key=task.key, answer={"choice": "right"})
    return study


def test_the_participants_csv_matches_the_database_for_a_simulated_study_of_20_participants(study, client):
    """Twenty participants answer 0 to 4 tasks with timing, some right on gold; one is
    excluded; each CSV row is what the ORM says."""
    start = timezone.now() - timedelta(hours=1)
    for i in range(20):
        user = crowd_enter(
            study=study,
            platform_id=f"PID{i:02d}",
            platform_study_id="ST",
            platform_session_id=f"S{i}",
            now=start,
        ).annotator
        for n in range(i % (QUOTA + 1)):
            lease = assignments_next(study_id=study.pk, annotator=user).leases[0]
            judgment_submit(
                token=lease.token,
                annotator=user,
                client_id=uuid.uuid4(),
                answer={"choice": "right" if (i + n) % 3 else "left"},
                timing=Timing(
                    shown_for_ms=2000 + 100 * i + n, on_screen_ms=1500 + 100 * i + n, answered_ms_ago=0
                ),
            )
        if i % (QUOTA + 1) == QUOTA:
            assignments_next(study_id=study.pk, annotator=user)  # the completion
    excluded = CrowdParticipant.objects.get(platform_id="PID03").user
    annotator_exclude(study=study, annotator=excluded, reason="failed gold")
    UserFactory(username="staff", role="annotators")  # not a crowd participant: no row

    later = timezone.now() + timedelta(hours=1)  # quiet for longer than a lease since
    rows = list(csv.DictReader(io.StringIO(participants_csv(study, now=later))))
    assert list(rows[0]) == COLUMNS
    assert len(rows) == 20
    for row in rows:
        participant = CrowdParticipant.objects.get(platform_id=row["participant_id"])
        user = participant.user
        enrollment = Enrollment.objects.get(study=study, annotator=user)
        judgments = Judgment.objects.filter(task__study=study, annotator=user)
        seconds = judgments.aggregate(s=Sum("on_screen_seconds"))["s"] or 0.0
        score = gold_score(study, user)
        assert row["platform_study_id"] == "ST"
        assert row["session_id"] == enrollment.platform_session_id
        assert row["started_at"] == enrollment.started_at.isoformat()
        assert row["completed_at"] == (enrollment.completed_at.isoformat() if enrollment.completed_at else "")
        assert int(row["tasks_done"]) == judgments.filter(excluded=False).count()
        assert float(row["time_on_task_seconds"]) == round(seconds, 1)
        assert int(row["gold_answered"]) == score.answered
        assert row["gold_accuracy"] == (str(round(score.accuracy, 3)) if score.answered else "")
        if user == excluded:
            expected = "excluded"
        elif enrollment.completed_at is not None:
            expected = "completed"
        else:
            expected = "returned" if judgments.count() < QUOTA else "started"
        assert row["status"] == expected, row
    statuses = [row["status"] for row in rows]
    assert statuses.count("completed") == 4 and statuses.count("excluded") == 1
    assert UserFactory._meta.model.objects.get(username="staff").username not in participants_csv(study)


def test_the_download_is_for_researchers_only(study, client, django_user_model):
    """An annotator is refused the file; a researcher gets it as an attachment."""
    crowd_enter(study=study, platform_id="PIDX")
    url = f"/results/studies/{study.pk}/participants.csv"
    UserFactory(username="ann", role="annotators")
    client.force_login(django_user_model.objects.get(username="ann"))
    assert client.get(url).status_code == 403
    client.force_login(UserFactory(username="rita", role="researchers"))
    response = client.get(url)
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
