"""The jobs API and researcher pages: permissions, validation, what each page shows."""

import pytest
from rest_framework.test import APIClient

from evalhub.jobs import runner
from evalhub.jobs.models import Job
from tests.jobs.conftest import client_for


@pytest.fixture
def trained(alice, as_worker, base_version, preference_study):
    """A training job launched through the API and run to its end in this process."""
    response = client_for(alice).post(
        "/api/jobs/training/",
        {
            "base_version": base_version.pk,
            "study": preference_study.pk,
            "max_steps": 2,
            "batch_size": 2,
            "validation_every": 0,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    runner.job_run(response.json()["id"])
    return Job.objects.get(pk=response.json()["id"])


def test_annotators_and_anonymous_users_cannot_reach_jobs(bob, base_version, preference_study):
    """The jobs API is for researchers only."""
    for client in (client_for(bob), APIClient()):
        assert client.get("/api/jobs/").status_code in (401, 403)
        assert client.post("/api/jobs/training/", {"base_version": base_version.pk}).status_code in (401, 403)


def test_launch_errors_are_400_with_the_reason(alice, base_version, preference_study):
    """A refused launch answers 400 with the reason, and creates no job."""
    client = client_for(alice)
    bad = client.post(
        "/api/jobs/training/",
        {"base_version": base_version.pk, "study": preference_study.pk, "beta": -5},
        format="json",
    )
    assert bad.status_code == 400 and "beta must be positive" in bad.json()["beta"][0]
    missing = client.post("/api/jobs/training/", {"study": preference_study.pk}, format="json")
    assert missing.status_code == 400 and "base_version" in missing.json()
    assert not Job.objects.exists()


def test_job_detail_list_cancel_and_retry(alice, trained):
    """Detail with the loss curve, the list, and cancel/retry only where the state allows."""
    client = client_for(alice)
    detail = client.get(f"/api/jobs/{trained.pk}/").json()
    assert detail["state"] == "succeeded" and detail["produced_version"] == trained.produced_version.name
    assert [p["step"] for p in detail["metrics"]] == [1, 2]
    assert [j["id"] for j in client.get("/api/jobs/").json()] == [trained.pk]
    assert client.post(f"/api/jobs/{trained.pk}/cancel/").status_code == 400
    assert client.post(f"/api/jobs/{trained.pk}/retry/").status_code == 400

    again = client.post(
        "/api/jobs/generation/",
        {"model_version": trained.produced_version_id, "prompt_set": trained.source_study.prompt_set_id},
        format="json",
    ).json()
    cancelled = client.post(f"/api/jobs/{again['id']}/cancel/").json()
    assert cancelled["state"] == "cancelled"
    retried = client.post(f"/api/jobs/{again['id']}/retry/")
    assert retried.status_code == 201 and retried.json()["retry_of"] == again["id"]


def test_compare_without_images_queues_generation_first(alice, trained, prompt_set):
    """Comparing a version that has no images yet queues their generation, studies after."""
    response = client_for(alice).post(
        f"/api/model-versions/{trained.produced_version_id}/compare/",
        {"prompt_set": prompt_set.pk, "images_per_prompt": 1, "steps": 2},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["studies"] == [] and body["job"]["kind"] == "generation"
    assert Job.objects.get(pk=body["job"]["id"]).config["compare_after"] is True


def test_the_compare_form_takes_a_display_size_and_names_the_parents_sizes(
    client, alice, trained, prompt_set
):
    """The researcher sees the parent's image sizes beside the field; the size goes to the job."""
    client.force_login(alice)
    url = f"/jobs/compare/{trained.produced_version_id}/"
    form = client.get(url).content.decode()
    assert 'name="display_size"' in form and "images: 8×6." in form
    client.post(url, {"prompt_set": prompt_set.pk, "images_per_prompt": 1, "steps": 2, "seed": 0,
                      "display_size": "16x12"})  # fmt: skip
    assert Job.objects.get(kind="generation").config["display_size"] == "16x12"
    bad = client.post(url, {"prompt_set": prompt_set.pk, "images_per_prompt": 1, "steps": 2, "seed": 0,
                            "display_size": "huge"})  # fmt: skip
    assert "display size must be WIDTHxHEIGHT" in bad.content.decode()


def test_schema_documents_the_jobs_endpoints(alice):
    """The OpenAPI schema lists the jobs endpoints."""
    schema = client_for(alice).get("/api/schema/").content.decode()
    for path in (
        "/api/jobs/training/",
        "/api/jobs/{job_id}/cancel/",
        "/api/model-versions/{version_id}/compare/",
    ):
        assert path in schema


def test_researcher_pages(client, alice, trained, preference_study):
    """The jobs list, the job page, the version's lineage, the study's train link and the form."""
    client.force_login(alice)
    assert f"/jobs/{trained.pk}/" in client.get("/jobs/").content.decode()
    page = client.get(f"/jobs/{trained.pk}/").content.decode()
    assert (
        "succeeded" in page and trained.produced_version.name in page and "registered model version" in page
    )
    version_page = client.get(f"/catalog/models/{trained.produced_version_id}/").content.decode()
    assert f"training data (SimPO) <code>{trained.data_hash}</code>" in version_page
    assert f"/jobs/{trained.pk}/" in version_page and "preference pairs of study" in version_page
    assert preference_study.name in version_page and "Compare with" in version_page
    study_page = client.get(f"/results/studies/{preference_study.pk}/").content.decode()
    assert "Train on these preferences" in study_page
    form = client.get(f"/jobs/new/training/?study={preference_study.pk}").content.decode()
    assert 'name="loss_space"' in form and 'name="beta"' in form and 'name="seed"' in form


def test_the_training_form_shows_validation_errors(client, alice, base_version, preference_study):
    """The trainer's own config check speaks on the form; nothing is queued."""
    client.force_login(alice)
    response = client.post(
        "/jobs/new/training/",
        {"base_version": base_version.pk, "study": preference_study.pk, "method": "sft",
         "loss_space": "latent", "beta": 3, "max_steps": 2, "batch_size": 1, "learning_rate": 1e-5,
         "mixed_precision": "no", "lora_rank": 0},
    )  # fmt: skip
    assert response.status_code == 200
    assert "apply to dpo/simpo, not sft" in response.content.decode()
    assert not Job.objects.exists()


def test_annotators_get_403_on_job_pages(client, bob, trained):
    """Annotators cannot open the jobs pages."""
    client.force_login(bob)
    assert client.get("/jobs/").status_code == 403
    assert client.get(f"/jobs/{trained.pk}/").status_code == 403


def test_the_whole_schema_generates_without_warnings(tmp_path):
    """Component names and enums stay unambiguous as the API grows (drf-spectacular's check)."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/jobs/training/" in (tmp_path / "schema.yaml").read_text()
