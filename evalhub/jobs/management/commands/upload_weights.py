"""``python manage.py upload_weights FOLDER --model-version NAME [--create]``"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evalhub.catalog.models import ModelVersion
from evalhub.jobs.weights import weights_upload
from training.pipelines import ModelLoadError, pipeline_family


class Command(BaseCommand):
    help = (
        "Put a diffusers pipeline folder into the artifacts storage, named by its content hash, "
        "and point a model version's weights at it (storage://models/<sha256>): with object "
        "storage, the way a base model reaches workers that share no disk with this machine."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="A diffusers pipeline folder (with model_index.json).")
        parser.add_argument("--model-version", required=True, help="The model version's name.")
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create the version (kind base) if there is none of that name.",
        )

    def handle(self, *args, folder: Path, model_version: str, create: bool, **options):
        version = model_version
        try:
            family = pipeline_family(folder)
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from None
        target = ModelVersion.objects.filter(name=version).first()
        if target is None and not create:
            raise CommandError(f"no model version named {version!r} (--create makes one)")
        uri = weights_upload(folder)
        if target is None:
            target = ModelVersion.objects.create(name=version, kind=ModelVersion.Kind.BASE, weights_uri=uri)
        else:
            ModelVersion.objects.filter(pk=target.pk).update(weights_uri=uri)
        self.stdout.write(f"Model version {target.name!r} ({family}) now reads its weights from {uri}.")
