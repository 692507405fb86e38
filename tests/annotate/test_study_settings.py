"""A study's settings are declared once (annotate.study_settings): the form, the API, the
create_study command and the service accept and refuse the same values, with the same
messages, and store the same study."""

import io
import re

import pytest
from django.core.management import CommandError, call_command, load_command_class
from django.urls import reverse
from rest_framework.test import APIClient

from annotate import errors
from annotate.api import StudyDetailApi, StudyListCreateApi
from annotate.errors import InvalidInput
from annotate.forms import StudyForm
from annotate.models import Study
from annotate.services import DEFAULT_GUIDELINES, study_create, study_update
from annotate.study_settings import AT_CREATION, CHANGEABLE, DISPLAY_SIZE, LEASE_SECONDS, OVERLAP

# Refused in whatever words: a value of the wrong type, which each path parses its own way.
REFUSED = object()
PATHS = ("form", "api", "command", "service")


def refused_size(value: str) -> str:
    return errors.DISPLAY_SIZE_FORMAT.format(low=8, high=4096, value=value)


CASES = [
    # kind, the settings given, the refusal (None: accepted)
    pytest.param("ab", {}, None, id="the defaults"),
    pytest.param("best_worst", {}, None, id="the defaults, best/worst"),
    pytest.param("alignment", {"image_index": 4, "skip_incomplete": True}, None, id="alignment settings"),
    pytest.param(
        "nope",
        {},
        errors.NOT_ONE_OF.format(setting="kind", choices="best_worst, ab, alignment", value="nope"),
        id="unknown kind",
    ),
    pytest.param("ab", {"name": ""}, errors.NAME_EMPTY, id="empty name"),
    pytest.param("ab", {"name": "   "}, errors.NAME_EMPTY, id="blank name"),
    pytest.param(
        "ab", {"name": "n" * 201}, errors.TOO_LONG.format(setting="name", max_length=200), id="long name"
    ),
    pytest.param("ab", {"title": ""}, None, id="empty title: neutral"),
    pytest.param("ab", {"title": "   "}, None, id="blank title: neutral"),
    pytest.param("ab", {"title": "Round 2"}, None, id="a title"),
    pytest.param(
        "ab", {"title": "t" * 201}, errors.TOO_LONG.format(setting="title", max_length=200), id="long title"
    ),
    pytest.param("ab", {"criteria": ["appeal"]}, None, id="one criterion"),
    pytest.param("ab", {"access": "enrolled"}, None, id="enrolled annotators only"),
    pytest.param(
        "ab",
        {"access": "friends"},
        errors.NOT_ONE_OF.format(setting="access", choices="open, enrolled", value="friends"),
        id="unknown access",
    ),
    pytest.param("ab", {"criteria": []}, errors.NO_CRITERIA, id="no criterion in A/B"),
    pytest.param("best_worst", {"criteria": []}, None, id="no criterion elsewhere"),
    pytest.param(
        "ab",
        {"criteria": ["beauty"]},
        errors.UNKNOWN_CRITERION.format(criterion="beauty"),
        id="unknown criterion",
    ),
    pytest.param(
        "best_worst",
        {"criteria": ["beauty"]},
        errors.UNKNOWN_CRITERION.format(criterion="beauty"),
        id="unknown criterion elsewhere",
    ),
    pytest.param("ab", {"overlap": 1}, None, id="overlap 1"),
    pytest.param("ab", {"overlap": 50}, None, id="overlap 50"),
    pytest.param("ab", {"overlap": 0}, errors.OVERLAP_RANGE.format(overlap=0), id="overlap 0"),
    pytest.param("ab", {"overlap": 51}, errors.OVERLAP_RANGE.format(overlap=51), id="overlap 51"),
    pytest.param("ab", {"overlap": "five"}, REFUSED, id="overlap five"),
    pytest.param("ab", {"lease_seconds": 30}, None, id="lease 30 s"),
    pytest.param("ab", {"lease_seconds": 3600}, None, id="lease 3600 s"),
    pytest.param("ab", {"lease_seconds": 29}, errors.LEASE_RANGE.format(seconds=29), id="lease 29 s"),
    pytest.param("ab", {"lease_seconds": 3601}, errors.LEASE_RANGE.format(seconds=3601), id="lease 3601 s"),
    pytest.param("ab", {"image_index": 3}, None, id="image 3"),
    pytest.param("ab", {"image_index": -1}, errors.IMAGE_INDEX_RANGE.format(index=-1), id="image -1"),
    pytest.param("ab", {"guidelines": ""}, None, id="default guidelines"),
    pytest.param("ab", {"guidelines": "Look closely."}, None, id="guidelines"),
    pytest.param("ab", {"exposure": "shared"}, None, id="shared exposure"),
    pytest.param(
        "ab", {"exposure": "loose"}, errors.UNKNOWN_EXPOSURE.format(exposure="loose"), id="unknown exposure"
    ),
    pytest.param(
        "best_worst",
        {"exposure": "shared"},
        errors.EXPOSURE_NOT_AB.format(kind="Best/worst of five"),
        id="exposure in best/worst",
    ),
    pytest.param(
        "alignment",
        {"exposure": "isolated"},
        errors.EXPOSURE_NOT_AB.format(kind="Text alignment"),
        id="exposure in alignment",
    ),
    pytest.param("ab", {"display_size": "16x12"}, None, id="display size"),
    pytest.param("ab", {"display_size": "16 × 12"}, None, id="display size with ×"),
    pytest.param("ab", {"display_size": "8x4096"}, None, id="display size at its bounds"),
    pytest.param("ab", {"display_size": "16"}, refused_size("16"), id="display size 16"),
    pytest.param("ab", {"display_size": "16x"}, refused_size("16x"), id="display size 16x"),
    pytest.param("ab", {"display_size": "7x10"}, refused_size("7x10"), id="display size 7x10"),
    pytest.param("ab", {"display_size": "5000x10"}, refused_size("5000x10"), id="display size 5000x10"),
    pytest.param("ab", {"display_size": "axb"}, refused_size("axb"), id="display size axb"),
    pytest.param(
        "alignment", {"display_size": "8x8"}, errors.DISPLAY_SIZE_NOT_AB, id="display size in alignment"
    ),
]


