"""The researcher's new-study form: each field marked with the kinds it applies to, the
fields of other kinds ignored, and every error shown once, by the field it is about."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from annotate import errors
from annotate.forms import StudyForm, error_field, field_kinds
from annotate.models import Study
from annotate.study_settings import AT_CREATION

URL = reverse("annotate:study_create")


def wrappers(page: str) -> dict[str, str]:
    """Each field's wrapper in the page, by field name: its opening tag and its content."""
    form = page[page.index('<form method="post" id="study-form">') : page.index('<button type="submit">')]
    chunks = re.split(r'(?=<div class="field" id="field-)', form)[1:]
    return {re.match(r'<div class="field" id="field-(\w+)"', chunk).group(1): chunk for chunk in chunks}


def opening(chunk: str) -> str:
    return chunk[: chunk.index(">") + 1]


def post(client, prompt_set, model_a, **fields):
    data = {
        "name": "study",
        "kind": "ab",
        "prompt_set": prompt_set.pk,
        "model_a": model_a.pk,
        "criteria": ["flaws"],
        "overlap": 5,
        "lease_seconds": 300,
        "image_index": 0,
    }
    data.update(fields)
    return client.post(URL, {k: v for k, v in data.items() if v is not None})


def test_each_field_names_the_kinds_it_applies_to(client, alice):
    """Fields of some kinds only are marked, those of every kind are not; the script that hides them loads."""
    client.force_login(alice)
    page = client.get(URL).content.decode()
    fields = wrappers(page)
    assert set(fields) == set(StudyForm().fields)  # without the script, every field shows
    marked = {name: re.search(r'data-kinds="([^"]*)"', opening(chunk)) for name, chunk in fields.items()}
    kinds = {name: match.group(1) for name, match in marked.items() if match}
    assert kinds == {
        "criteria": "ab",
        "exposure": "ab",
        "display_size": "ab",
        "image_index": "ab alignment",
        "model_b": "ab",
        "more_models": "alignment",
    }
    assert "annotate/study_form.js" in page and "<script>" not in page


def test_the_kinds_come_from_the_declarations():
    """Every setting's field is marked with the kinds its declaration names."""
    for setting in AT_CREATION:
        expected = () if set(setting.kinds) == set(Study.Kind.values) else tuple(setting.kinds)
        assert field_kinds(setting.name) == expected


def test_a_service_error_appears_once_by_its_field(client, alice, prompt_set, model_a):
    """An A/B study without model B: the reason shows by model B, once, and not above the form."""
    client.force_login(alice)
    response = post(client, prompt_set, model_a)
    page = response.content.decode()
    message = errors.WRONG_MODEL_COUNT.format(kind="A/B comparison", expected="two model versions", got=1)
    assert response.status_code == 200 and not Study.objects.exists()
    assert page.count(message) == 1
    assert message in wrappers(page)["model_b"]
    assert response.context["form"].non_field_errors() == []


def test_a_field_error_appears_once_by_its_field(client, alice, prompt_set, model_a, model_b):
    """Django's own refusal of a value shows by its field once, in the service's words."""
    client.force_login(alice)
    page = post(client, prompt_set, model_a, model_b=model_b.pk, overlap=0).content.decode()
    message = errors.OVERLAP_RANGE.format(overlap=0)
    assert page.count(message) == 1 and message in wrappers(page)["overlap"]


@pytest.mark.parametrize(
    "fields, field",
    [
        pytest.param(lambda a: {"title": f"Judge {a.name}"}, "title", id="a title naming a model"),
        pytest.param(
            lambda a: {"guidelines": f"Ignore {a.name}."}, "guidelines", id="guidelines naming a model"
        ),
        pytest.param(
            lambda a: {"kind": "alignment", "exposure": "shared"}, "exposure", id="exposure outside A/B"
        ),
        pytest.param(
            lambda a: {"kind": "best_worst", "display_size": "8x8"}, "display_size", id="size outside A/B"
        ),
        pytest.param(lambda a: {"model_b": a.pk}, "model_b", id="the same model twice"),
        pytest.param(lambda a: {"criteria": None}, "criteria", id="no criterion"),
    ],
)
def test_service_errors_naming_a_field_go_to_it(client, alice, prompt_set, model_a, model_b, fields, field):
    """The service's refusal lands on the field it is about, once."""
    client.force_login(alice)
    response = post(client, prompt_set, model_a, **({"model_b": model_b.pk} | fields(model_a)))
    form = response.context["form"]
    assert list(form.errors) == [field], form.errors
    (message,) = form.errors[field]
    assert response.content.decode().count(escape(message)) == 1
    assert escape(message) in wrappers(response.content.decode())[field]


def test_an_error_about_no_field_shows_once_above_the_fields(client, alice, prompt_set, model_a, model_b):
    """Missing images concern the study as a whole: one message, before the fields."""
    client.force_login(alice)
    response = post(client, prompt_set, model_a, model_b=model_b.pk, image_index=9)
    form = response.context["form"]
    (message,) = form.non_field_errors()
    assert message.startswith("3 prompt(s) lack an image at index 9")
    page = response.content.decode()
    assert page.count("3 prompt(s) lack an image at index 9") == 1
    assert page.index("3 prompt(s) lack") < page.index('<div class="field"')


def test_messages_map_to_their_fields():
    """Each message template goes to its field; general patterns do not catch specific ones."""
    fields = StudyForm().fields
    assert (
        error_field(errors.DISPLAY_SIZE_FORMAT.format(low=8, high=4096, value="7x10"), fields)
        == "display_size"
    )
    assert error_field(errors.LEASE_RANGE.format(seconds=29), fields) == "lease_seconds"
    assert error_field(errors.TOO_LONG.format(setting="title", max_length=200), fields) == "title"
    assert error_field(errors.NAMES_A_MODEL.format(field="guidelines", model="m"), fields) == "guidelines"
    assert error_field(errors.STUDY_NAME_TAKEN.format(name="x"), fields) == "name"
    assert error_field(errors.NO_TASKS.format(reason="none"), fields) is None
    assert error_field("anything else", fields) is None


def test_the_fields_of_other_kinds_are_ignored(client, alice, prompt_set, model_a, model_b):
    """Best/worst takes model A alone; alignment takes A and the further models, each once."""
    client.force_login(alice)
    post(
        client,
        prompt_set,
        model_a,
        name="bw",
        kind="best_worst",
        model_b=model_b.pk,
        more_models=[model_b.pk],
    )
    bw = Study.objects.get(name="bw")
    assert list(bw.model_versions.values_list("pk", flat=True)) == [model_a.pk]
    post(
        client,
        prompt_set,
        model_a,
        name="al",
        kind="alignment",
        model_b=model_b.pk,
        more_models=[model_a.pk, model_b.pk],
    )
    al = Study.objects.get(name="al")
    assert sorted(al.model_versions.values_list("pk", flat=True)) == sorted([model_a.pk, model_b.pk])
    assert al.tasks.count() == 6


def test_the_settings_beyond_the_study_fold_under_headings_that_open_on_an_error(
    client, alice, prompt_set, model_a
):
    """Access, quality control and crowd participants are folded sections; a section with
    an error in it is open, the others stay folded."""
    client.force_login(alice)
    page = client.get(URL).content.decode()
    for title in ("Who may work on it", "Quality control", "Crowd participants"):
        assert f'<details class="section"><summary>{title}</summary>' in page
    refused = post(client, prompt_set, model_a, quality_gold_accuracy=101).content.decode()
    assert '<details class="section" open><summary>Quality control</summary>' in refused
    assert '<details class="section"><summary>Crowd participants</summary>' in refused
