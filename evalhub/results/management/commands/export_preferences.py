"""``python manage.py export_preferences STUDY --out DIR [--include-incomplete]``"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Study
from evalhub.results.errors import ResultsError
from evalhub.results.preference_export import preference_pairs_export


class Command(BaseCommand):
    help = "Write a best/worst study's winner/loser pairs as JSONL + images and Pick-a-Pic-style Parquet."

    def add_arguments(self, parser):
        parser.add_argument("study", help="Study name.")
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument(
            "--include-incomplete",
            action="store_true",
            help="Also count tasks that lack their N judgments (a provisional export).",
        )

    def handle(self, *args, study, out, include_incomplete, **options):
        target = Study.objects.filter(name=study).first()
        if target is None:
            raise CommandError(f"no study named {study!r}")
        try:
            export = preference_pairs_export(study=target, folder=out, include_incomplete=include_incomplete)
        except ResultsError as exc:
            raise CommandError(str(exc)) from None
        counted = "counted: provisional" if export.provisional else "left out"
        self.stdout.write(
            f"wrote {export.pairs} pairs to {out} (content hash {export.content_hash})\n"
            f"tasks: {export.complete_tasks} complete, {export.incomplete_tasks} incomplete ({counted}), "
            f"{export.undecided_tasks} left out with no single winner and loser"
        )
