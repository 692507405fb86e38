"""The researcher's catalog pages: browsing, image files, model versions and imports."""

import io
import itertools
import json
import re
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from evalhub.catalog import errors
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import AlignmentQuestion, GeneratedImage, ModelVersion, Prompt, PromptSet
from tests.factories import (
    AlignmentQuestionFactory,
    ModelVersionFactory,
    PromptFactory,
    PromptSetFactory,
    png_bytes,
)

# Pinned query budgets: session, user, role checks for the navigation and the page's
# own reads. They must not grow with the number of prompts or images.
PROMPT_SET_LIST_QUERIES = 7
PROMPT_DETAIL_QUERIES = 9

IMG_SRC = re.compile(r'<img src="([^"]+)"')


_image_numbers = itertools.count(1)


def import_images(tmp_path: Path, prompt_set: PromptSet, slots: list[tuple[Prompt, str, int]]) -> None:
    """Import one PNG of its own colour per (prompt, model name, index) through the real service."""
    folder = tmp_path / "upload"
    folder.mkdir(exist_ok=True)
    lines = []
    for prompt, model, index in slots:
        n = next(_image_numbers)
        (folder / f"{n}.png").write_bytes(png_bytes(color=(n % 256, n // 256 % 256, 128)))
        row = {"prompt": prompt.text, "model": model, "seed": n, "index": index, "image": f"{n}.png"}
        lines.append(json.dumps(row))
    generated_images_import(
        prompt_set=prompt_set, manifest="\n".join(lines), source=DirectorySource(folder), create_models=True
    )


def zip_upload(members: dict[str, bytes], name: str = "images.zip") -> SimpleUploadedFile:
    """An in-memory ZIP archive, as a browser would upload it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def manifest(*rows: dict) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.fixture
def catalog(db, tmp_path):
    """A prompt set with two prompts, questions, and images from two model versions."""
    prompt_set = PromptSetFactory(name="animals", description="Dogs and cats")
    dog = PromptFactory(prompt_set=prompt_set, text="a dog and a cat", category="animals", position=0)
    PromptFactory(prompt_set=prompt_set, text="a red circle", position=1)
    AlignmentQuestionFactory(prompt=dog, text="Is there one dog?", expected_answer=True, position=0)
    AlignmentQuestionFactory(
        prompt=dog, text="Are there other animals present?", expected_answer=False, position=1
    )
    import_images(tmp_path, prompt_set, [(dog, "sd15-base", 0), (dog, "sd15-base", 1), (dog, "sd15-dpo", 0)])
    return prompt_set


# ---------------------------------------------------------------- browsing


def test_it_lists_prompt_sets_with_their_counts(client, alice, catalog):
    """The prompt set list shows each set with its prompt and image counts."""
    client.force_login(alice)
    response = client.get(reverse("catalog:prompt_set_list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("catalog:prompt_set_detail", args=[catalog.pk]) in html
    assert re.search(
        r">animals</a></td>\s*<td[^>]*>Dogs and cats</td>\s*"
        r'<td class="num">2</td>\s*<td class="num">3</td>',
        html,
    )


def test_it_shows_a_prompt_set_with_prompts_questions_and_model_counts(client, alice, catalog):
    """The detail page lists prompts with their question counts and images per model version."""
    client.force_login(alice)
    response = client.get(reverse("catalog:prompt_set_detail", args=[catalog.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Prompts (2)" in html
    # Questions, then images, per prompt; prompts covered of all, then images, per model.
    assert re.search(r'>a dog and a cat</a></td>.*?<td class="num">2</td><td class="num">3</td>', html, re.S)
    assert re.search(r'>a red circle</a></td>.*?<td class="num">0</td><td class="num">0</td>', html, re.S)
    assert re.search(r'>sd15-base</a>.*?1 / 2</td><td class="num">2</td>', html, re.S)
    assert re.search(r'>sd15-dpo</a>.*?1 / 2</td><td class="num">1</td>', html, re.S)


def test_it_shows_a_prompt_with_expected_answers_and_images_grouped_by_model(client, alice, catalog):
    """The prompt page lists its questions with expected answers and each model's images."""
    client.force_login(alice)
    dog = catalog.prompts.get(text="a dog and a cat")
    response = client.get(reverse("catalog:prompt_detail", args=[dog.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<td>Is there one dog?</td><td>yes</td>" in html
    assert "<td>Are there other animals present?</td><td>no</td>" in html

    images = GeneratedImage.objects.filter(prompt=dog).order_by("model_version__name", "index")
    base_0, base_1, dpo_0 = (reverse("catalog:image_file", args=[image.public_id]) for image in images)
    assert IMG_SRC.findall(html) == [base_0, base_1, dpo_0]
    base, dpo = html.index(">sd15-base</a>"), html.index(">sd15-dpo</a>")
    assert base < html.index(base_0) < html.index(base_1) < dpo < html.index(dpo_0)


def test_a_prompt_without_images_says_so(client, alice, catalog):
    """A prompt no model has drawn yet shows an empty state, not an empty grid."""
    client.force_login(alice)
    circle = catalog.prompts.get(text="a red circle")
    response = client.get(reverse("catalog:prompt_detail", args=[circle.pk]))
    assert "No images for this prompt yet." in response.content.decode()
    assert "No questions for this prompt." in response.content.decode()


def test_an_unknown_prompt_is_a_404(client, alice, db):
    """A prompt id that does not exist answers 404."""
    client.force_login(alice)
    assert client.get(reverse("catalog:prompt_detail", args=[999])).status_code == 404


# ---------------------------------------------------------------- image files


def test_it_serves_the_stored_image_bytes_as_png(client, alice, catalog):
    """The image file is the stored canonical PNG, served privately."""
    client.force_login(alice)
    image = GeneratedImage.objects.first()
    response = client.get(reverse("catalog:image_file", args=[image.public_id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, max-age=3600"
    with image.file.open("rb") as stored:
        assert b"".join(response.streaming_content) == stored.read()


def test_the_image_url_carries_only_the_opaque_public_id(catalog):
    """Neither the model's name nor the row's id appears in an image URL or file name."""
    for image in GeneratedImage.objects.select_related("model_version"):
        url = reverse("catalog:image_file", args=[image.public_id])
        assert re.fullmatch(rf"/catalog/images/{image.public_id}\.png", url)
        assert re.fullmatch(r"[0-9a-f]{32}", image.public_id)
        assert image.public_id != str(image.pk)
        assert image.model_version.name not in url
        assert "sd15" not in image.file.name
        assert image.file.name == f"images/{image.public_id[:2]}/{image.public_id}.png"


def test_an_unknown_public_id_is_a_404(client, alice, catalog):
    """An image id that matches no image answers 404."""
    client.force_login(alice)
    assert client.get(reverse("catalog:image_file", args=["0" * 32])).status_code == 404


# ---------------------------------------------------------------- who may see it

CATALOG_PAGES = {
    "prompt set list": lambda c: reverse("catalog:prompt_set_list"),
    "prompt set detail": lambda c: reverse("catalog:prompt_set_detail", args=[c.pk]),
    "prompt detail": lambda c: reverse("catalog:prompt_detail", args=[c.prompts.first().pk]),
    "model version list": lambda c: reverse("catalog:model_version_list"),
    "model version detail": lambda c: reverse(
        "catalog:model_version_detail", args=[ModelVersion.objects.first().pk]
    ),
    "model version create": lambda c: reverse("catalog:model_version_create"),
    "prompt set import": lambda c: reverse("catalog:prompt_set_import"),
    "image import": lambda c: reverse("catalog:image_import"),
    "image file": lambda c: reverse("catalog:image_file", args=[GeneratedImage.objects.first().public_id]),
}


@pytest.mark.parametrize("page", CATALOG_PAGES)
@pytest.mark.parametrize("persona", ["bob", "charlie"])
def test_it_forbids_catalog_pages_to_users_who_are_not_researchers(client, request, catalog, page, persona):
    """An annotator, or a user with no role, gets 403 on every catalog page and image."""
    client.force_login(request.getfixturevalue(persona))
    response = client.get(CATALOG_PAGES[page](catalog))
    assert response.status_code == 403
    assert not response.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("page", CATALOG_PAGES)
def test_it_redirects_an_anonymous_user_to_the_login_page(client, catalog, page):
    """Without a session every catalog page sends the visitor to log in and come back."""
    url = CATALOG_PAGES[page](catalog)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("page", CATALOG_PAGES)
def test_a_researcher_may_open_every_catalog_page(client, alice, catalog, page):
    """Every page the others are refused answers 200 to a researcher."""
    client.force_login(alice)
    assert client.get(CATALOG_PAGES[page](catalog)).status_code == 200


# ---------------------------------------------------------------- query counts


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_prompt_set_list_takes_the_same_queries_for_2_and_6_prompts(
    client, alice, tmp_path, django_assert_max_num_queries
):
    """The list costs a fixed number of queries however many prompts and images the sets hold."""
    client.force_login(alice)
    url = reverse("catalog:prompt_set_list")
    prompt_set = PromptSetFactory()
    prompts = [PromptFactory(prompt_set=prompt_set, position=i) for i in range(2)]
    import_images(tmp_path, prompt_set, [(p, "m1", 0) for p in prompts])
    small = count_queries(client, url)

    other = PromptSetFactory()
    more = [PromptFactory(prompt_set=other, position=i) for i in range(6)]
    import_images(tmp_path, other, [(p, "m2", 0) for p in more])
    for i in range(2, 6):
        PromptFactory(prompt_set=prompt_set, position=i)
    with django_assert_max_num_queries(PROMPT_SET_LIST_QUERIES):
        response = client.get(url)
    assert response.status_code == 200
    assert count_queries(client, url) == small


def test_the_prompt_detail_takes_the_same_queries_for_2_and_6_images(
    client, alice, tmp_path, django_assert_max_num_queries
):
    """The prompt page costs a fixed number of queries however many questions and images it shows."""
    client.force_login(alice)
    prompt_set = PromptSetFactory()
    small_prompt = PromptFactory(prompt_set=prompt_set, position=0)
    big_prompt = PromptFactory(prompt_set=prompt_set, position=1)
    for i in range(2):
        AlignmentQuestionFactory(prompt=small_prompt, position=i)
    for i in range(6):
        AlignmentQuestionFactory(prompt=big_prompt, position=i)
    import_images(tmp_path, prompt_set, [(small_prompt, "m1", 0), (small_prompt, "m2", 0)])
    import_images(tmp_path, prompt_set, [(big_prompt, f"m{i % 3}", i) for i in range(6)])

    small = count_queries(client, reverse("catalog:prompt_detail", args=[small_prompt.pk]))
    with django_assert_max_num_queries(PROMPT_DETAIL_QUERIES):
        response = client.get(reverse("catalog:prompt_detail", args=[big_prompt.pk]))
    assert len(IMG_SRC.findall(response.content.decode())) == 6
    assert count_queries(client, reverse("catalog:prompt_detail", args=[big_prompt.pk])) == small


# ---------------------------------------------------------------- model versions


def test_the_model_version_form_reads_as_words(client, alice, db):
    """Its labels spell their acronyms (URI), as the training forms do (LoRA, EMA, LR)."""
    client.force_login(alice)
    html = client.get(reverse("catalog:model_version_create")).content.decode()
    assert '<label for="id_weights_uri">Weights URI:</label>' in html


def test_it_creates_a_model_version_with_a_parent_and_shows_its_lineage(client, alice, db):
    """The form creates a derived version; its page shows the chain back to the base."""
    client.force_login(alice)
    base = ModelVersionFactory(name="sd15-base")
    response = client.post(
        reverse("catalog:model_version_create"),
        {
            "name": "sd15-dpo",
            "kind": "dpo",
            "description": "first DPO run",
            "weights_uri": "/w/dpo",
            "parent": base.pk,
        },
    )
    created = ModelVersion.objects.get(name="sd15-dpo")
    assert (created.kind, created.parent, created.weights_uri) == ("dpo", base, "/w/dpo")
    assert response.status_code == 302
    assert response.url == reverse("catalog:model_version_detail", args=[created.pk])

    html = client.get(response.url).content.decode()
    lineage = re.search(r"<th>Lineage</th><td>(.*?)</td></tr>", html, re.S).group(1)
    assert re.search(r">sd15-dpo</a>.*←.*>sd15-base</a>", lineage, re.S)
    assert "Model version sd15-dpo created." in html

    parent_page = client.get(reverse("catalog:model_version_detail", args=[base.pk])).content.decode()
    assert re.search(r"<th>Derived versions</th><td><a [^>]*>sd15-dpo</a>", parent_page)


def test_it_refuses_a_model_version_whose_name_is_taken(client, alice, db):
    """A duplicate name re-renders the form with an error and creates nothing."""
    client.force_login(alice)
    ModelVersionFactory(name="sd15-base")
    response = client.post(reverse("catalog:model_version_create"), {"name": "sd15-base", "kind": "base"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert ModelVersion.objects.count() == 1


# ---------------------------------------------------------------- prompt set import

GOOD_CSV = (
    b"prompt,category,questions\n"
    b"a dog and a cat,animals,Is there one dog? | Are there other animals present?=no\n"
    b"a red circle,,\n"
)


def test_it_imports_a_prompt_set_from_a_csv_upload(client, alice, db):
    """A valid CSV creates the set, its prompts and questions, then shows the new set."""
    client.force_login(alice)
    response = client.post(
        reverse("catalog:prompt_set_import"),
        {"name": "animals", "description": "", "file": SimpleUploadedFile("p.csv", GOOD_CSV, "text/csv")},
    )
    prompt_set = PromptSet.objects.get(name="animals")
    assert response.status_code == 302
    assert response.url == reverse("catalog:prompt_set_detail", args=[prompt_set.pk])
    assert list(prompt_set.prompts.values_list("text", "category", "position")) == [
        ("a dog and a cat", "animals", 0),
        ("a red circle", "", 1),
    ]
    assert list(AlignmentQuestion.objects.values_list("text", "expected_answer")) == [
        ("Is there one dog?", True),
        ("Are there other animals present?", False),
    ]
    assert "Imported 2 prompts into animals." in client.get(response.url).content.decode()


def test_a_bad_csv_is_reported_with_its_line_and_nothing_is_created(client, alice, db):
    """A bad row re-renders the form with the message naming its line; no set is kept."""
    client.force_login(alice)
    bad = GOOD_CSV + b"a blue square,,Is it blue?=maybe\n"
    response = client.post(
        reverse("catalog:prompt_set_import"),
        {"name": "animals", "file": SimpleUploadedFile("p.csv", bad, "text/csv")},
    )
    assert response.status_code == 400
    message = "line 4: " + errors.BAD_EXPECTED_ANSWER.format(value="maybe")
    assert escape(message) in response.content.decode()
    assert PromptSet.objects.count() == 0
    assert Prompt.objects.count() == 0


BAD_PROMPT_UPLOADS = {
    "NUL byte in a prompt": (
        {"EVALHUB_MAX_TEXT_FILE_BYTES": 10 * 1024 * 1024},
        b"prompt\na d\x00g\n",
        "line 2: " + errors.CONTROL_CHARACTER.format(field="prompt", code=0),
    ),
    "quote never closed": (
        {"EVALHUB_MAX_TEXT_FILE_BYTES": 10 * 1024 * 1024},
        b'prompt\n"a dog\na cat\n',
        "line 2: " + errors.UNTERMINATED_QUOTE,
    ),
    "file over the text-file limit": (
        {"EVALHUB_MAX_TEXT_FILE_BYTES": 100},
        b"prompt\n" + b"".join(b"prompt %d\n" % i for i in range(50)),
        errors.FILE_TOO_LARGE.format(name="p.csv", limit=100),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PROMPT_UPLOADS))
def test_a_bad_prompt_upload_is_a_400_and_creates_nothing(case, client, alice, settings):
    """Control characters, an open quote or a file over its limit: a 400 with the reason."""
    overrides, data, message = BAD_PROMPT_UPLOADS[case]
    for name, value in overrides.items():
        setattr(settings, name, value)
    client.force_login(alice)
    response = client.post(
        reverse("catalog:prompt_set_import"), {"name": "animals", "file": SimpleUploadedFile("p.csv", data)}
    )
    assert response.status_code == 400
    assert escape(message) in response.content.decode()
    assert not PromptSet.objects.exists()
    assert not Prompt.objects.exists()


def test_a_prompt_upload_over_the_request_limit_is_refused_unread(client, alice, settings):
    """A prompt upload over the request limit is a 400 before its body is parsed."""
    settings.EVALHUB_MAX_TEXT_FILE_BYTES = 100
    client.force_login(alice)
    data = b"prompt\n" + b"x" * (1024 * 1024)
    response = client.post(
        reverse("catalog:prompt_set_import"), {"name": "animals", "file": SimpleUploadedFile("p.csv", data)}
    )
    size = int(response.wsgi_request.META["CONTENT_LENGTH"])
    assert response.status_code == 400
    limit = 100 + 1024 * 1024
    assert escape(errors.UPLOAD_TOO_LARGE.format(size=size, limit=limit)) in response.content.decode()
    assert not PromptSet.objects.exists()


# ---------------------------------------------------------------- image import


@pytest.fixture
def shapes(db):
    prompt_set = PromptSetFactory(name="shapes")
    PromptFactory(prompt_set=prompt_set, text="a red circle", position=0)
    PromptFactory(prompt_set=prompt_set, text="a blue square", position=1)
    return prompt_set


def post_archive(client, prompt_set, archive):
    form = {"prompt_set": prompt_set.pk, "archive": archive, "create_models": "on"}
    return client.post(reverse("catalog:image_import"), form)


def test_it_imports_images_from_a_zip_archive(client, alice, shapes, media_root):
    """A ZIP with a manifest and its images creates the images and the model version."""
    client.force_login(alice)
    archive = zip_upload(
        {
            "run/manifest.jsonl": manifest(
                {"prompt": "a red circle", "model": "sd15-base", "seed": 1, "index": 0, "image": "img/a.png"},
                {
                    "prompt": "a blue square",
                    "model": "sd15-base",
                    "seed": 2,
                    "index": 0,
                    "image": "img/b.png",
                },
            ),
            "run/img/a.png": png_bytes(color=(250, 0, 0)),
            "run/img/b.png": png_bytes(color=(0, 0, 250)),
        }
    )
    response = post_archive(client, shapes, archive)
    assert response.status_code == 302
    assert response.url == reverse("catalog:prompt_set_detail", args=[shapes.pk])
    images = GeneratedImage.objects.order_by("seed")
    assert [(i.prompt.text, i.model_version.name, i.seed) for i in images] == [
        ("a red circle", "sd15-base", 1),
        ("a blue square", "sd15-base", 2),
    ]
    assert sorted(files_under(media_root)) == sorted(media_root / i.file.name for i in images)
    assert "Imported 2 images (0 already present); created model versions sd15-base." in (
        client.get(response.url).content.decode()
    )


def test_a_manifest_path_climbing_out_of_the_archive_is_rejected(client, alice, shapes, media_root):
    """A "../" image path is refused with its line, and the rows before it are undone."""
    client.force_login(alice)
    archive = zip_upload(
        {
            "manifest.jsonl": manifest(
                {"prompt": "a red circle", "model": "sd15-base", "seed": 1, "index": 0, "image": "a.png"},
                {"prompt": "a blue square", "model": "sd15-base", "seed": 2, "index": 0, "image": "../x.png"},
            ),
            "a.png": png_bytes(color=(250, 0, 0)),
            "x.png": png_bytes(color=(0, 250, 0)),
        }
    )
    response = post_archive(client, shapes, archive)
    assert response.status_code == 400
    message = "line 2: " + errors.IMAGE_PATH_OUTSIDE.format(path="../x.png")
    assert escape(message) in response.content.decode()
    assert GeneratedImage.objects.count() == 0
    assert ModelVersion.objects.count() == 0
    assert files_under(media_root) == []


def test_an_upload_that_is_not_a_zip_is_rejected(client, alice, shapes, media_root):
    """Any other file is refused with the not-a-ZIP message and leaves nothing behind."""
    client.force_login(alice)
    upload = SimpleUploadedFile("images.zip", png_bytes(), content_type="application/zip")
    response = post_archive(client, shapes, upload)
    assert response.status_code == 400
    assert escape(errors.NOT_A_ZIP) in response.content.decode()
    assert GeneratedImage.objects.count() == 0
    assert files_under(media_root) == []
