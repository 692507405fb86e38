"""Images on both storages: the folder of one machine and an S3 bucket (a real moto server).

Whatever EvalHub writes or reads as an image goes through Django's ``default`` storage:
the import (a manifest, or a ZIP the researcher uploads), the annotator's per-task image
URL, the researcher's image view, the resampled copies of a study with a display size,
the preference export, and the clean-up of a failed import or study. Each test here runs
once per storage (``storage_kind``); the bucket is checked with boto3 directly, not
through EvalHub. The tests that compare the two storages build on the filesystem, copy
the media folder into a bucket, remove the folder and run again from the bucket.

Annotators never learn a storage key: images come from the app's token URLs with status
200, never a redirect to the bucket, and no page or payload names the bucket or a key.
"""

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from annotate.models import Lease, ResampledImage, Study
from annotate.services import study_create
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import GeneratedImage, ModelVersion
from evalhub.results.preference_export import preference_pairs_export
from tests.factories import PromptFactory, PromptSetFactory, UserFactory, png_bytes
from tests.results.test_preference_export import build, folder_files
from tests.s3 import bucket_keys, s3_client

# The sizes two models draw, so that an A/B study needs a display size to show them.
SIZES = {"wide-model": (12, 10), "small-model": (8, 8)}
DISPLAY_SIZE = (16, 12)
PROMPTS = ("a lighthouse at dusk", "a red fox in snow")
# What the annotator's image URL answers with, beyond the body (and its length): the
# same on both storages.
IMAGE_HEADERS = {
    "Content-Type": "image/png",
    "Content-Disposition": 'inline; filename="image.png"',
    "Cache-Control": "private, max-age=3600",
}


# ---------------------------------------------------------------- helpers


class StoredMedia:
    """What the ``default`` storage holds, read past EvalHub: the files under
    ``MEDIA_ROOT``, or the objects under the bucket's ``media/`` prefix."""

    def __init__(self, media_root: Path, environment: dict[str, str] | None):
        self.media_root = media_root
        self.environment = environment

    def names(self) -> list[str]:
        """Every stored name, relative to the media root or prefix; a key outside
        ``media/`` fails the test."""
        if self.environment is None:
            return sorted(
                p.relative_to(self.media_root).as_posix() for p in self.media_root.rglob("*") if p.is_file()
            )
        assert not any(p.is_file() for p in self.media_root.rglob("*")), "a file in the media folder"
        keys = bucket_keys(self.environment["EVALHUB_S3_ENDPOINT_URL"], self.environment["EVALHUB_S3_BUCKET"])
        assert all(key.startswith("media/") for key in keys), keys
        return sorted(key.removeprefix("media/") for key in keys)

    def read(self, name: str) -> bytes:
        if self.environment is None:
            return (self.media_root / name).read_bytes()
        bucket = self.environment["EVALHUB_S3_BUCKET"]
        return (
            s3_client(self.environment["EVALHUB_S3_ENDPOINT_URL"])
            .get_object(Bucket=bucket, Key=f"media/{name}")["Body"]
            .read()
        )

    def remove(self, name: str) -> None:
        if self.environment is None:
            (self.media_root / name).unlink()
        else:
            s3_client(self.environment["EVALHUB_S3_ENDPOINT_URL"]).delete_object(
                Bucket=self.environment["EVALHUB_S3_BUCKET"], Key=f"media/{name}"
            )


@pytest.fixture
def stored(db, storage_kind, media_root, request) -> StoredMedia:
    """The ``default`` storage of this run, as the tests look into it."""
    return StoredMedia(media_root, request.getfixturevalue("s3_bucket") if storage_kind == "s3" else None)


def media_to_bucket(request, media_root: Path) -> dict[str, str]:
    """Copy every file of the media folder to a fresh bucket's ``media/`` prefix with boto3,
    switch the ``default`` storage to that bucket and delete the folder: from here on the
    bytes can come from the bucket only. The bucket's environment."""
    environment = request.getfixturevalue("s3_bucket")
    client = s3_client(environment["EVALHUB_S3_ENDPOINT_URL"])
    for path in sorted(p for p in media_root.rglob("*") if p.is_file()):
        key = f"media/{path.relative_to(media_root).as_posix()}"
        client.put_object(Bucket=environment["EVALHUB_S3_BUCKET"], Key=key, Body=path.read_bytes())
    shutil.rmtree(media_root)
    media_root.mkdir()
    return environment


