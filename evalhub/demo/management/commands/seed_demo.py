"""``python manage.py seed_demo [--size PIXELS]``: the demo data behind ``make demo``."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evalhub.demo.catalog import DEMO_PROMPT_SET, demo_seed
from evalhub.demo.studies import demo_studies_seed
from evalhub.demo.weights import demo_weights_seed

DEMO_URL = "http://127.0.0.1:8000/"
NOT_FOR_PRODUCTION = (
    "seed_demo creates accounts with a public password, a staff one among them: it runs only "
    "with DEBUG=1 (as `make demo` sets it). To seed a database that is not a production one "
    "without DEBUG, pass --i-know-this-is-not-production."
)


class Command(BaseCommand):
    help = (
        "Create the demo prompt set, two procedural demo models with their images, one open "
        "study of each kind, and demo accounts. Safe to run again: what exists is kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--size", type=int, default=256, help="Side of the demo images in pixels.")
        parser.add_argument(
            "--i-know-this-is-not-production",
            action="store_true",
            dest="not_production",
            help="Seed without DEBUG=1 (the demo accounts' password is public).",
        )

    def handle(self, *args, size, not_production, **options):
        if not (settings.DEMO_SEED_ALLOWED or not_production):
            raise CommandError(NOT_FOR_PRODUCTION)
        if size < 16:
            raise CommandError("--size must be at least 16")
        result = demo_seed(stdout=self.stdout, size=size)

        state = "created" if result.prompt_set_created else "already there"
        self.stdout.write(f"Prompt set {DEMO_PROMPT_SET!r}: {result.prompts} prompts ({state}).")
        if result.models_created:
            self.stdout.write(f"Model versions created: {', '.join(result.models_created)}.")
        self.stdout.write(f"Images: {result.images_created} created, {result.images_skipped} already there.")
        weights = demo_weights_seed()
        self.stdout.write(f"Demo weights (tiny random U-Net for the training loop): {weights}.")
        studies = demo_studies_seed()
        self.stdout.write(
            f"Studies created: {', '.join(studies)}." if studies else "Demo studies: already there."
        )

        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING("Demo accounts (public passwords: demo use only)"))
        rows = [("username", "password", "role")]
        rows += [(a.username, a.password, a.role) for a in result.accounts]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for number, row in enumerate(rows):
            cells = (value.ljust(width) for value, width in zip(row, widths, strict=True))
            self.stdout.write(("  " + "  ".join(cells)).rstrip())
            if number == 0:
                self.stdout.write("  " + "  ".join("-" * width for width in widths))
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Open {DEMO_URL} and sign in with one of these accounts."))
