"""``python manage.py import_images MANIFEST --prompt-set NAME [--create-models]``

Streams a manifest of any size (evalhub.catalog.image_import_stream): a progress bar over
its rows, a chunk of rows per transaction, and, run again after an interruption or a
refused row, the rows already imported are skipped.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evalhub.catalog import limits
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.image_import_stream import generated_images_import_stream, manifest_row_count
from evalhub.catalog.image_sources import DirectorySource
from evalhub.catalog.models import PromptSet


class Command(BaseCommand):
    help = (
        "Import generated images from a JSONL manifest of any size, streamed in chunks with a "
        "progress bar; run again, it skips the rows already imported. Image paths are relative "
        "to the manifest's folder unless --images-dir is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("manifest", type=Path)
        parser.add_argument("--prompt-set", required=True, help="Name of the prompt set the prompts are in.")
        parser.add_argument("--images-dir", type=Path, help="Folder the image paths are relative to.")
        parser.add_argument(
            "--create-models", action="store_true", help="Create unknown model versions (kind base)."
        )
        parser.add_argument(
            "--chunk-rows",
            type=int,
            help="Rows per transaction (default: EVALHUB_IMPORT_CHUNK_ROWS, "
            f"{limits.IMPORT_CHUNK_ROWS.default} unless set); a refused row rolls back its chunk only.",
        )

    def handle(self, *args, manifest: Path, prompt_set, images_dir, create_models, chunk_rows, **options):
        if not manifest.is_file():
            raise CommandError(f"{manifest}: no such file")
        if chunk_rows is not None and chunk_rows < 1:
            raise CommandError("--chunk-rows must be at least 1")
        target = PromptSet.objects.filter(name=prompt_set).first()
        if target is None:
            raise CommandError(f"no prompt set named {prompt_set!r}")
        with manifest.open("rb") as handle:
            total = manifest_row_count(handle)
            bar = tqdm(
                total=total,
                unit="row",
                desc=manifest.name,
                file=self.stderr._out,
                disable=options.get("verbosity", 1) < 1,
            )

            def advance(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            try:
                result = generated_images_import_stream(
                    prompt_set=target,
                    manifest=handle,
                    source=DirectorySource(images_dir or manifest.parent),
                    create_models=create_models,
                    total=total,
                    on_progress=advance,
                    chunk_rows=chunk_rows,
                )
            except ImportRejected as exc:
                raise CommandError(f"{manifest}: {exc}") from None
            finally:
                bar.close()
        created_models = (
            f"; created model versions {', '.join(result.models_created)}" if result.models_created else ""
        )
        self.stdout.write(
            f"Imported {result.created} images into {target.name!r} "
            f"({result.skipped} already present){created_models}."
        )
