"""The demo's studies over the demo prompt set (``make demo``): one open study of each
kind for the demo annotators, and two studies already answered by simulated annotators:
an A/B study, so the results pages have a table to show, and a best/worst study, so its
preference pairs can train a model version at once."""

import random
import uuid

from django.contrib.auth.models import User

from annotate.assignment import assignments_next
from annotate.models import Study
from annotate.services import study_create
from annotate.submission import judgment_submit
from evalhub.accounts.roles import ANNOTATORS, user_grant_role
from evalhub.catalog.models import ModelVersion, PromptSet
from evalhub.demo.catalog import DEMO_PROMPT_SET

# Which of a prompt's seven demo images each kind shows: best/worst the first five, A/B
# and alignment one each of their own, so nobody meets one image blind and revealed.
IMAGE_INDEX = {Study.Kind.BEST_WORST: 0, Study.Kind.AB: 5, Study.Kind.ALIGNMENT: 6}
# The researchers' names; annotators see each kind's neutral title (annotate.titles).
DEMO_STUDIES = (
    ("Demo: best/worst of five (demo-base)", Study.Kind.BEST_WORST, ["demo-base"]),
    ("Demo: A/B demo-sft vs demo-base", Study.Kind.AB, ["demo-sft", "demo-base"]),
    ("Demo: text alignment", Study.Kind.ALIGNMENT, ["demo-base", "demo-sft"]),
)
SIMULATED_STUDY = ("Demo: A/B with simulated votes", ["demo-sft", "demo-base"])
SIMULATED_BEST_WORST = ("Demo: best/worst with simulated votes", ["demo-base"])
# A simulated annotator picks the prompt's "truly" best/worst image (fixed per prompt)
# with this probability, and any other image otherwise.
SIMULATED_AGREEMENT = 0.7
SIMULATED_ANNOTATORS = tuple(f"simulated{i}" for i in range(1, 6))
# How a simulated annotator judges demo-sft (A) against demo-base (B): demo-sft draws
# with fewer flaws, so it mostly wins; the votes go through the real submission path.
SIMULATED_VOTES = {"A": 0.6, "tie": 0.25, "B": 0.12, "reject": 0.03}


def demo_studies_seed() -> list[str]:
    """Create the demo studies that do not exist yet; returns the names created."""
    prompt_set = PromptSet.objects.get(name=DEMO_PROMPT_SET)
    created = []
    for name, kind, model_names in DEMO_STUDIES:
        if not Study.objects.filter(name=name).exists():
            study_create(
                name=name,
                kind=kind,
                prompt_set=prompt_set,
                model_versions=_models(model_names),
                image_index=IMAGE_INDEX[kind],
            )
            created.append(name)
    simulated = (
        (SIMULATED_STUDY, Study.Kind.AB, _simulate_votes),
        (SIMULATED_BEST_WORST, Study.Kind.BEST_WORST, _simulate_best_worst),
    )
    for (name, model_names), kind, simulate in simulated:
        if not Study.objects.filter(name=name).exists():
            models = _models(model_names)
            study = study_create(
                name=name,
                kind=kind,
                prompt_set=prompt_set,
                model_versions=models,
                image_index=IMAGE_INDEX[kind],
            )
            simulate(study)
            study.status = Study.Status.CLOSED
            study.save(update_fields=["status"])
            created.append(name)
    return created


def _models(names: list[str]) -> list[ModelVersion]:
    return [ModelVersion.objects.get(name=name) for name in names]


def _simulated_annotators():
    for number, username in enumerate(SIMULATED_ANNOTATORS):
        user, _ = User.objects.get_or_create(username=username)
        user.set_unusable_password()
        user.save()
        user_grant_role(user=user, role=ANNOTATORS)
        yield user, random.Random(number)


def _simulate_best_worst(study: Study) -> None:
    for user, rng in _simulated_annotators():
        while leases := assignments_next(study_id=study.pk, annotator=user).leases:
            lease = leases[0]
            # The image shown at each position is fixed per task, so the "true" pick is too.
            truth = random.Random(f"{study.pk}:{lease.task_id}")
            best, worst = truth.sample(range(5), 2)
            positive = best if rng.random() < SIMULATED_AGREEMENT else rng.randrange(5)
            negative = worst if rng.random() < SIMULATED_AGREEMENT else rng.randrange(5)
            if negative == positive:
                negative = rng.choice([p for p in range(5) if p != positive])
            judgment_submit(
                token=lease.token,
                annotator=user,
                client_id=uuid.uuid4(),
                answer={"positive": positive, "negative": negative},
            )


def _simulate_votes(study: Study) -> None:
    model_a = study.study_models.get(role="A").model_version_id
    for user, rng in _simulated_annotators():
        while leases := assignments_next(study_id=study.pk, annotator=user).leases:
            lease = leases[0]
            outcome = rng.choices(list(SIMULATED_VOTES), weights=list(SIMULATED_VOTES.values()))[0]
            left_is_a = lease.task.task_images.get(position=0).image.model_version_id == model_a
            choice = {"A": "left" if left_is_a else "right", "B": "right" if left_is_a else "left"}.get(
                outcome, outcome
            )
            judgment_submit(
                token=lease.token, annotator=user, client_id=uuid.uuid4(), answer={"choice": choice}
            )