@pytest.fixture
def paths(client, alice, prompt_set, model_a, model_b):
    """Each path as a function of (kind, settings) → the study's stored settings, or the text
    of the refusal; nothing stays created."""
    api = APIClient()
    api.force_authenticate(alice)
    client.force_login(alice)

    def attempt(path: str, kind: str, settings: dict):
        models = [model_a] if kind in ("best_worst", "alignment") else [model_a, model_b]
        settings = {"name": "study", **settings}
        try:
            outcome = ATTEMPTS[path](
                client=client, api=api, prompt_set=prompt_set, kind=kind, models=models, settings=settings
            )
        finally:
            stored = [stored_settings(study) for study in Study.objects.all()]
            Study.objects.all().delete()
        return stored[0] if outcome is None and len(stored) == 1 else outcome

    return attempt


def stored_settings(study: Study) -> dict:
    """What a study stored; a completion code made at random stands as "random"."""
    config = study.config
    if "crowd" in config and re.fullmatch(r"[0-9A-F]{8}", config["crowd"]["crowd_completion_code"]):
        config = config | {"crowd": config["crowd"] | {"crowd_completion_code": "random"}}
    return {
        "name": study.name,
        "title": study.title,
        "kind": study.kind,
        "overlap": study.overlap,
        "lease_seconds": study.lease_seconds,
        "exposure": study.exposure,
        "config": config,
        "guidelines": study.guidelines,
        "tasks": study.tasks.count(),
    }


