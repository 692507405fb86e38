"""``python manage.py import_prompts FILE [--name NAME] [--format csv|jsonl]``"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evalhub.catalog.errors import ImportRejected
from evalhub.catalog.prompt_import import detect_format, parse_prompt_rows, prompt_set_import
from evalhub.catalog.uploads import read_text_file


class Command(BaseCommand):
    help = "Import a prompt set (prompts, categories, alignment questions) from CSV or JSONL."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", help="Name of the new prompt set (default: the file's stem).")
        parser.add_argument("--description", default="")
        parser.add_argument("--format", choices=["csv", "jsonl"], help="Default: from the extension.")

    def handle(self, *args, file: Path, name, description, format, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            fmt = format or detect_format(file.name)
            with file.open("rb") as handle:
                text = read_text_file(handle, file.name)
            rows = parse_prompt_rows(text, fmt)
            prompt_set = prompt_set_import(name=name or file.stem, rows=rows, description=description)
        except ImportRejected as exc:
            raise CommandError(f"{file}: {exc}") from None
        questions = sum(len(row.questions) for row in rows)
        self.stdout.write(
            f"Imported prompt set {prompt_set.name!r}: {len(rows)} prompts, {questions} alignment questions."
        )
