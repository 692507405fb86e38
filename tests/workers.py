"""A real `celery worker` process for tests that need one (worker and producer are
separate processes, as in use)."""

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def celery_worker(env: dict[str, str], log: Path, queues: str = "celery", name: str = "test@%h"):
    """Run a solo-pool worker on ``queues`` for the duration of the block."""
    command = [
        sys.executable, "-m", "celery", "-A", "evalhub", "worker", "-Q", queues, "--pool=solo",
        "--loglevel=info", "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", name,
    ]  # fmt: skip
    with log.open("w") as out:
        worker = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield worker
        finally:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
