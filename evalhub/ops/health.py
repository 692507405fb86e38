"""Health checks: ``/healthz`` for the web process, ``worker_health`` for Celery workers.

``python manage.py check_worker`` sends ``worker_health`` through the configured broker
and waits for its answer, which proves broker, worker and database are wired together.
"""

import socket

from celery import shared_task
from django.db import connection
from django.http import JsonResponse


def database_ok() -> bool:
    """Whether a trivial query succeeds on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def healthz(request):
    ok = database_ok()
    return JsonResponse({"ok": ok, "database": connection.vendor}, status=200 if ok else 503)


@shared_task(name="evalhub.worker_health")
def worker_health(token: str) -> dict:
    """Echo ``token`` with the worker's host and database, so a caller knows who answered."""
    return {
        "token": token,
        "hostname": socket.gethostname(),
        "database": connection.vendor,
        "database_ok": database_ok(),
    }