def pixels(png: bytes) -> tuple:
    """Mode, size and decoded pixels (every chunk's CRC checked on the way)."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def manifest_rows(folder: Path, prompt_set) -> list[dict]:
    """One PNG per prompt and model (each model at its size, every image its own colour)
    written to ``folder``; the manifest's rows."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for position, text in enumerate(PROMPTS):
        PromptFactory(prompt_set=prompt_set, text=text, position=position)
        for shade, (model, size) in enumerate(SIZES.items()):
            name = f"{model}-{position}.png"
            (folder / name).write_bytes(png_bytes(color=(40 + 100 * shade, 20 * position, 90), size=size))
            rows.append({"prompt": text, "model": model, "seed": position, "index": 0, "image": name})
    return rows


def import_catalog(folder: Path) -> list[ModelVersion]:
    """Two prompts with one image each from two models of different sizes, imported
    through the real importer; the models (both draw for the one prompt set)."""
    prompt_set = PromptSetFactory(name="scenes")
    rows = manifest_rows(folder, prompt_set)
    generated_images_import(
        prompt_set=prompt_set,
        manifest="\n".join(json.dumps(row) for row in rows),
        source=DirectorySource(folder),
        create_models=True,
    )
    return [ModelVersion.objects.get(name=name) for name in SIZES]


def ab_study(models: list[ModelVersion]) -> Study:
    """An A/B study of the two models at the display size: one task per prompt (visual
    flaws only), two annotators per task."""
    return study_create(
        name="scenes", kind="ab", prompt_set=models[0].images.first().prompt.prompt_set,
        model_versions=models, criteria=["flaws"], overlap=2,
        display_size="x".join(map(str, DISPLAY_SIZE)),
    )  # fmt: skip


def leased(annotator, study: Study, count: int = 2) -> tuple[APIClient, list[dict]]:
    """The annotator's logged-in client and the assignments the labeling API leases them."""
    api = APIClient()
    api.force_login(annotator)
    response = api.post(f"/api/annotate/studies/{study.pk}/next/", {"count": count}, format="json")
    assert response.status_code == 200
    return api, response.json()["assignments"]


def storage_secrets(environment: dict[str, str] | None) -> list[str]:
    """Strings that would name where or under what key an image is stored."""
    names = [image.file.name for image in GeneratedImage.objects.all()]
    names += [copy.file.name for copy in ResampledImage.objects.all()]
    names += [name.rsplit("/", 1)[-1] for name in names]
    if environment is not None:
        names += [environment["EVALHUB_S3_BUCKET"], environment["EVALHUB_S3_ENDPOINT_URL"], "media/"]
    return names


# ---------------------------------------------------------------- import


def test_a_manifest_import_stores_each_image_under_its_opaque_name(stored, tmp_path):
    """Every imported image is one object under ``media/`` holding its canonical PNG."""
    import_catalog(tmp_path / "upload")
    images = GeneratedImage.objects.all()
    assert stored.names() == sorted(image.file.name for image in images)
    for image in images:
        assert hashlib.sha256(stored.read(image.file.name)).hexdigest() == image.sha256


