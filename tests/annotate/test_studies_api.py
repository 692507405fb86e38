"""The researchers' studies API: each study's progress figures, counted for all the
studies together in a fixed number of queries."""

import uuid

import pytest
from rest_framework.test import APIClient

from annotate.assignment import assignments_next
from annotate.models import ImageReport, Study
from annotate.selectors import studies_progress, study_progress
from annotate.services import study_create, task_set_gold
from annotate.submission import judgment_submit

# The role check, the studies with their prompt sets, their models, and three counts:
# tasks, judgments, reports.
LIST_QUERIES = 6
DETAIL_QUERIES = 6


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


def make_studies(count: int, prompt_set, model_a, model_b) -> None:
    for i in range(count):
        kind = ("ab", "best_worst", "alignment")[i % 3]
        models = [model_a, model_b] if kind == "ab" else [model_a]
        study_create(name=f"study {i}", kind=kind, prompt_set=prompt_set, model_versions=models)


@pytest.mark.parametrize("count", [1, 5])
def test_the_list_takes_the_same_queries_whatever_the_number_of_studies(
    api, prompt_set, model_a, model_b, django_assert_num_queries, count
):
    """One study or five: the same number of queries."""
    make_studies(count, prompt_set, model_a, model_b)
    with django_assert_num_queries(LIST_QUERIES):
        response = api.get("/api/studies/")
    assert response.status_code == 200 and len(response.json()) == count


def test_the_detail_takes_a_fixed_number_of_queries(
    api, prompt_set, model_a, model_b, django_assert_num_queries
):
    """A study's page in the API reads it like the list does."""
    make_studies(2, prompt_set, model_a, model_b)
    study_id = Study.objects.get(name="study 1").pk
    with django_assert_num_queries(DETAIL_QUERIES):
        response = api.get(f"/api/studies/{study_id}/")
    assert response.status_code == 200 and response.json()["id"] == study_id


def test_each_study_gets_its_own_figures(api, annotators, prompt_set, model_a, model_b):
    """Counted together, the figures stay each study's: tasks at its own N, its judgments,
    annotators, gold tasks and reports."""
    bw = study_create(
        name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a], overlap=1
    )
    ab = study_create(name="ab", kind="ab", prompt_set=prompt_set, model_versions=[model_a, model_b])
    study_create(name="empty-handed", kind="alignment", prompt_set=prompt_set, model_versions=[model_b])
    task_set_gold(study=bw, task_key="p0000", answer={"positive": 0, "negative": 1})
    for annotator in annotators[:2]:
        (lease,) = assignments_next(study_id=bw.pk, annotator=annotator).leases
        judgment_submit(
            token=lease.token,
            annotator=annotator,
            client_id=uuid.uuid4(),
            answer={"positive": 0, "negative": 1},
        )
    (lease,) = assignments_next(study_id=ab.pk, annotator=annotators[2]).leases
    judgment_submit(
        token=lease.token, annotator=annotators[2], client_id=uuid.uuid4(), answer={"choice": "tie"}
    )
    task = ab.tasks.first()
    for annotator in annotators[3:5]:
        ImageReport.objects.create(task=task, image=task.images.first(), annotator=annotator)

    listed = {study["name"]: study["progress"] for study in api.get("/api/studies/").json()}
    assert listed == {
        "bw": {
            "tasks": 3,
            "tasks_complete": 2,
            "gold_tasks": 1,
            "judgments": 2,
            "judgments_needed": 3,
            "annotators": 2,
            "reports": 0,
        },
        "ab": {
            "tasks": 6,
            "tasks_complete": 0,
            "gold_tasks": 0,
            "judgments": 1,
            "judgments_needed": 30,
            "annotators": 1,
            "reports": 2,
        },
        "empty-handed": {
            "tasks": 3,
            "tasks_complete": 0,
            "gold_tasks": 0,
            "judgments": 0,
            "judgments_needed": 15,
            "annotators": 0,
            "reports": 0,
        },
    }
    assert study_progress(ab) == listed["ab"] == studies_progress([bw, ab])[ab.pk]
    assert api.get(f"/api/studies/{bw.pk}/").json()["progress"] == listed["bw"]
