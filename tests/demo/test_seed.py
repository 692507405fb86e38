"""The demo seed behind ``make demo``: procedural images, prompt set, models, accounts."""

import io

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command

from annotate.models import Study
from evalhub.accounts.roles import ANNOTATORS, RESEARCHERS
from evalhub.catalog.models import AlignmentQuestion, GeneratedImage, ModelVersion, Prompt, PromptSet
from evalhub.demo.catalog import DEMO_PASSWORD, DEMO_PROMPT_SET, IMAGES_PER_PROMPT, demo_seed
from evalhub.demo.images import (
    COLOURS,
    DEMO_PROMPTS,
    SHAPES,
    demo_image_render,
    draw_demo_image,
)
from evalhub.results.best_worst import best_worst_pairs

SIZE = 48  # small images keep a full seed well under a second or two
SPEC = DEMO_PROMPTS[0].spec
TABLES = (PromptSet, Prompt, AlignmentQuestion, ModelVersion, GeneratedImage, User)
ACCOUNTS = {
    "researcher": RESEARCHERS,
    **{f"annotator{i}": ANNOTATORS for i in range(1, 6)},
}


# ---------------------------------------------------------------- drawing


def test_same_seed_draws_identical_pixels():
    """One seed always gives the same image."""
    first = draw_demo_image(SPEC, seed=7, quality=0.3, size=64)
    second = draw_demo_image(SPEC, seed=7, quality=0.3, size=64)
    assert first.tobytes() == second.tobytes()


def test_different_seeds_draw_different_pixels():
    """Every seed jitters the scene, so no two seeds give byte-identical images."""
    images = {draw_demo_image(SPEC, seed=seed, quality=1.0, size=64).tobytes() for seed in range(30)}
    assert len(images) == 30


def test_image_has_the_requested_size():
    """The image is an RGB square of the requested side."""
    image = draw_demo_image(SPEC, seed=1, quality=0.5, size=100)
    assert image.size == (100, 100)
    assert image.mode == "RGB"


def test_quality_sets_how_often_things_go_wrong():
    """At quality 1 nothing goes wrong; at quality 0 misses and flaws are common."""

    def drawings(quality):
        return [
            demo_image_render(p.spec, seed=s, quality=quality, size=32) for p in DEMO_PROMPTS for s in (1, 2)
        ]

    perfect = drawings(1.0)
    assert not any(d.misses or d.flaws for d in perfect)
    poor = drawings(0.0)
    assert sum(bool(d.misses) for d in poor) > len(poor) / 3
    assert sum(bool(d.flaws) for d in poor) > len(poor) / 3


def test_quality_outside_zero_to_one_is_refused():
    """Quality is a share; anything else is a caller's mistake."""
    with pytest.raises(ValueError):
        draw_demo_image(SPEC, seed=1, quality=1.5)


def test_prompt_texts_name_their_scene():
    """Each prompt's text names every colour and shape its spec draws."""
    for prompt in DEMO_PROMPTS:
        for group in prompt.spec.groups:
            assert group.colour in COLOURS and group.colour in prompt.text
            assert group.shape in SHAPES and group.shape in prompt.text
        if prompt.spec.background:
            assert f"{prompt.spec.background} background" in prompt.text


# ---------------------------------------------------------------- the seed


@pytest.mark.django_db
def test_seed_creates_prompts_with_questions():
    """About 20 prompts, each with at least two questions, some expecting no."""
    result = demo_seed(size=SIZE)
    prompts = Prompt.objects.filter(prompt_set__name=DEMO_PROMPT_SET)
    assert result.prompts == prompts.count() == len(DEMO_PROMPTS)
    assert 18 <= result.prompts <= 25
    for prompt in prompts:
        assert prompt.questions.count() >= 2
    assert AlignmentQuestion.objects.filter(prompt__in=prompts, expected_answer=False).exists()
    assert AlignmentQuestion.objects.filter(prompt__in=prompts, expected_answer=True).exists()


