"""Jobs with an S3 bucket for storage (the moto server): a worker shares no disk with the web
or with the worker before it. Its run's curve, samples and checkpoints reach the bucket
while it trains, trained weights are registered by their content hash, a retry elsewhere
continues from the stored checkpoint, and a worker fetches the weights it needs once.

Each test that runs a job removes the worker's folder afterwards (or moves the next worker
to a new one), so what passes can only have come from the bucket."""

import io
import shutil
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from PIL import Image

from evalhub.catalog.models import GeneratedImage, ModelVersion
from evalhub.jobs import runner, selectors, services
from evalhub.jobs.errors import JobRejected
from evalhub.jobs.folders import sft_data_names
from evalhub.jobs.models import Job
from evalhub.jobs.run_sync import stored_checkpoints
from evalhub.jobs.weights import (
    HASH_MISMATCH,
    WeightsUnavailable,
    weights_family,
    weights_local,
    weights_upload,
)
from evalhub.storage import artifacts_storage, tree_hash, tree_put
from tests.jobs.conftest import SFT_SET, launch_training
from tests.jobs.test_runner import cancelled_after_steps
from tests.s3 import bucket_keys


def _keys(bucket: dict, prefix: str) -> list[str]:
    return [
        k
        for k in bucket_keys(bucket["EVALHUB_S3_ENDPOINT_URL"], bucket["EVALHUB_S3_BUCKET"])
        if k.startswith(prefix)
    ]


def test_a_training_keeps_its_files_in_the_bucket(
    s3_bucket, alice, as_worker, base_version, preference_study, jobs_dir, settings, client, tmp_path
):
    """Images from the bucket, then the run's metrics, samples, checkpoints and trained
    weights in it: the job page reads them there once the worker's folder is gone."""
    settings.EVALHUB_WEIGHTS_CACHE_DIR = tmp_path / "cache"
    assert _keys(s3_bucket, "media/")  # the study's images live in the bucket
    job = launch_training(alice, base_version, preference_study, checkpoint_every=1, validation_every=2)
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED, Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    final = jobs_dir / str(job.pk) / "run" / "final"
    digest = tree_hash(final)
    version = job.produced_version
    assert version.weights_uri == f"storage://models/{digest}" == job.result["final_model"]
    assert f"uploaded the trained weights to storage://models/{digest}" in job.log_tail
    stored = _keys(s3_bucket, "jobs/")
    assert f"jobs/{job.pk}/run/metrics.jsonl" in stored
    assert f"jobs/models/{digest}/model_index.json" in stored
    assert stored_checkpoints(job) == ["step-2"]  # the newest at the last round; none at the end
    assert f"jobs/{job.pk}/run/checkpoints/step-2/training_state.json" in stored

    shutil.rmtree(jobs_dir)
    assert [point["step"] for point in selectors.job_metrics(job)] == [1, 2, 3]
    samples = selectors.job_samples(job)
    assert [row["step"] for row in samples["steps"]] == [3, 2, 0] and samples["width"] == 64
    client.force_login(alice)
    response = client.get(samples["steps"][0]["images"][0]["url"])
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert client.get(f"/jobs/{job.pk}/samples/1/0.png").status_code == 404
    assert weights_family(version.weights_uri) == "unet"


def test_a_retry_on_another_worker_continues_from_the_stored_checkpoint(
    s3_bucket, alice, as_worker, base_version, preference_study, jobs_dir, settings, tmp_path
):
    """Cancelled on worker 1 (its checkpoint goes to the bucket as it stops); the retry runs
    on worker 2, whose folder is empty: it fetches that checkpoint, the curve up to it and
    the samples, continues, and ends at the last step."""
    settings.EVALHUB_JOB_HEARTBEAT_SECONDS = 0.2
    settings.EVALHUB_JOB_UPLOAD_SECONDS = 0.2
    job = launch_training(
        alice, base_version, preference_study, max_steps=12, loss_space="latent", batch_size=1
    )
    stopped = cancelled_after_steps(job, 2)
    assert stored_checkpoints(job)[-1] == f"step-{stopped}"

    settings.EVALHUB_JOBS_DIR = tmp_path / "worker-2"  # the other worker: nothing of worker 1
    shutil.rmtree(jobs_dir)
    retry = services.job_retry(job, user=alice)
    assert runner.job_run(retry.pk) == Job.State.SUCCEEDED
    retry.refresh_from_db()
    assert runner.CONTINUING.format(job=job.pk, checkpoint=f"step-{stopped}") in retry.log_tail
    shutil.rmtree(settings.EVALHUB_JOBS_DIR)
    assert [point["step"] for point in selectors.job_metrics(retry)] == list(range(1, 13))


