"""``python manage.py leaderboard --criterion flaws --baseline NAME [--bootstrap 200] [--rule RULE]
[--include-incomplete]``"""

from django.core.management.base import BaseCommand, CommandError

from evalhub.results.bradley_terry import leaderboard
from evalhub.results.command_options import add_decision_options
from evalhub.results.errors import ResultsError
from evalhub.results.majority import majority_rule

COMPLETE_ONLY = "complete items only"
PROVISIONAL = "PROVISIONAL: items with fewer than N judgments counted"


class Command(BaseCommand):
    help = "Bradley–Terry leaderboard of every model in an A/B study, with prompt-bootstrap 95% intervals."

    def add_arguments(self, parser):
        parser.add_argument("--criterion", choices=["flaws", "appeal"], default="flaws")
        parser.add_argument("--baseline", required=True, help="Model version whose score is fixed at 0.")
        parser.add_argument("--bootstrap", type=int, default=200, help="Resamples of prompts (0: none).")
        parser.add_argument("--seed", type=int, default=0)
        add_decision_options(parser, result="ranking")

    def handle(self, *args, criterion, baseline, bootstrap, seed, rule, include_incomplete, **options):
        rule = rule or majority_rule()
        try:
            rows = leaderboard(
                criterion=criterion,
                baseline=baseline,
                bootstrap=bootstrap,
                seed=seed,
                rule=rule,
                include_incomplete=include_incomplete,
            )
        except ResultsError as exc:
            raise CommandError(str(exc)) from None
        counted = PROVISIONAL if include_incomplete else COMPLETE_ONLY
        self.stdout.write(
            f"Bradley–Terry scores, {criterion}, anchored at {baseline} = 0; rule {rule}; {counted}"
        )
        for rank, row in enumerate(rows, start=1):
            interval = "" if row.ci_low is None else f"  [{row.ci_low:+.3f}, {row.ci_high:+.3f}]"
            self.stdout.write(
                f"{rank:>3}. {row.model:<40} {row.score:+.3f}{interval}  ({row.comparisons} items)"
            )