def by_form(*, client, prompt_set, kind, models, settings, **_) -> str | None:
    """As a browser posts the form: the initial values, changed where the researcher did."""
    form = StudyForm()
    data = {name: form.get_initial_for_field(field, name) for name, field in form.fields.items()}
    data |= {"kind": kind, "prompt_set": prompt_set.pk, "model_a": models[0].pk, **settings}
    data["model_b"] = models[1].pk if len(models) > 1 else None
    posted = {}
    for name, value in data.items():
        if value is None or value is False:
            continue  # an empty select, an unchecked box
        posted[name] = "on" if value is True else value
    response = client.post(reverse("annotate:study_create"), posted)
    return None if response.status_code == 302 else "\n".join(texts(response.context["form"].errors))


def by_api(*, api, prompt_set, kind, models, settings, **_) -> str | None:
    body = {
        "kind": kind,
        "prompt_set": prompt_set.name,
        "model_versions": [m.name for m in models],
        **settings,
    }
    response = api.post("/api/studies/", body, format="json")
    return None if response.status_code == 201 else "\n".join(texts(response.json()))


def by_command(*, prompt_set, kind, models, settings, **_) -> str | None:
    args = [settings.pop("name"), "--kind", kind, "--prompt-set", prompt_set.name]
    args += [word for model in models for word in ("--model", model.name)]
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False:
            args += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    try:
        call_command("create_study", *args, stdout=io.StringIO())
    except CommandError as exc:
        return str(exc)
    return None


def by_service(*, prompt_set, kind, models, settings, **_) -> str | None:
    try:
        study_create(kind=kind, prompt_set=prompt_set, model_versions=models, **settings)
    except InvalidInput as exc:
        return exc.message
    return None


ATTEMPTS = {"form": by_form, "api": by_api, "command": by_command, "service": by_service}


def texts(data) -> list[str]:
    if isinstance(data, dict):
        return [text for value in data.values() for text in texts(value)]
    if isinstance(data, list):
        return [text for value in data for text in texts(value)]
    return [str(data)]


@pytest.mark.parametrize("kind, values, refusal", CASES)
def test_every_path_accepts_and_refuses_the_same_values(paths, kind, values, refusal):
    """The form, the API, the command and the service agree: the same study, or the same refusal."""
    outcomes = {path: paths(path, kind, values) for path in PATHS}
    if refusal is None:
        assert isinstance(outcomes["service"], dict), outcomes["service"]
        assert outcomes == dict.fromkeys(PATHS, outcomes["service"])
    else:
        said = {
            path: refusal
            if isinstance(outcome, str) and (refusal is REFUSED or refusal in outcome)
            else outcome
            for path, outcome in outcomes.items()
        }
        assert said == dict.fromkeys(PATHS, refusal)


def test_empty_texts_stand_for_defaults_at_creation(paths):
    """An empty title is the neutral one, empty guidelines the kind's."""
    study = paths("service", "ab", {"title": "  ", "guidelines": ""})
    assert study["title"] == "Compare two images: visual flaws and visual appeal"
    assert study["guidelines"] == DEFAULT_GUIDELINES["ab"]
    quality = {"quality_action": "flag", "quality_min_gold": 5, "quality_gold_accuracy": 70}
    assert (study["exposure"], study["config"]) == (
        "isolated",
        {
            "image_index": 0,
            "criteria": ["flaws", "appeal"],
            "quality": quality
            | {"quality_floor_seconds": 2, "quiz_size": 0, "quiz_pass_percent": 80, "gold_rate_percent": 0},
            "crowd": {
                "crowd_enabled": False,
                "crowd_quota_tasks": 0,
                "crowd_quota_minutes": 0,
                "crowd_completion_url": "",
                "crowd_completion_code": "random",
            },
        },
    )


