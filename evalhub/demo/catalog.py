"""The demo seed behind ``make demo``: a prompt set, two model versions, their images and
accounts, enough to try every part of EvalHub on a laptop without a GPU.

The images come from ``evalhub.demo.images``: "demo-base" draws with many prompt misses and
visual flaws, "demo-sft" (its post-trained child) with few, so studies between them show
a clear, known winner. Everything goes through the same services a researcher's import
uses, and every step is idempotent: a second run changes nothing, and a run interrupted
half-way is completed by the next one.
"""

import hashlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.models import User
from django.db import transaction

from evalhub.accounts.roles import ANNOTATORS, RESEARCHERS, user_grant_role
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import GeneratedImage, ModelVersion, PromptSet
from evalhub.catalog.prompt_import import PromptRow, QuestionRow, prompt_set_import
from evalhub.demo.images import DEMO_PROMPTS, DemoPrompt, draw_demo_image

DEMO_PROMPT_SET = "Demo shapes"
# Public on purpose: printed by the command and in the README. Demo databases only.
DEMO_PASSWORD = "evalhub-demo"
# Five for the best/worst studies (the paper's preference collection, §4.1), one for the
# A/B studies and one for text alignment: each image meets an annotator in one context
# only, so exposure control (annotate.exposure) never bars the demo's annotators.
IMAGES_PER_PROMPT = 7
GENERATOR = "procedural-demo"


@dataclass(frozen=True)
class DemoModel:
    """A demo model version and how well its drawings follow the prompt."""

    name: str
    kind: str
    quality: float
    description: str
    parent: str | None = None


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        name="demo-base",
        kind=ModelVersion.Kind.BASE,
        quality=0.3,
        description="Procedural demo model (no neural network): draws the prompt's shapes "
        "with frequent prompt misses and visual flaws.",
    ),
    DemoModel(
        name="demo-sft",
        kind=ModelVersion.Kind.SFT,
        quality=0.8,
        description="Procedural demo model standing in for demo-base after supervised "
        "fine-tuning: fewer visual flaws, better prompt alignment.",
        parent="demo-base",
    ),
)

DEMO_USERS: tuple[tuple[str, str], ...] = (
    ("researcher", RESEARCHERS),
    *((f"annotator{i}", ANNOTATORS) for i in range(1, 6)),
)


@dataclass(frozen=True)
class DemoAccount:
    """A demo login as printed for the user."""

    username: str
    password: str
    role: str


@dataclass
class DemoSeedResult:
    """What a seed run found and did."""

    prompt_set: PromptSet
    prompt_set_created: bool
    prompts: int
    models_created: list[str] = field(default_factory=list)
    images_created: int = 0
    images_skipped: int = 0
    accounts: list[DemoAccount] = field(default_factory=list)


def demo_seed(*, stdout=None, size: int = 256) -> DemoSeedResult:
    """Create (or complete) the demo data; ``stdout`` receives progress lines.

    ``size`` is the images' side in pixels; tests pass a small one to stay fast.
    """
    out = stdout or io.StringIO()
    accounts = _demo_accounts()
    prompt_set, created = _demo_prompt_set()
    models, models_created = _demo_models()
    result = DemoSeedResult(
        prompt_set=prompt_set,
        prompt_set_created=created,
        prompts=prompt_set.prompts.count(),
        models_created=models_created,
        accounts=accounts,
    )
    _demo_images(prompt_set, models, size, result, out)
    return result


