"""A study's workforce page and API: every annotator with their counts, flags and status;
excluding and reinstating one from the page's forms or the API, with the reason kept in
the event log; refusals (no reason, already excluded, not excluded) shown as messages or
answered in the API's error contract; researchers only."""

import uuid

import pytest
from django.contrib.messages import get_messages
from rest_framework.test import APIClient

from annotate import errors
from annotate.assignment import assignments_next
from annotate.enrollment import annotator_enroll
from annotate.models import AnnotatorTally, Enrollment, Judgment, Lease, WorkforceEvent
from annotate.services import study_update, task_set_gold
from annotate.submission import judgment_submit
from annotate.workforce import annotator_exclude, gold_score
from evalhub.results.workforce_flags import gold_scores
from evalhub.results.workforce_page import (
    EXCLUDED_MESSAGE,
    REINSTATED_MESSAGE,
    REMOVED_MESSAGE,
    workforce_judgments,
    workforce_rows,
)
from tests.factories import UserFactory
from tests.results.conftest import ab_study

GOLD_KEYS = 3


def answer_all(study, annotator, choose, seconds: float) -> None:
    """``annotator`` answers every task the study hands them, ``choose(task)`` the side,
    each answer ``seconds`` on screen (as the labeling page would have measured)."""
    while leases := assignments_next(study_id=study.pk, annotator=annotator).leases:
        for lease in leases:
            judgment_submit(
                token=lease.token,
                annotator=annotator,
                client_id=uuid.uuid4(),
                answer={"choice": choose(lease.task)},
            )
    Judgment.objects.filter(task__study=study, annotator=annotator).update(on_screen_seconds=seconds)


@pytest.fixture
def study(db):
    """Six prompts × two criteria, N = 2, three gold tasks whose answer is "right"; the rule
    flags (never excludes) under 70 % over 3 gold answers. Lefty answers left to everything
    in half a second; Ana answers gold right and the rest alternately, in 6 s."""
    study = ab_study(6, criteria=("flaws", "appeal"), overlap=2, name="workforce")
    study = study_update(study=study, quality_min_gold=3)
    for task in study.tasks.order_by("key")[:GOLD_KEYS]:
        task_set_gold(study=study, task_key=task.key, answer={"choice": "right"})
    lefty = UserFactory(username="lefty", role="annotators")
    ana = UserFactory(username="ana", role="annotators")
    answer_all(study, lefty, lambda task: "left", 0.5)
    sides = iter(["left", "right"] * 12)
    answer_all(study, ana, lambda task: "right" if task.is_gold else next(sides), 6.0)
    return study


def row_of(rows: list[dict], username: str) -> dict:
    return next(row for row in rows if row["username"] == username)


def page(client, user, study):
    client.force_login(user)
    return client.get(f"/results/studies/{study.pk}/workforce/")


