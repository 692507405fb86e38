"""``python manage.py check_worker [--timeout S]``: is a Celery worker answering?"""

import secrets

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evalhub.ops.health import worker_health

NO_WORKER = "no worker answered within {timeout} s on broker {broker} (queue {queue!r}); is one running?"


class Command(BaseCommand):
    help = "Send a health task through the configured broker and wait for a worker's answer."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=20.0)
        parser.add_argument("--queue", default="celery", help="Queue to send the check to.")

    def handle(self, *args, timeout, queue, **options):
        token = secrets.token_hex(8)
        result = worker_health.apply_async(args=[token], queue=queue)
        try:
            answer = result.get(timeout=timeout)
        except CeleryTimeout:
            broker = settings.CELERY_BROKER_URL.split("@")[-1]
            raise CommandError(NO_WORKER.format(timeout=timeout, broker=broker, queue=queue)) from None
        if answer.get("token") != token:
            raise CommandError(f"a worker answered with the wrong token: {answer}")
        self.stdout.write(
            f"worker {answer['hostname']} answered; database {answer['database']} "
            f"{'reachable' if answer['database_ok'] else 'NOT reachable'}"
        )
        if not answer["database_ok"]:
            raise CommandError("the worker cannot reach the database")