@pytest.mark.django_db
def test_seed_creates_five_images_per_prompt_and_model():
    """Both demo models get five images for every prompt, demo-sft descends from demo-base."""
    result = demo_seed(size=SIZE)
    base, sft = ModelVersion.objects.get(name="demo-base"), ModelVersion.objects.get(name="demo-sft")
    assert (base.kind, sft.kind) == (ModelVersion.Kind.BASE, ModelVersion.Kind.SFT)
    assert sft.parent == base
    assert "procedural demo" in base.description.lower()
    for prompt in Prompt.objects.filter(prompt_set__name=DEMO_PROMPT_SET):
        for model in (base, sft):
            images = GeneratedImage.objects.filter(prompt=prompt, model_version=model)
            assert sorted(images.values_list("index", flat=True)) == list(range(IMAGES_PER_PROMPT))
    image = GeneratedImage.objects.first()
    assert (image.width, image.height) == (SIZE, SIZE)
    assert image.settings["generator"] == "procedural-demo"
    assert result.images_created == 2 * IMAGES_PER_PROMPT * len(DEMO_PROMPTS)
    assert result.images_skipped == 0


@pytest.mark.django_db
def test_seeding_twice_changes_nothing():
    """A second run fails on nothing, creates nothing, and reports every image skipped."""
    first = demo_seed(size=SIZE)
    counts = [m.objects.count() for m in TABLES]
    hashes = dict(User.objects.values_list("username", "password"))

    second = demo_seed(size=SIZE)

    assert [m.objects.count() for m in TABLES] == counts
    assert dict(User.objects.values_list("username", "password")) == hashes
    assert not second.prompt_set_created and second.models_created == []
    assert second.images_created == 0
    assert second.images_skipped == first.images_created


@pytest.mark.django_db
def test_seed_completes_an_interrupted_run():
    """Images missing after a partial run are drawn again, the rest kept."""
    demo_seed(size=SIZE)
    GeneratedImage.objects.filter(model_version__name="demo-sft", index=4).delete()
    result = demo_seed(size=SIZE)
    assert result.images_created == len(DEMO_PROMPTS)
    assert GeneratedImage.objects.count() == 2 * IMAGES_PER_PROMPT * len(DEMO_PROMPTS)


@pytest.mark.django_db
def test_accounts_have_roles_and_the_printed_password():
    """Every demo account is in its role's group and logs in with the demo password."""
    result = demo_seed(size=SIZE)
    assert {(a.username, a.password) for a in result.accounts} == {(u, DEMO_PASSWORD) for u in ACCOUNTS}
    for username, group in ACCOUNTS.items():
        user = authenticate(username=username, password=DEMO_PASSWORD)
        assert user is not None, username
        assert list(user.groups.values_list("name", flat=True)) == [group]
        assert user.is_staff == (username == "researcher")
        assert not user.is_superuser


@pytest.mark.django_db
def test_seed_resets_a_changed_demo_password():
    """The printed password works again after a demo user changed it."""
    demo_seed(size=SIZE)
    user = User.objects.get(username="annotator1")
    user.set_password("something else")
    user.save()
    demo_seed(size=SIZE)
    assert authenticate(username="annotator1", password=DEMO_PASSWORD) is not None


@pytest.mark.django_db
def test_command_prints_summary_and_accounts(settings, tmp_path):
    """``seed_demo`` prints the counts, every account with its password and role, and the URL."""
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", size=SIZE, stdout=out)
    text = out.getvalue()
    assert f"{2 * IMAGES_PER_PROMPT * len(DEMO_PROMPTS)} created" in text
    for username, group in ACCOUNTS.items():
        line = next(line for line in text.splitlines() if line.split()[:1] == [username])
        assert line.split() == [username, DEMO_PASSWORD, group.removesuffix("s")]
    assert "http://127.0.0.1:8000/" in text
    assert "Studies created: Demo: best/worst of five (demo-base), Demo: A/B demo-sft vs demo-base, " in text
    assert Study.objects.count() == 5
    assert {s.tasks.count() for s in Study.objects.all()} == {20, 40}
    for name in ("Demo: A/B with simulated votes", "Demo: best/worst with simulated votes"):
        simulated = Study.objects.get(name=name)
        assert simulated.status == "closed"
        assert set(simulated.tasks.values_list("judgment_count", flat=True)) == {5}
    # The training loop of the demo: decided pairs, and weights for the demo versions.
    assert len(best_worst_pairs(Study.objects.get(name="Demo: best/worst with simulated votes"))) >= 10
    weights = tmp_path / "models" / "demo-tiny-unet"
    assert (weights / "model_index.json").is_file()
    assert set(ModelVersion.objects.values_list("weights_uri", flat=True)) == {str(weights)}

    again = io.StringIO()
    call_command("seed_demo", size=SIZE, stdout=again)
    assert f"0 created, {2 * IMAGES_PER_PROMPT * len(DEMO_PROMPTS)} already there" in again.getvalue()
    assert "Demo studies: already there." in again.getvalue()
    assert Study.objects.count() == 5
