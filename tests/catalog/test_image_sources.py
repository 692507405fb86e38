"""Hostile ZIP uploads on the image import page: each is a 400 saying what was wrong,
and leaves no image row, model version or file behind."""

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from evalhub.catalog import errors, image_sources
from evalhub.catalog.image_sources import ImageSourceError, ZipSource
from evalhub.catalog.models import GeneratedImage, ModelVersion
from tests.catalog.hostile_files import member_info, patch_member, png_claiming, zip_bytes
from tests.factories import PromptFactory, PromptSetFactory, png_bytes

MiB = 1024 * 1024


@pytest.fixture
def shapes(db):
    prompt_set = PromptSetFactory(name="shapes")
    PromptFactory(prompt_set=prompt_set, text="a red circle", position=0)
    PromptFactory(prompt_set=prompt_set, text="a blue square", position=1)
    return prompt_set


def manifest(*images: str) -> bytes:
    """One row per image, the first for the red circle, the next for the blue square."""
    prompts = ["a red circle", "a blue square"]
    return "\n".join(
        json.dumps(
            {"prompt": prompts[i % 2], "model": "sd15-base", "seed": i, "index": i // 2, "image": image}
        )
        for i, image in enumerate(images)
    ).encode()


def good_members() -> dict[str, bytes]:
    return {
        "manifest.jsonl": manifest("a.png", "b.png"),
        "a.png": png_bytes(color=(250, 0, 0), size=(64, 64)),
        "b.png": png_bytes(color=(0, 0, 250), size=(64, 64)),
    }


def with_data_cut_short() -> bytes:
    """b.png stored, its headers claiming 100 KiB more than the archive holds."""
    data = zip_bytes(good_members(), compression=zipfile.ZIP_STORED)
    size = member_info(data, "b.png").file_size + 100 * 1024
    return patch_member(data, "b.png", compressed=size, size=size)


def with_lying_size() -> bytes:
    """a.png declaring 100 bytes while it inflates to far more."""
    return patch_member(zip_bytes(good_members()), "a.png", size=100)


def with_bad_crc() -> bytes:
    return patch_member(zip_bytes(good_members()), "b.png", crc=0x12345678)


def many_members(count: int) -> bytes:
    return zip_bytes(good_members() | {f"notes/{i}.txt": b"x" for i in range(count)})


def huge_member_of_zeros(name: str, size: int) -> bytes:
    """An archive whose ``name`` is ``size`` zero bytes (a few KiB deflated)."""
    return zip_bytes(good_members() | {name: b"\0" * size})


def directory_size(data: bytes) -> int:
    """The central directory's length: from its start to the 22-byte end record."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return len(data) - 22 - archive.start_dir


# Each case: what builds the archive, the message the page shows (a callable of the
# archive where it depends on its bytes), and the settings it runs under.
HOSTILE_ARCHIVES = {
    "manifest expanding past the text-file limit": (
        lambda: zip_bytes(good_members() | {"manifest.jsonl": manifest("a.png") + b"\n" * (11 * MiB)}),
        errors.FILE_TOO_LARGE.format(name="manifest.jsonl", limit=10 * MiB),
        {},
    ),
    "member declaring more than the image limit": (
        lambda: huge_member_of_zeros("padding.bin", 2 * MiB),
        errors.ARCHIVE_MEMBER_TOO_LARGE.format(name="padding.bin", size=2 * MiB, limit=1 * MiB),
        {"EVALHUB_MAX_IMAGE_BYTES": 1 * MiB, "EVALHUB_MAX_TEXT_FILE_BYTES": 1 * MiB},
    ),
    "members expanding past the archive's total": (
        lambda: huge_member_of_zeros("padding.bin", 600 * 1024),
        errors.ARCHIVE_TOO_LARGE_UNCOMPRESSED.format(limit=512 * 1024),
        {"EVALHUB_MAX_ARCHIVE_UNCOMPRESSED_BYTES": 512 * 1024},
    ),
    "member whose header understates its size": (
        with_lying_size,
        errors.ARCHIVE_MEMBER_DAMAGED.format(name="a.png", error="Bad CRC-32 for file 'a.png'"),
        {},
    ),
    "too many members": (
        lambda: many_members(5),
        errors.ARCHIVE_TOO_MANY_MEMBERS.format(count=8, limit=7),
        {"EVALHUB_MAX_ARCHIVE_MEMBERS": 7},
    ),
    "central directory larger than the member limit allows": (
        lambda: many_members(40),
        lambda data: errors.ARCHIVE_DIRECTORY_TOO_LARGE.format(size=directory_size(data), limit=2048),
        {"EVALHUB_MAX_ARCHIVE_MEMBERS": 2},
    ),
    "encrypted member": (
        lambda: patch_member(zip_bytes(good_members()), "a.png", flags=0x1),
        errors.ARCHIVE_MEMBER_ENCRYPTED.format(name="a.png"),
        {},
    ),
    "deflate64 member": (
        lambda: patch_member(zip_bytes(good_members()), "b.png", method=9),
        errors.ARCHIVE_MEMBER_UNSUPPORTED.format(name="b.png", method=9),
        {},
    ),
    "bzip2 member": (
        lambda: zip_bytes(good_members(), compression=zipfile.ZIP_BZIP2),
        errors.ARCHIVE_MEMBER_UNSUPPORTED.format(name="manifest.jsonl", method=12),
        {},
    ),
    "bad CRC": (
        with_bad_crc,
        errors.ARCHIVE_MEMBER_DAMAGED.format(name="b.png", error="Bad CRC-32 for file 'b.png'"),
        {},
    ),
    "member data cut short": (
        with_data_cut_short,
        errors.ARCHIVE_MEMBER_DAMAGED.format(name="b.png", error="EOFError"),
        {},
    ),
    "archive cut in half": (
        lambda: zip_bytes(good_members())[: len(zip_bytes(good_members())) // 2],
        errors.NOT_A_ZIP,
        {},
    ),
    "image declaring 10000×10000 pixels": (
        lambda: zip_bytes(good_members() | {"b.png": png_claiming(10000, 10000)}),
        "line 2: "
        + errors.IMAGE_TOO_MANY_PIXELS.format(path="b.png", width=10000, height=10000, limit=40_000_000),
        {},
    ),
}


def post_archive(client, prompt_set, data: bytes):
    upload = SimpleUploadedFile("images.zip", data, content_type="application/zip")
    form = {"prompt_set": prompt_set.pk, "archive": upload, "create_models": "on"}
    return client.post(reverse("catalog:image_import"), form)


def files_under(folder) -> list:
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("case", sorted(HOSTILE_ARCHIVES))
def test_a_hostile_archive_is_a_400_that_leaves_nothing(case, client, alice, shapes, media_root, settings):
    """Each hostile archive is a 400 saying what was wrong, and nothing of it is kept."""
    build, message, overrides = HOSTILE_ARCHIVES[case]
    for name, value in overrides.items():
        setattr(settings, name, value)
    data = build()
    if callable(message):
        message = message(data)
    client.force_login(alice)
    response = post_archive(client, shapes, data)
    assert response.status_code == 400
    assert escape(message) in response.content.decode()
    assert not GeneratedImage.objects.exists()
    assert not ModelVersion.objects.exists()
    assert files_under(media_root) == []


def test_a_good_archive_still_imports(client, alice, shapes, media_root):
    """The same archive without its defect imports both images."""
    client.force_login(alice)
    response = post_archive(client, shapes, zip_bytes(good_members()))
    assert response.status_code == 302
    assert GeneratedImage.objects.count() == 2
    assert len(files_under(media_root)) == 2


def test_an_oversized_central_directory_is_refused_before_zipfile_parses_it(monkeypatch, settings):
    """The directory's size comes from the end record; zipfile never sees the archive."""
    settings.EVALHUB_MAX_ARCHIVE_MEMBERS = 2
    data = many_members(40)
    message = errors.ARCHIVE_DIRECTORY_TOO_LARGE.format(size=directory_size(data), limit=2048)

    def not_called(*args, **kwargs):
        raise AssertionError("zipfile parsed the archive")

    monkeypatch.setattr(image_sources.zipfile, "ZipFile", not_called)
    with pytest.raises(ImageSourceError) as caught:
        ZipSource.open(io.BytesIO(data))
    assert str(caught.value) == message


def test_a_member_longer_than_its_header_is_stopped_at_the_declared_size(settings):
    """Should the zip reader ever yield more than a member declares, reading stops there."""
    source = ZipSource.open(io.BytesIO(zip_bytes(good_members())))
    info = source.archive.getinfo("a.png")
    source.archive.open = lambda *args, **kwargs: io.BytesIO(b"\0" * (info.file_size + 1))
    with pytest.raises(ImageSourceError) as caught:
        source.read("a.png")
    assert str(caught.value) == errors.ARCHIVE_MEMBER_LONGER.format(name="a.png")


def test_reading_stops_at_the_total_even_when_every_header_lies(settings):
    """The archive's total is counted from the bytes inflated, not from the headers."""
    data = zip_bytes(good_members())
    total = sum(member_info(data, name).file_size for name in good_members())
    settings.EVALHUB_MAX_ARCHIVE_UNCOMPRESSED_BYTES = total
    source = ZipSource.open(io.BytesIO(data))
    source.max_expanded = total - 1  # as if a header had understated a size
    source.manifest_bytes()
    source.read("a.png")
    with pytest.raises(ImageSourceError) as caught:
        source.read("b.png")
    assert str(caught.value) == errors.ARCHIVE_TOO_LARGE_UNCOMPRESSED.format(limit=total - 1)


# ---------------------------------------------------------------- request size


def test_a_request_over_the_upload_limit_is_refused_before_it_is_parsed(alice, shapes, settings, media_root):
    """An oversized body is a 400 from its Content-Length, before the CSRF check reads it."""
    settings.EVALHUB_MAX_UPLOAD_BYTES = 500
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = post_archive(client, shapes, zip_bytes(good_members()))
    size = int(response.wsgi_request.META["CONTENT_LENGTH"])
    assert response.status_code == 400
    assert escape(errors.UPLOAD_TOO_LARGE.format(size=size, limit=500)) in response.content.decode()
    assert not GeneratedImage.objects.exists()
    assert files_under(media_root) == []


def test_the_import_pages_still_check_csrf(alice, shapes):
    """A body within the limit and without a CSRF token is refused as before."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post_archive(client, shapes, zip_bytes(good_members())).status_code == 403
    prompt_file = SimpleUploadedFile("p.csv", b"prompt\na dog\n", "text/csv")
    response = client.post(reverse("catalog:prompt_set_import"), {"name": "x", "file": prompt_file})
    assert response.status_code == 403
    assert not GeneratedImage.objects.exists()