CHANGES = [
    pytest.param({"title": "Round 2"}, None, id="a title"),
    pytest.param({"title": ""}, errors.TITLE_EMPTY, id="empty title"),
    pytest.param({"title": "   "}, errors.TITLE_EMPTY, id="blank title"),
    pytest.param({"name": ""}, errors.NAME_EMPTY, id="empty name"),
    pytest.param({"guidelines": ""}, None, id="default guidelines"),
    pytest.param({"overlap": 0}, errors.OVERLAP_RANGE.format(overlap=0), id="overlap 0"),
    pytest.param({"overlap": 51}, errors.OVERLAP_RANGE.format(overlap=51), id="overlap 51"),
    pytest.param({"lease_seconds": 29}, errors.LEASE_RANGE.format(seconds=29), id="lease 29 s"),
    pytest.param({"lease_seconds": 3601}, errors.LEASE_RANGE.format(seconds=3601), id="lease 3601 s"),
    pytest.param({"status": "paused"}, None, id="paused"),
    pytest.param({"access": "enrolled"}, None, id="enrolled only"),
    pytest.param(
        {"access": ""},
        errors.NOT_ONE_OF.format(setting="access", choices="open, enrolled", value=""),
        id="empty access",
    ),
    pytest.param({"quality_action": "exclude", "quality_min_gold": 3}, None, id="the quality rule"),
    pytest.param(
        {"quality_gold_accuracy": 101},
        errors.SETTING_RANGE.format(setting="quality_gold_accuracy", low=0, high=100, value=101),
        id="accuracy over 100",
    ),
    pytest.param(
        {"quality_action": "ban"},
        errors.NOT_ONE_OF.format(setting="quality_action", choices="exclude, flag, off", value="ban"),
        id="unknown quality action",
    ),
    pytest.param(
        {"status": "archived"},
        errors.NOT_ONE_OF.format(setting="status", choices="open, paused, closed", value="archived"),
        id="unknown status",
    ),
]


@pytest.mark.parametrize("changes, refusal", CHANGES)
def test_the_api_and_the_service_change_a_study_alike(alice, prompt_set, model_a, changes, refusal):
    """PATCH /api/studies/<id>/ and study_update accept and refuse the same changes; an
    empty title, accepted at creation, is refused here: nothing makes it again."""
    study = study_create(name="bw", kind="best_worst", prompt_set=prompt_set, model_versions=[model_a])
    api = APIClient()
    api.force_authenticate(alice)
    response = api.patch(f"/api/studies/{study.pk}/", changes, format="json")
    by_api = None if response.status_code == 200 else "\n".join(texts(response.json()))
    try:
        study_update(study=study, **changes)
        by_service = None
    except InvalidInput as exc:
        by_service = exc.message
    if refusal is None:
        assert (by_api, by_service) == (None, None)
    else:
        assert refusal in by_api and by_service == refusal


def test_every_setting_has_a_field_an_option_and_the_same_default():
    """The form, both serializers and the command are built from the declarations."""
    form = StudyForm()
    created = StudyListCreateApi.InputSerializer().fields
    changed = StudyDetailApi.InputSerializer().fields
    parser = load_command_class("annotate", "create_study").create_parser("manage.py", "create_study")
    options = {action.dest: action for action in parser._actions}
    for setting in AT_CREATION:
        assert setting.name in form.fields and setting.name in created and setting.name in options
        assert form.fields[setting.name].help_text == created[setting.name].help_text == setting.help
        assert setting.help in options[setting.name].help
        if not setting.required and not setting.elsewhere:
            assert form.fields[setting.name].initial == created[setting.name].default == setting.default
    assert set(changed) == {setting.name for setting in CHANGEABLE}
    assert not any(field.required for field in changed.values())


def test_the_messages_name_the_declared_bounds():
    """The range messages are constants the tests reuse; they say what the declarations bound."""
    assert f"between {OVERLAP.low} and {OVERLAP.high}," in errors.OVERLAP_RANGE
    assert f"between {LEASE_SECONDS.low} and {LEASE_SECONDS.high}," in errors.LEASE_RANGE
    assert refused_size("x") == errors.DISPLAY_SIZE_FORMAT.format(
        low=DISPLAY_SIZE.low, high=DISPLAY_SIZE.high, value="x"
    )
