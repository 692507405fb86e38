"""``python manage.py import_judgments FILE.csv``"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.judgment_import import judgments_import
from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.prompt_import import decode_text


class Command(BaseCommand):
    help = "Import judgments collected elsewhere (CSV: study, task_key, annotator, answer[, answered_at])."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            count = judgments_import(text=decode_text(file.read_bytes()))
        except ImportRejected as exc:
            raise CommandError(f"{file}: {exc}") from None
        self.stdout.write(f"Imported {count} judgments.")