def post(client, user, study, action: str, annotator, reason: str):
    client.force_login(user)
    return client.post(
        f"/results/studies/{study.pk}/workforce/{annotator.pk}/{action}/", {"reason": reason}, follow=True
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# ---------------------------------------------------------------- rows and flags


def test_each_annotator_has_their_counts_flags_and_status(study):
    """Lefty: 12 judgments, fast, constant and low on gold; Ana: none of those, gold 3/3."""
    rows = workforce_rows(study)
    assert [row["username"] for row in rows] == ["ana", "lefty"]
    lefty, ana = row_of(rows, "lefty"), row_of(rows, "ana")
    assert (lefty["judgments"], lefty["excluded_judgments"], lefty["median_seconds"]) == (12, 0, 0.5)
    assert (lefty["gold_answered"], lefty["gold_correct"]) == (GOLD_KEYS, 0)
    assert [flag.name for flag in lefty["flags"]] == ["fast", "constant", "low_gold"]
    assert lefty["flags"][1].text == "left in 100 % of 12 answers"
    assert (ana["gold_answered"], ana["gold_correct"], ana["flags"]) == (GOLD_KEYS, GOLD_KEYS, [])
    assert lefty["status"] == ana["status"] == "active"
    # Both answered every task: where they agree, both agree with the (two-vote) majority.
    assert lefty["agreement_with_majority"] == ana["agreement_with_majority"] == 1.0


def test_gold_scores_from_the_frame_are_the_services_own(study):
    """The page counts gold as annotate.workforce.gold_score does, for everybody at once."""
    scores = gold_scores(workforce_judgments(study))
    for tally in AnnotatorTally.objects.filter(study=study).select_related("annotator"):
        assert scores[tally.annotator_id] == gold_score(study, tally.annotator)


def test_the_page_shows_the_rule_the_annotators_and_their_flags(client, alice, study):
    """The quality rule in words at the top, one row per annotator with their flags' texts."""
    response = page(client, alice, study)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Quality rule: annotators with an accuracy on gold items under 70 % once they have given 3" in html
    assert "median 0.5 s on screen per task, under the 2 s floor" in html
    assert "left in 100 % of 12 answers" in html and "gold 0/3 (0 %), under 70 %" in html
    assert 'id="annotator-{}"'.format(row_of(workforce_rows(study), "ana")["annotator_id"]) in html
    assert html.count(">Exclude</button>") == 2 and "Reinstate" not in html
    assert "Nobody has been excluded from this study." in html


def test_the_study_page_links_to_the_workforce(client, alice, study):
    client.force_login(alice)
    html = client.get(f"/results/studies/{study.pk}/").content.decode()
    assert f'href="/results/studies/{study.pk}/workforce/">Workforce</a>' in html


def test_the_page_has_no_inline_script_or_style(client, alice, study):
    """The CSP forbids them: no <script> body, style= or on…= attribute."""
    html = page(client, alice, study).content.decode()
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html


# ---------------------------------------------------------------- the page's actions


def test_excluding_from_the_page_excludes_and_logs(client, alice, study):
    """The form's reason goes with the exclusion: tally, judgments and the event say so."""
    lefty = AnnotatorTally.objects.get(study=study, annotator__username="lefty").annotator
    response = post(client, alice, study, "exclude", lefty, "always left, too fast")

    assert response.redirect_chain[-1][0] == f"/results/studies/{study.pk}/workforce/"
    tally = AnnotatorTally.objects.get(study=study, annotator=lefty)
    assert tally.excluded_at is not None and tally.excluded_reason == "always left, too fast"
    assert Judgment.objects.filter(annotator=lefty, excluded=True).count() == 12
    event = WorkforceEvent.objects.get(study=study, annotator=lefty)
    assert (event.action, event.by, event.judgments, event.tasks_reopened) == ("excluded", alice, 12, 12)
    assert messages_of(response) == [EXCLUDED_MESSAGE.format(annotator="lefty", judgments=12, tasks=12)]
    html = response.content.decode()
    assert "always left, too fast" in html and ">Reinstate</button>" in html
    row = row_of(workforce_rows(study), "lefty")
    assert (row["status"], row["judgments"], row["excluded_judgments"]) == ("excluded", 0, 12)


def test_reinstating_from_the_page_brings_the_judgments_back(client, alice, study):
    """Nobody filled lefty's tasks meanwhile: all 12 judgments count again."""
    lefty = AnnotatorTally.objects.get(study=study, annotator__username="lefty").annotator
    annotator_exclude(study=study, annotator=lefty, reason="always left", by=alice)

    response = post(client, alice, study, "reinstate", lefty, "talked to them")

    tally = AnnotatorTally.objects.get(study=study, annotator=lefty)
    assert tally.excluded_at is None and tally.excluded_reason == ""
    assert not Judgment.objects.filter(annotator=lefty, excluded=True).exists()
    assert messages_of(response) == [REINSTATED_MESSAGE.format(annotator="lefty", judgments=12)]
    assert list(WorkforceEvent.objects.filter(study=study).values_list("action", "reason")) == [
        ("reinstated", "talked to them"),
        ("excluded", "always left"),
    ]


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_empty_reason_is_a_message_and_changes_nothing(client, alice, study, reason):
    lefty = AnnotatorTally.objects.get(study=study, annotator__username="lefty").annotator
    response = post(client, alice, study, "exclude", lefty, reason)

    assert response.status_code == 200 and messages_of(response) == [errors.REASON_EMPTY]
    assert AnnotatorTally.objects.get(study=study, annotator=lefty).excluded_at is None
    assert not WorkforceEvent.objects.exists() and not Judgment.objects.filter(excluded=True).exists()


def test_excluding_twice_or_reinstating_someone_active_is_a_message(client, alice, study):
    lefty = AnnotatorTally.objects.get(study=study, annotator__username="lefty").annotator
    ana = AnnotatorTally.objects.get(study=study, annotator__username="ana").annotator
    annotator_exclude(study=study, annotator=lefty, reason="always left", by=alice)

    twice = post(client, alice, study, "exclude", lefty, "again")
    active = post(client, alice, study, "reinstate", ana, "why not")

    assert messages_of(twice) == [errors.ALREADY_EXCLUDED.format(annotator="lefty")]
    assert messages_of(active) == [errors.NOT_EXCLUDED.format(annotator="ana")]
    assert WorkforceEvent.objects.count() == 1


def test_someone_with_no_part_in_the_study_cannot_be_excluded(client, alice, study):
    """A stranger's id is refused before the service would give them a tally row."""
    stranger = UserFactory(username="stranger", role="annotators")
    response = post(client, alice, study, "exclude", stranger, "never here")
    assert messages_of(response) == [errors.NOT_IN_STUDY.format(annotator=str(stranger.pk))]
    assert not AnnotatorTally.objects.filter(annotator=stranger).exists()


def test_annotators_get_403_on_the_page_and_its_forms(client, bob, study):
    lefty = AnnotatorTally.objects.get(study=study, annotator__username="lefty").annotator
    assert page(client, bob, study).status_code == 403
    client.force_login(bob)
    response = client.post(f"/results/studies/{study.pk}/workforce/{lefty.pk}/exclude/", {"reason": "x"})
    assert response.status_code == 403
    assert AnnotatorTally.objects.get(study=study, annotator=lefty).excluded_at is None


# ---------------------------------------------------------------- API


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


def test_the_api_lists_the_rows_with_flags_and_status(api, study):
    response = api.get(f"/api/studies/{study.pk}/workforce/")
    assert response.status_code == 200
    lefty = row_of(response.json(), "lefty")
    assert lefty["judgments"] == 12 and lefty["status"] == "active" and lefty["excluded_at"] is None
    assert [flag["name"] for flag in lefty["flags"]] == ["fast", "constant", "low_gold"]
    assert lefty["flags"][2]["text"] == "gold 0/3 (0 %), under 70 %"
    assert row_of(response.json(), "ana")["flags"] == []


def test_the_api_excludes_and_reinstates_with_the_event(api, alice, study):
    excluded = api.post(
        f"/api/studies/{study.pk}/workforce/lefty/exclude/", {"reason": "always left"}, format="json"
    )
    assert excluded.status_code == 200
    assert excluded.json() | {"at": None} == {
        "annotator": "lefty",
        "action": "excluded",
        "reason": "always left",
        "by": "alice",
        "judgments": 12,
        "tasks_reopened": 12,
        "at": None,
    }
    assert AnnotatorTally.objects.get(study=study, annotator__username="lefty").excluded_at is not None
    row = row_of(api.get(f"/api/studies/{study.pk}/workforce/").json(), "lefty")
    assert (row["status"], row["excluded_reason"], row["excluded_judgments"]) == (
        "excluded",
        "always left",
        12,
    )

    back = api.post(
        f"/api/studies/{study.pk}/workforce/lefty/reinstate/", {"reason": "ok now"}, format="json"
    )
    assert (
        back.status_code == 200 and back.json()["action"] == "reinstated" and back.json()["judgments"] == 12
    )


def test_the_api_refuses_in_its_error_contract(api, study):
    """No reason: 400; twice: 409; nobody of that name here: 404."""
    url = f"/api/studies/{study.pk}/workforce/{{}}/{{}}/"
    blank = api.post(url.format("lefty", "exclude"), {"reason": " "}, format="json")
    missing = api.post(url.format("lefty", "exclude"), {}, format="json")
    assert blank.status_code == 400 and blank.json() == {"detail": errors.REASON_EMPTY, "code": "invalid"}
    assert missing.status_code == 400 and missing.json()["code"] == "invalid"

    assert api.post(url.format("lefty", "exclude"), {"reason": "a"}, format="json").status_code == 200
    twice = api.post(url.format("lefty", "exclude"), {"reason": "b"}, format="json")
    active = api.post(url.format("ana", "reinstate"), {"reason": "c"}, format="json")
    assert twice.status_code == 409 and twice.json() == {
        "detail": errors.ALREADY_EXCLUDED.format(annotator="lefty"),
        "code": "conflict",
    }
    assert active.status_code == 409 and active.json()["code"] == "conflict"

    stranger = api.post(url.format("nobody", "exclude"), {"reason": "d"}, format="json")
    assert stranger.status_code == 404 and stranger.json()["code"] == "not_found"
    assert WorkforceEvent.objects.count() == 1


def test_annotators_get_403_from_the_api(bob, study):
    client = APIClient()
    client.force_authenticate(bob)
    assert client.get(f"/api/studies/{study.pk}/workforce/").status_code == 403
    response = client.post(
        f"/api/studies/{study.pk}/workforce/lefty/exclude/", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert not WorkforceEvent.objects.exists()


def test_the_list_reads_the_whole_study_at_once(api, study, django_assert_num_queries):
    """Seven queries (role, study, judgments, tallies, enrollments and the two the majority
    reads), none per annotator."""
    with django_assert_num_queries(7):
        assert api.get(f"/api/studies/{study.pk}/workforce/").status_code == 200


def test_removing_an_enrolled_annotator_releases_their_leases_at_once(client, alice, db):
    """In a study open to enrolled annotators, Remove takes an annotator off it: their held
    lease is skipped at once; the row then says removed, with no Remove button."""
    study = study_update(study=ab_study(1, overlap=2, name="enrolled"), access="enrolled")
    newcomer = UserFactory(username="newcomer", role="annotators")
    annotator_enroll(study=study, annotator=newcomer)
    (lease,) = assignments_next(study_id=study.pk, annotator=newcomer).leases
    AnnotatorTally.objects.get_or_create(study=study, annotator=newcomer)  # their row on the page
    assert page(client, alice, study).content.decode().count(">Remove from study</button>") == 1

    response = post(client, alice, study, "remove", newcomer, "left the project")

    assert messages_of(response) == [REMOVED_MESSAGE.format(annotator="newcomer", leases=1)]
    assert Lease.objects.get(pk=lease.pk).state == Lease.State.SKIPPED
    assert Enrollment.objects.get(study=study, annotator=newcomer).status == Enrollment.Status.REMOVED
    assert row_of(workforce_rows(study), "newcomer")["enrollment"] == "removed"
    assert ">Remove from study</button>" not in response.content.decode()