def demo_seed_value(model: str, prompt: str, index: int) -> int:
    """The seed of one demo image: fixed per (model, prompt, index), and looks like the
    31-bit seeds real generators report."""
    digest = hashlib.sha256(f"{model}\n{prompt}\n{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def demo_prompt_rows() -> list[PromptRow]:
    """The demo prompts with their alignment questions, as the prompt importer takes them."""
    return [
        PromptRow(
            line=line,
            text=prompt.text,
            category=prompt.category,
            questions=tuple(
                QuestionRow(text=text, expected_answer=expected) for text, expected in prompt.questions
            ),
        )
        for line, prompt in enumerate(DEMO_PROMPTS, start=1)
    ]


def _demo_accounts() -> list[DemoAccount]:
    accounts = []
    for username, role in DEMO_USERS:
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            # Reset on every run so the printed password always works, even after a
            # demo user changed it; checked first so an unchanged hash is not rewritten.
            if created or not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
            user.is_active = True
            user.is_staff = role == RESEARCHERS  # the Django admin, for browsing data
            user.is_superuser = False
            user.save()
            user_grant_role(user=user, role=role)
        accounts.append(DemoAccount(username=username, password=DEMO_PASSWORD, role=role.removesuffix("s")))
    return accounts


def _demo_prompt_set() -> tuple[PromptSet, bool]:
    prompt_set = PromptSet.objects.filter(name=DEMO_PROMPT_SET).first()
    if prompt_set is not None:
        return prompt_set, False
    description = (
        "Simple scenes of coloured shapes for trying EvalHub; images come from procedural demo models."
    )
    return prompt_set_import(name=DEMO_PROMPT_SET, rows=demo_prompt_rows(), description=description), True


@transaction.atomic
def _demo_models() -> tuple[dict[str, ModelVersion], list[str]]:
    models: dict[str, ModelVersion] = {}
    created_names = []
    for spec in DEMO_MODELS:  # parents come first in DEMO_MODELS
        model, created = ModelVersion.objects.get_or_create(
            name=spec.name,
            defaults={
                "kind": spec.kind,
                "description": spec.description,
                "parent": models[spec.parent] if spec.parent else None,
            },
        )
        models[spec.name] = model
        if created:
            created_names.append(spec.name)
    return models, created_names


def _demo_images(prompt_set, models, size, result: DemoSeedResult, out) -> None:
    """Draw and import the images of every slot not filled yet.

    Filled slots are counted as skipped without being drawn again: cheaper, and a
    database seeded by an older version of the drawing code is not a conflict.
    """
    prompts = {p.text: p for p in prompt_set.prompts.all()}
    demo_prompts: list[DemoPrompt] = [p for p in DEMO_PROMPTS if p.text in prompts]
    if len(demo_prompts) < len(DEMO_PROMPTS):
        out.write(f"Prompt set {DEMO_PROMPT_SET!r} lacks some demo prompts; they get no images.\n")
    filled = set(
        GeneratedImage.objects.filter(
            prompt__prompt_set=prompt_set, model_version__in=models.values()
        ).values_list("model_version__name", "prompt__text", "index")
    )
    with tempfile.TemporaryDirectory(prefix="evalhub-demo-") as tmp:
        root = Path(tmp)
        lines = []
        for spec in DEMO_MODELS:
            (root / spec.name).mkdir()
            for position, prompt in enumerate(demo_prompts):
                for index in range(IMAGES_PER_PROMPT):
                    if (spec.name, prompt.text, index) in filled:
                        result.images_skipped += 1
                        continue
                    seed = demo_seed_value(spec.name, prompt.text, index)
                    path = f"{spec.name}/{position:03d}-{index}.png"
                    image = draw_demo_image(prompt.spec, seed=seed, quality=spec.quality, size=size)
                    # Fast compression: the importer re-encodes every image anyway.
                    image.save(root / path, format="PNG", compress_level=1)
                    lines.append(
                        json.dumps(
                            {
                                "prompt": prompt.text,
                                "model": spec.name,
                                "seed": seed,
                                "index": index,
                                "settings": {"generator": GENERATOR, "quality": spec.quality, "size": size},
                                "image": path,
                            }
                        )
                    )
        if not lines:  # the importer rejects an empty manifest
            out.write("All demo images are already imported.\n")
            return
        out.write(f"Importing {len(lines)} demo images...\n")
        manifest = "\n".join(lines) + "\n"
        (root / "manifest.jsonl").write_text(manifest)
        imported = generated_images_import(
            prompt_set=prompt_set, manifest=manifest, source=DirectorySource(root)
        )
    result.images_created += imported.created
    result.images_skipped += imported.skipped
