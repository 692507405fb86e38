"""``python manage.py export_winrates STUDY [STUDY ...] --out DIR [--format csv,md,tex,json,png]
[--rule RULE] [--include-incomplete]``"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Study
from evalhub.results.command_options import add_decision_options
from evalhub.results.errors import ResultsError
from evalhub.results.winrate_formats import FORMATS, render_table
from evalhub.results.winrates import ab_comparison


class Command(BaseCommand):
    help = (
        "Write the win-rate table of one or more A/B studies (stacked as rows, like the paper's "
        "Table 1) as CSV, Markdown, LaTeX, JSON and a PNG chart."
    )

    def add_arguments(self, parser):
        parser.add_argument("studies", nargs="+", help="Study names or ids, one table row each.")
        parser.add_argument("--out", type=Path, required=True, help="Folder to write winrates.<format> into.")
        parser.add_argument(
            "--format", default=",".join(FORMATS), help=f"Comma-separated of {', '.join(FORMATS)}."
        )
        add_decision_options(parser, result="table")

    def handle(self, *args, studies, out, format, rule, include_incomplete, **options):
        formats = [f.strip() for f in format.split(",") if f.strip()]
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown:
            raise CommandError(f"unknown format(s) {', '.join(unknown)}; expected {', '.join(FORMATS)}")
        try:
            comparisons = [
                ab_comparison(_study(ref), rule, include_incomplete=include_incomplete) for ref in studies
            ]
        except ResultsError as exc:
            raise CommandError(str(exc)) from None
        out.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            content = render_table(comparisons, fmt)
            path = out / f"winrates.{fmt}"
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
            self.stdout.write(f"wrote {path}")


def _study(ref: str) -> Study:
    study = Study.objects.filter(name=ref).first()
    if study is None and ref.isdigit():
        study = Study.objects.filter(pk=int(ref)).first()
    if study is None:
        raise CommandError(f"no study named {ref!r}")
    return study
