"""``python manage.py create_study NAME --kind ab --prompt-set SET --model A --model B``"""

from django.core.management.base import BaseCommand, CommandError

from annotate.errors import AnnotationError
from annotate.models import Study
from annotate.services import study_create
from evalhub.catalog.models import ModelVersion, PromptSet


class Command(BaseCommand):
    help = "Create an annotation study with its tasks."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", required=True, choices=Study.Kind.values)
        parser.add_argument("--prompt-set", required=True)
        parser.add_argument(
            "--model",
            action="append",
            required=True,
            dest="models",
            help="Model version name; give it once for best/worst, twice (A then B) for A/B, "
            "once or more for alignment.",
        )
        parser.add_argument("--criteria", default="flaws,appeal", help="A/B: comma-separated flaws, appeal.")
        parser.add_argument("--overlap", type=int, default=5, help="Annotators per task (N).")
        parser.add_argument("--lease-seconds", type=int, default=300)
        parser.add_argument(
            "--image-index", type=int, default=0, help="A/B and alignment: which image is shown."
        )
        parser.add_argument(
            "--title", default="", help="What annotators see (default: a neutral title from the kind)."
        )
        parser.add_argument("--guidelines", default="")
        parser.add_argument(
            "--exposure",
            choices=Study.Exposure.values,
            help="A/B: isolated (default) or shared; see docs/researchers.md.",
        )
        parser.add_argument(
            "--display-size", default="", help="A/B: WIDTHxHEIGHT to serve both sides resampled to one size."
        )
        parser.add_argument(
            "--skip-incomplete",
            action="store_true",
            help="Leave out prompts without the images a task needs.",
        )

    def handle(
        self,
        *args,
        name,
        kind,
        prompt_set,
        models,
        criteria,
        overlap,
        lease_seconds,
        image_index,
        guidelines,
        skip_incomplete,
        title,
        exposure,
        display_size,
        **options,
    ):
        target = PromptSet.objects.filter(name=prompt_set).first()
        if target is None:
            raise CommandError(f"no prompt set named {prompt_set!r}")
        versions = []
        for model_name in models:
            version = ModelVersion.objects.filter(name=model_name).first()
            if version is None:
                raise CommandError(f"no model version named {model_name!r}")
            versions.append(version)
        try:
            study = study_create(
                name=name,
                kind=kind,
                prompt_set=target,
                model_versions=versions,
                criteria=[c.strip() for c in criteria.split(",") if c.strip()],
                overlap=overlap,
                lease_seconds=lease_seconds,
                image_index=image_index,
                guidelines=guidelines,
                skip_incomplete=skip_incomplete,
                title=title,
                exposure=exposure,
                display_size=display_size,
            )
        except AnnotationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Created study {study.name!r} (id {study.pk}): {study.tasks.count()} tasks, "
            f"{study.overlap} annotators each; annotators see it as {study.title!r}."
        )
