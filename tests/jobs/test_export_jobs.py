"""A study's raw judgments exported as a job: launched from the results page, written by the
worker's code to the artifacts storage, downloaded from the job's page by researchers only."""

import io

import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage

from evalhub.jobs import runner
from evalhub.jobs.export_jobs import EXPORT_DONE, judgments_export_launch
from evalhub.jobs.models import Job
from evalhub.storage import artifacts_storage, walk
from tests.jobs.conftest import queued
from tests.results.conftest import ab_study, vote


@pytest.fixture
def judged_study(db):
    """An A/B study over four prompts, each task judged by five annotators."""
    study = ab_study(4, name="Flaws: pixel SimPO vs base")
    vote(study, {task: ["A", "A", "B", "tie", "A"] for task in study.tasks.all()})
    return study


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_results_page_offers_the_export_job_to_researchers(client, alice, judged_study):
    """The study page has the "export raw judgments as a job" form for a researcher."""
    client.force_login(alice)
    page = client.get(f"/results/studies/{judged_study.pk}/").content.decode()
    assert f'action="/jobs/new/export/{judged_study.pk}/"' in page
    assert "Export raw judgments as a job" in page


def test_launching_queues_an_export_job_on_the_cpu_queue(
    client, alice, judged_study, broker_queue, django_capture_on_commit_callbacks
):
    """The launch creates an export job of the study with its judgments as the total,
    queued on the cpu queue, and shows its page."""
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/jobs/new/export/{judged_study.pk}/")
    job = Job.objects.get()
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    assert (job.kind, job.source_study, job.progress_total, job.model_version) == (
        Job.Kind.EXPORT, judged_study, 20, None,
    )  # fmt: skip
    assert len(queued(broker_queue, "cpu")) == 1 and not queued(broker_queue, "gpu")
    page = client.get(response.url).content.decode()
    assert "Judgments export job" in page and "written when the job ends" in page


def test_the_worker_writes_the_file_to_storage_and_the_page_streams_it(
    client, alice, judged_study, as_worker, storage_kind
):
    """The file lands in the artifacts storage under exports/<job>/; the job's link streams
    exactly the bytes of the direct Parquet download, 20 rows."""
    job = judgments_export_launch(user=alice, study=judged_study)
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    key = f"exports/{job.pk}/judgments-flaws-pixel-simpo-vs-base.parquet"
    assert job.result["file"] == key and job.result["rows"] == 20
    assert list(walk(artifacts_storage(), "exports")) == [key]
    assert not list(walk(default_storage, "exports"))
    assert (job.progress_step, job.progress_total) == (20, 20)
    assert EXPORT_DONE.format(rows=20, size=job.result["bytes"], key=key) in job.log_tail

    client.force_login(alice)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'href="/jobs/{job.pk}/export-file/"' in page and "Download the 20 judgments" in page
    download = client.get(f"/jobs/{job.pk}/export-file/")
    assert download.status_code == 200 and "Location" not in download
    assert download["Content-Disposition"] == (
        'attachment; filename="judgments-flaws-pixel-simpo-vs-base.parquet"'
    )
    exported = body(download)
    assert len(exported) == job.result["bytes"]
    direct = body(client.get(f"/results/studies/{judged_study.pk}/judgments.parquet"))
    assert exported == direct
    assert pq.read_table(io.BytesIO(exported)).num_rows == 20


def test_only_researchers_download_an_export(client, alice, bob, charlie, judged_study, as_worker):
    """Bob (annotator) and Charlie (no role) get 403 on the file and on the launch."""
    job = judgments_export_launch(user=alice, study=judged_study)
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    for person in (bob, charlie):
        client.force_login(person)
        assert client.get(f"/jobs/{job.pk}/export-file/").status_code == 403
        assert client.post(f"/jobs/new/export/{judged_study.pk}/").status_code == 403
    assert Job.objects.count() == 1


def test_there_is_no_file_before_the_export_ends_nor_for_other_jobs(client, alice, judged_study):
    """A queued export, or a job of another kind, answers 404 at the file's address; a
    study that does not exist, 404 at the launch."""
    job = judgments_export_launch(user=alice, study=judged_study)
    client.force_login(alice)
    assert client.get(f"/jobs/{job.pk}/export-file/").status_code == 404
    Job.objects.filter(pk=job.pk).update(kind=Job.Kind.IMPORT, state=Job.State.SUCCEEDED)
    assert client.get(f"/jobs/{job.pk}/export-file/").status_code == 404
    assert client.get("/jobs/999999/export-file/").status_code == 404
    assert client.post("/jobs/new/export/999999/").status_code == 404


def test_an_export_whose_file_was_deleted_answers_404(client, alice, judged_study, as_worker, storage_kind):
    """The stored file removed behind the app's back: 404, not a 500."""
    job = judgments_export_launch(user=alice, study=judged_study)
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    artifacts_storage().delete(job.result["file"])
    client.force_login(alice)
    assert client.get(f"/jobs/{job.pk}/export-file/").status_code == 404
