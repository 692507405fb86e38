"""``python manage.py import_images MANIFEST --prompt-set NAME [--create-models]``"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_import import generated_images_import
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import PromptSet
from evalhub.catalog.uploads import read_text_file


class Command(BaseCommand):
    help = (
        "Import generated images from a JSONL manifest; image paths are relative to the "
        "manifest's folder unless --images-dir is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("manifest", type=Path)
        parser.add_argument("--prompt-set", required=True, help="Name of the prompt set the prompts are in.")
        parser.add_argument("--images-dir", type=Path, help="Folder the image paths are relative to.")
        parser.add_argument(
            "--create-models", action="store_true", help="Create unknown model versions (kind base)."
        )

    def handle(self, *args, manifest: Path, prompt_set, images_dir, create_models, **options):
        if not manifest.is_file():
            raise CommandError(f"{manifest}: no such file")
        target = PromptSet.objects.filter(name=prompt_set).first()
        if target is None:
            raise CommandError(f"no prompt set named {prompt_set!r}")
        try:
            with manifest.open("rb") as handle:
                text = read_text_file(handle, manifest.name)
            result = generated_images_import(
                prompt_set=target,
                manifest=text,
                source=DirectorySource(images_dir or manifest.parent),
                create_models=create_models,
            )
        except ImportRejected as exc:
            raise CommandError(f"{manifest}: {exc}") from None
        created_models = (
            f"; created model versions {', '.join(result.models_created)}" if result.models_created else ""
        )
        self.stdout.write(
            f"Imported {result.created} images into {target.name!r} "
            f"({result.skipped} already present){created_models}."
        )
