"""``python manage.py export_preferences STUDY --out DIR``"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Study
from evalhub.results.ab_outcomes import ResultsError
from evalhub.results.preference_export import preference_pairs_export


class Command(BaseCommand):
    help = "Write a best/worst study's winner/loser pairs as JSONL + images and Pick-a-Pic-style Parquet."

    def add_arguments(self, parser):
        parser.add_argument("study", help="Study name.")
        parser.add_argument("--out", type=Path, required=True)

    def handle(self, *args, study, out, **options):
        target = Study.objects.filter(name=study).first()
        if target is None:
            raise CommandError(f"no study named {study!r}")
        try:
            export = preference_pairs_export(study=target, folder=out)
        except ResultsError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"wrote {export.pairs} pairs to {out} (content hash {export.content_hash})")
