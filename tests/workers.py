"""A real `celery worker` process for tests that need one (worker and producer are
separate processes, as in use), and the broker this test process publishes to."""

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from kombu import pools

from evalhub.celery import app

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def celery_worker(
    env: dict[str, str],
    log: Path,
    queues: str = "celery",
    name: str = "test@%h",
    concurrency: int | None = None,
    beat: bool = False,
    cwd: Path = REPO,
):
    """Run a worker on ``queues`` for the duration of the block: the solo pool, or the
    prefork pool with ``concurrency`` processes; ``beat`` embeds ``celery beat`` (-B).
    ``cwd`` is its working directory (the code is found on ``PYTHONPATH`` then)."""
    pool = ["--pool=solo"] if concurrency is None else ["--pool=prefork", f"--concurrency={concurrency}"]
    command = [
        sys.executable, "-m", "celery", "-A", "evalhub", "worker", "-Q", queues, *pool,
        "--loglevel=info", "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", name,
    ]  # fmt: skip
    if beat:
        command += ["-B", "--schedule", str(log.with_suffix(".beat-schedule"))]
    with log.open("w") as out:
        if cwd != REPO:
            env = {**env, "PYTHONPATH": str(REPO)}
        worker = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
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


def filesystem_broker_options(root: Path) -> dict[str, str]:
    """kombu's filesystem transport under ``root/celery`` — the folders that settings derive
    from ``EVALHUB_VAR_DIR=root``, so a worker started with it reads what this process sends."""
    folders = {name: root / "celery" / name for name in ("queue", "processed", "control", "results")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
    }


@contextmanager
def broker_at(url: str, transport_options: dict | None = None):
    """Publish from this process to ``url`` for the duration of the block; restored after."""
    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options")}
    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options or {}
    _drop_connections()
    try:
        yield
    finally:
        for key, value in saved.items():
            app.conf[key] = value
        _drop_connections()


def _drop_connections():
    # Celery caches its connection and producer pools on first use; a new broker URL only
    # takes effect once they are rebuilt.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
