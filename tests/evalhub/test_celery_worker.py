"""A real Celery worker process runs a task and returns its result, on the embedded
filesystem broker and on Redis. Worker and producer are separate processes, as in use."""

import subprocess
import sys
from pathlib import Path

import pytest

from evalhub.env import subprocess_env
from tests.workers import celery_worker

REPO = Path(__file__).resolve().parents[2]


def django_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    return subprocess_env(
        DJANGO_SETTINGS_MODULE="evalhub.settings", DEBUG="1", EVALHUB_VAR_DIR=str(var_dir), **overrides
    )


def check_worker(env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check_worker", "--timeout", str(timeout)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout + 60,
    )


def test_a_worker_on_the_embedded_broker_answers(tmp_path):
    """With no broker server, a worker process still runs the task and returns its result."""
    env = django_env(tmp_path)
    with celery_worker(env, tmp_path / "worker.log"):
        result = check_worker(env, timeout=90)
    assert result.returncode == 0, result.stderr + (tmp_path / "worker.log").read_text()
    assert "answered; database" in result.stdout and "reachable" in result.stdout


def test_check_worker_fails_clearly_when_no_worker_runs(tmp_path):
    """Without a worker the command stops after its timeout with a readable error."""
    result = check_worker(django_env(tmp_path), timeout=1)
    assert result.returncode != 0
    assert "no worker answered within 1.0 s on broker filesystem://localhost/" in result.stderr


@pytest.mark.redis
def test_a_worker_on_redis_answers(tmp_path, redis_url):
    """On the production broker (Redis), a worker process runs the task and returns its result."""
    env = django_env(tmp_path, CELERY_BROKER_URL=redis_url)
    with celery_worker(env, tmp_path / "worker.log"):
        result = check_worker(env, timeout=90)
    assert result.returncode == 0, result.stderr + (tmp_path / "worker.log").read_text()
    assert "answered; database" in result.stdout