def test_a_zip_upload_stores_its_images_in_the_storage(stored, client, alice):
    """The researcher's ZIP import writes through the storage too, and nothing else."""
    prompt_set = PromptSetFactory(name="shapes")
    PromptFactory(prompt_set=prompt_set, text="a red circle", position=0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        row = {"prompt": "a red circle", "model": "sd15-base", "seed": 1, "index": 0, "image": "img/a.png"}
        archive.writestr("run/manifest.jsonl", json.dumps(row))
        archive.writestr("run/img/a.png", png_bytes(color=(250, 0, 0)))
    buffer.seek(0)
    buffer.name = "images.zip"
    client.force_login(alice)
    response = client.post(
        reverse("catalog:image_import"),
        {"prompt_set": prompt_set.pk, "archive": buffer, "create_models": "on"},
    )
    assert response.status_code == 302
    image = GeneratedImage.objects.get()
    assert stored.names() == [image.file.name]
    assert hashlib.sha256(stored.read(image.file.name)).hexdigest() == image.sha256


def test_a_failed_import_leaves_no_object_behind(stored, tmp_path):
    """Images stored before a bad row are deleted from the storage with the import."""
    prompt_set = PromptSetFactory(name="scenes")
    rows = manifest_rows(tmp_path, prompt_set)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    rows.append({"prompt": PROMPTS[0], "model": "wide-model", "seed": 9, "index": 1, "image": "broken.png"})
    with pytest.raises(ImportRejected):
        generated_images_import(
            prompt_set=prompt_set,
            manifest="\n".join(json.dumps(row) for row in rows),
            source=DirectorySource(tmp_path),
            create_models=True,
        )
    assert not GeneratedImage.objects.exists()
    assert stored.names() == []


# ---------------------------------------------------------------- serving


def test_the_annotator_image_url_serves_the_stored_pixels_in_bytes_of_its_own(stored, tmp_path, bob):
    """Status 200, the study's display size, the stored copy's pixels, the same headers on
    both storages, and two annotators' bytes of one image differ."""
    study = ab_study(import_catalog(tmp_path / "upload"))
    eve = UserFactory(username="eve", role="annotators")
    served = {}
    for annotator in (bob, eve):
        api, assignments = leased(annotator, study)
        for assignment in assignments:
            for shown in assignment["images"]:
                response = api.get(shown["url"])
                assert response.status_code == 200 and not response.has_header("Location")
                assert {name: response[name] for name in IMAGE_HEADERS} == IMAGE_HEADERS
                assert int(response["Content-Length"]) == len(response.content)
                served[(annotator.username, assignment["token"], shown["position"])] = response.content
    assert len(served) == 2 * 2 * 2  # two annotators, two tasks each, two images per task
    copies = {copy.file.name: stored.read(copy.file.name) for copy in ResampledImage.objects.all()}
    assert len(copies) == 4 and set(copies) <= set(stored.names())
    stored_pixels = {pixels(png) for png in copies.values()}
    assert {pixels(png) for png in served.values()} == stored_pixels
    assert all(pixels(png)[1] == DISPLAY_SIZE for png in served.values())
    by_pixels: dict[tuple, set[bytes]] = {}
    for png in served.values():
        by_pixels.setdefault(pixels(png), set()).add(png)
    assert all(len(bodies) == 2 for bodies in by_pixels.values())  # each image: bob's and eve's bytes


def test_no_page_or_payload_an_annotator_sees_names_the_storage(stored, tmp_path, bob):
    """The labeling page, the leased assignments and the images name no bucket, no key and
    no file name; the image URLs are the app's own."""
    study = ab_study(import_catalog(tmp_path / "upload"))
    api, assignments = leased(bob, study)
    page = api.get(reverse("annotate:label", args=[study.pk]))
    assert page.status_code == 200
    urls = [shown["url"] for assignment in assignments for shown in assignment["images"]]
    assert all(url.startswith("/annotate/images/") for url in urls)
    seen = page.content.decode() + json.dumps(assignments)
    headers = [str(api.get(url).headers) for url in urls]
    environment = stored.environment
    for secret in storage_secrets(environment):
        assert secret not in seen
        assert not any(secret in text for text in headers)


def test_the_researcher_image_view_streams_the_stored_file(stored, tmp_path, client, alice):
    """The catalog's image URL answers 200 with the stored canonical PNG, never a redirect."""
    import_catalog(tmp_path / "upload")
    client.force_login(alice)
    for image in GeneratedImage.objects.all():
        response = client.get(reverse("catalog:image_file", args=[image.public_id]))
        assert response.status_code == 200 and not response.has_header("Location")
        assert response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, max-age=3600"
        body = b"".join(response.streaming_content)
        assert int(response["Content-Length"]) == len(body)
        assert body == stored.read(image.file.name)


def test_a_missing_object_is_a_404_for_annotators_and_researchers(stored, tmp_path, client, alice, bob):
    """An image whose file went missing answers 404, not a server error, and names no key."""
    study = ab_study(import_catalog(tmp_path / "upload"))
    api, assignments = leased(bob, study, count=1)
    shown = assignments[0]["images"][0]
    lease = Lease.objects.get(token=assignments[0]["token"])
    copy = lease.task.task_images.get(position=shown["position"]).resampled
    stored.remove(copy.file.name)
    missing = api.get(shown["url"])
    assert missing.status_code == 404
    image = GeneratedImage.objects.first()
    stored.remove(image.file.name)
    client.force_login(alice)
    missing_for_researcher = client.get(reverse("catalog:image_file", args=[image.public_id]))
    assert missing_for_researcher.status_code == 404
    for response in (missing, missing_for_researcher):
        assert copy.file.name not in response.content.decode()
        assert image.file.name not in response.content.decode()


def test_filesystem_and_bucket_serve_the_same_bytes_and_headers(request, media_root, tmp_path, bob):
    """One task's image, served from the folder and then from the bucket holding the same
    files: identical bytes (the per-task salt depends on the token, not on the storage)
    and identical headers."""
    study = ab_study(import_catalog(tmp_path / "upload"))
    api, assignments = leased(bob, study, count=1)
    url = assignments[0]["images"][0]["url"]
    from_folder = api.get(url)
    media_to_bucket(request, media_root)
    from_bucket = api.get(url)
    assert from_bucket.status_code == from_folder.status_code == 200
    assert from_bucket.content == from_folder.content
    assert dict(from_bucket.headers) == dict(from_folder.headers)


# ---------------------------------------------------------------- display size and clean-up


def test_a_display_size_writes_its_copies_through_the_storage(stored, tmp_path):
    """Each resampled copy is a stored object at the display size, beside the originals."""
    study = ab_study(import_catalog(tmp_path / "upload"))
    originals = [image.file.name for image in GeneratedImage.objects.all()]
    copies = ResampledImage.objects.filter(source__in=GeneratedImage.objects.all())
    assert study.config["display_size"] == list(DISPLAY_SIZE)
    assert stored.names() == sorted(originals + [copy.file.name for copy in copies])
    for copy in copies:
        assert pixels(stored.read(copy.file.name))[1] == DISPLAY_SIZE


def test_a_study_that_fails_while_resampling_removes_the_copies_it_stored(stored, tmp_path):
    """The last prompt's image is missing: the copies made for the first prompt are deleted
    from the storage with the study's rows, and the study is not created."""
    models = import_catalog(tmp_path / "upload")
    last = GeneratedImage.objects.get(prompt__text=PROMPTS[-1], model_version=models[0])
    stored.remove(last.file.name)
    before = stored.names()
    with pytest.raises(FileNotFoundError):
        ab_study(models)
    assert not Study.objects.exists() and not ResampledImage.objects.exists()
    assert stored.names() == before


# ---------------------------------------------------------------- preference export


def test_the_preference_export_from_the_bucket_equals_the_one_from_the_folder(
    db, request, media_root, tmp_path
):
    """Same content hash and the same files, byte for byte, with the images read from S3."""
    study = build(tmp_path / "upload")
    from_folder = preference_pairs_export(study=study, folder=tmp_path / "from-folder")
    environment = media_to_bucket(request, media_root)
    assert len(bucket_keys(environment["EVALHUB_S3_ENDPOINT_URL"], environment["EVALHUB_S3_BUCKET"])) == 20
    from_bucket = preference_pairs_export(study=study, folder=tmp_path / "from-bucket")
    assert from_bucket.content_hash == from_folder.content_hash
    assert from_bucket.pairs == from_folder.pairs > 0
    assert folder_files(tmp_path / "from-bucket") == folder_files(tmp_path / "from-folder")
