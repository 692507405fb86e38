"""Very large exports as jobs: a study's raw judgments as Parquet, written by a CPU worker
to the ``artifacts`` storage and downloaded from the job's page.

The results page streams judgments.csv and writes judgments.parquet inside the request
(evalhub.results.views); for a study of millions of judgments a researcher may rather
launch the export as a job (:func:`judgments_export_launch`) and come back for the file.
The worker writes the same file as the direct download (``judgments_parquet_write``, a row
group at a time, memory flat) to a temporary file, then copies it to the artifacts
storage under ``exports/<job id>/`` (:func:`judgments_export_run`). The job's page links
:func:`export_file_open`'s stream, researchers only; no URL ever names the storage.
"""

import tempfile
from pathlib import Path, PurePosixPath

from django.db import transaction
from django.utils.text import slugify

from annotate.models import Judgment, Study
from evalhub.jobs.models import Job
from evalhub.jobs.queueing import job_enqueue
from evalhub.results.judgments_parquet import judgments_parquet_write
from evalhub.storage import artifacts_storage, file_put, key, open_if_stored

EXPORTS_PREFIX = "exports"
EXPORT_FORMAT = "parquet"

# Lines of the job's log users see; tests reuse them.
EXPORT_STARTED = "exporting {judgments} judgments of study {study!r} as Parquet"
EXPORT_DONE = "wrote {rows} rows ({size} bytes) to {key}"


def export_file_name(study: Study) -> str:
    """``judgments-<study name>.parquet`` (the study's id where its name leaves no letters)."""
    return f"judgments-{slugify(study.name) or f'study-{study.pk}'}.{EXPORT_FORMAT}"


def judgments_export_launch(*, user, study: Study) -> Job:
    """Queue the export of ``study``'s raw judgments as Parquet (the ``cpu`` queue)."""
    with transaction.atomic():
        job = Job.objects.create(
            kind=Job.Kind.EXPORT,
            source_study=study,
            config={"format": EXPORT_FORMAT},
            progress_total=Judgment.objects.filter(task__study=study).count(),
            created_by=user,
        )
        return job_enqueue(job)


def judgments_export_run(job: Job, monitor) -> None:
    """Write the study's judgments to the artifacts storage; the key, rows and size go to
    the job's ``result``. Run twice (a retry), it writes the file again in its own folder."""
    study = job.source_study
    total = Judgment.objects.filter(task__study=study).count()
    monitor.set_progress(0, total)
    monitor.log(EXPORT_STARTED.format(judgments=total, study=study.name))
    stored = key(EXPORTS_PREFIX, job.pk, export_file_name(study))
    with tempfile.TemporaryDirectory(prefix=f"evalhub-export-{job.pk}-") as folder:
        local = Path(folder) / export_file_name(study)
        with local.open("wb") as out:
            rows = judgments_parquet_write(study, out)
        size = local.stat().st_size
        file_put(artifacts_storage(), stored, local)
    monitor.set_progress(rows, max(total, rows))
    Job.objects.filter(pk=job.pk).update(result={"file": stored, "rows": rows, "bytes": size})
    monitor.log(EXPORT_DONE.format(rows=rows, size=size, key=stored))


def export_file_open(job: Job):
    """The finished export's file, open for reading from the artifacts storage, and its
    download name; ``None`` for a job that has none (another kind, not finished, deleted)."""
    stored = (job.result or {}).get("file") if job.kind == Job.Kind.EXPORT else None
    if job.state != Job.State.SUCCEEDED or not stored:
        return None
    handle = open_if_stored(artifacts_storage(), stored)
    return (handle, PurePosixPath(stored).name) if handle is not None else None