def test_weights_are_fetched_once_and_checked(s3_bucket, tiny_unet_folder, settings, tmp_path):
    """The first use downloads into the cache folder named by the hash; later uses read the
    cache (here with the stored copy gone); a stored copy that does not match its hash is
    refused and leaves no cache behind."""
    settings.EVALHUB_WEIGHTS_CACHE_DIR = tmp_path / "cache"
    uri = weights_upload(tiny_unet_folder)
    digest = uri.rsplit("/", 1)[1]
    assert uri == f"storage://models/{tree_hash(tiny_unet_folder)}" == weights_upload(tiny_unet_folder)
    local = weights_local(uri)
    assert local == str(tmp_path / "cache" / digest)
    for path in tiny_unet_folder.rglob("*"):
        if path.is_file():
            assert (
                tmp_path / "cache" / digest / path.relative_to(tiny_unet_folder)
            ).read_bytes() == path.read_bytes()
    storage = artifacts_storage()
    config = f"models/{digest}/unet/config.json"
    storage.save(config + ".bak", storage.open(config))
    storage.delete(config)
    assert weights_local(uri) == local  # from the cache: the storage is not asked again

    settings.EVALHUB_WEIGHTS_CACHE_DIR = tmp_path / "other-cache"
    with storage.open(config + ".bak") as handle:
        text = handle.read().replace(b"}", b', "tampered": true}', 1)
    storage.save(config, ContentFile(text))
    with pytest.raises(WeightsUnavailable, match=HASH_MISMATCH.split(":")[0].format(uri=uri)):
        weights_local(uri)
    assert not (tmp_path / "other-cache" / digest).exists()
    assert [p.name for p in (tmp_path / "other-cache").iterdir()] == []


def test_generation_from_stored_weights_puts_its_images_in_the_bucket(
    s3_bucket, alice, as_worker, base_version, prompt_set, settings, tmp_path
):
    """A version whose weights are only in the bucket generates; its images are imported
    through the storage like any import."""
    settings.EVALHUB_WEIGHTS_CACHE_DIR = tmp_path / "cache"
    version = ModelVersion.objects.create(
        name="stored", kind="base", weights_uri=weights_upload(Path(base_version.weights_uri))
    )
    before = len(_keys(s3_bucket, "media/"))
    gen = services.generation_launch(
        user=alice, model_version=version, prompt_set=prompt_set, images_per_prompt=1, steps=2
    )
    assert runner.job_run(gen.pk) == Job.State.SUCCEEDED, Job.objects.get(pk=gen.pk).error
    images = GeneratedImage.objects.filter(model_version=version)
    assert images.count() == 3
    assert len(_keys(s3_bucket, "media/")) == before + 3
    for image in images:
        assert f"media/{image.file.name}" in _keys(s3_bucket, "media/")
        with image.file.open("rb") as handle, Image.open(handle) as decoded:
            assert decoded.size == (64, 64)


def test_a_launch_from_weights_missing_in_the_bucket_is_refused(
    s3_bucket, alice, base_version, preference_study
):
    """Checked before queueing, from the stored model_index.json (the web loads no model)."""
    base_version.weights_uri = "storage://models/" + "0" * 64
    base_version.save()
    with pytest.raises(JobRejected, match="no weights in the storage"):
        launch_training(alice, base_version, preference_study)
    base_version.weights_uri = "storage://models/not-a-hash"
    base_version.save()
    with pytest.raises(JobRejected, match="not a stored weights URI"):
        launch_training(alice, base_version, preference_study)


def test_upload_weights_points_a_version_at_the_bucket(s3_bucket, db, tiny_unet_folder, tmp_path):
    """The command a deployment uses to give workers a base model: content-named in the
    bucket, the version created or updated; a folder that is no pipeline is refused."""
    out = io.StringIO()
    call_command(
        "upload_weights", str(tiny_unet_folder), "--model-version", "sd-tiny", "--create", stdout=out
    )
    version = ModelVersion.objects.get(name="sd-tiny")
    assert version.weights_uri == f"storage://models/{tree_hash(tiny_unet_folder)}" and version.kind == "base"
    assert f"now reads its weights from {version.weights_uri}" in out.getvalue()
    assert f"jobs/models/{tree_hash(tiny_unet_folder)}/model_index.json" in _keys(s3_bucket, "jobs/")
    with pytest.raises(CommandError, match="no model version named 'other'"):
        call_command("upload_weights", str(tiny_unet_folder), "--model-version", "other")
    with pytest.raises(CommandError, match="not a diffusers pipeline folder"):
        call_command("upload_weights", str(tmp_path), "--model-version", "sd-tiny")


def test_an_sft_data_set_in_the_bucket_trains_on_a_worker_without_it(
    s3_bucket, alice, as_worker, base_version, sft_folder, jobs_dir, settings, tmp_path
):
    """The deployment puts the set under the bucket's ``jobs/sft-data/``; the form offers it
    by name and the worker trains on its own copy (here in a folder that never had it)."""
    tree_put(artifacts_storage(), sft_folder, f"sft-data/{SFT_SET}")
    files = sorted(p.name for p in sft_folder.iterdir())
    artifacts_storage().save("sft-data/no-metadata/0.png", ContentFile(b"x"))
    shutil.rmtree(jobs_dir)
    settings.EVALHUB_JOBS_DIR = tmp_path / "worker"
    assert sft_data_names() == [SFT_SET]
    job = services.training_launch(
        user=alice,
        base_version=base_version,
        sft_data=SFT_SET,
        options={"method": "sft", "max_steps": 2, "batch_size": 2, "validation_every": 0},
    )
    assert runner.job_run(job.pk) == Job.State.SUCCEEDED, Job.objects.get(pk=job.pk).error
    copy = tmp_path / "worker" / "sft-data" / SFT_SET
    assert sorted(p.name for p in copy.iterdir()) == files == ["0.png", "1.png", "2.png", "metadata.jsonl"]
