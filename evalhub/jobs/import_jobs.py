"""Image imports as jobs: an archive too large to import inside a web request.

The import page (evalhub.catalog.views) hands an archive above
``EVALHUB_IMPORT_INLINE_MAX_BYTES`` to :func:`image_import_launch` (registered by
``JobsConfig.ready``, evalhub.catalog.background_import): its central directory is checked
at once (not a ZIP, no manifest: the form says so, no job), then it is streamed to the
``default`` storage under ``uploads/imports/`` and a job of kind ``import`` is queued on
the ``cpu`` queue. The worker shares no disk with the web (the storage may be a bucket):
:func:`image_import_run` downloads the archive to a temporary file, imports it streaming,
a chunk of rows per transaction (evalhub.catalog.image_import_stream), the job's progress
being rows done of rows total, and deletes the upload.

The upload is deleted when the import ends for good: done, or refused for a bad row (the
same archive would be refused again; the researcher uploads a fixed one, whose import skips
what the first one imported). It is kept when the import is cancelled or fails otherwise
(a lost database connection, a worker killed), so that Retry continues from it, skipping
the rows already in.
"""

import io
import tempfile
import uuid
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from evalhub.catalog import errors
from evalhub.catalog.background_import import QueuedImport
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_import_stream import (
    ImportStoppedAtRow,
    generated_images_import_stream,
    manifest_row_count,
)
from evalhub.catalog.image_sources import ImageSourceError, ZipSource
from evalhub.catalog.models import PromptSet
from evalhub.jobs.models import Job
from evalhub.jobs.queueing import job_enqueue
from evalhub.storage import file_get, key

UPLOADS_PREFIX = "uploads/imports"

# Lines of the job's log and errors users see; tests reuse them.
UPLOAD_GONE = (
    "the uploaded archive {name!r} is no longer stored (an upload is deleted once its import "
    "ends); upload it again on the import page"
)
IMPORT_STARTED = "importing {rows} rows of {name!r} ({size}) into prompt set {prompt_set!r}"
IMPORT_DONE = "imported {summary}"
UPLOAD_DELETED = "deleted the upload {key}"


def image_import_launch(*, user, prompt_set: PromptSet, archive, create_models: bool) -> QueuedImport:
    """Store ``archive`` (an uploaded file) and queue its import; where to follow it.

    Raises ``ImageSourceError`` for an archive whose directory is refused (not a ZIP, no
    manifest, too many members, a manifest over the text-file limit), ``ImportRejected``
    for a manifest without rows, before anything is stored. The manifest's rows are
    counted here, so the job's page shows "0 / N" from the start.
    """
    source = ZipSource.open(archive)
    rows = manifest_row_count(io.BytesIO(source.manifest_bytes()))
    source.archive.close()  # leaves ``archive`` itself open
    if not rows:
        raise ImportRejected(errors.EMPTY_FILE)
    archive.seek(0)
    stored = default_storage.save(key(UPLOADS_PREFIX, f"{uuid.uuid4().hex}.zip"), archive)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                kind=Job.Kind.IMPORT,
                prompt_set=prompt_set,
                config={
                    "upload": stored,
                    "archive_name": Path(archive.name or "archive.zip").name[:200],
                    "archive_bytes": archive.size,
                    "create_models": create_models,
                },
                progress_total=rows,
                created_by=user,
            )
            job_enqueue(job)
    except BaseException:
        default_storage.delete(stored)
        raise
    return QueuedImport(url=reverse("jobs:job_detail", args=[job.pk]), label=f"import job #{job.pk}")


def image_import_run(job: Job, monitor) -> None:
    """Download the job's archive, import it with progress, record the counts, delete the
    upload (kept where Retry can continue from it: see the module's docstring)."""
    upload = job.config["upload"]
    if not default_storage.exists(upload):
        raise ImportRejected(UPLOAD_GONE.format(name=job.config.get("archive_name", upload)))
    with tempfile.TemporaryDirectory(prefix=f"evalhub-import-{job.pk}-") as folder:
        local = Path(folder) / "archive.zip"
        file_get(default_storage, upload, local)
        try:
            result = _import_archive(job, local, monitor)
        except (ImportRejected, ImageSourceError) as exc:
            if isinstance(exc, ImportStoppedAtRow):
                Job.objects.filter(pk=job.pk).update(result=_counts(exc.result))
            _delete_upload(upload, monitor)
            raise
    Job.objects.filter(pk=job.pk).update(result=_counts(result))
    monitor.log(IMPORT_DONE.format(summary=result.summary()))
    _delete_upload(upload, monitor)


def _import_archive(job: Job, local: Path, monitor):
    with local.open("rb") as handle:
        source = ZipSource.open(handle)
        manifest = io.BytesIO(source.manifest_bytes())  # within the text-file limit
        total = manifest_row_count(manifest)
        monitor.log(
            IMPORT_STARTED.format(
                rows=total,
                name=job.config.get("archive_name", ""),
                size=filesizeformat(local.stat().st_size),
                prompt_set=job.prompt_set.name,
            )
        )
        return generated_images_import_stream(
            prompt_set=job.prompt_set,
            manifest=manifest,
            source=source,
            create_models=job.config.get("create_models", False),
            total=total,
            on_progress=monitor.set_progress,
            should_stop=monitor.cancel_requested,
        )


def _counts(result) -> dict:
    return {
        "rows": result.rows,
        "created": result.created,
        "skipped": result.skipped,
        "models_created": result.models_created,
        "summary": result.summary(),
    }


def _delete_upload(upload: str, monitor) -> None:
    default_storage.delete(upload)
    monitor.log(UPLOAD_DELETED.format(key=upload))
