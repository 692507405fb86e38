"""A real S3 API for the storage tests: moto in server mode on a free local port, started
once per test session and stopped after, with a fresh bucket per test. EvalHub talks to it
through django-storages and boto3 exactly as to AWS S3 or MinIO (nothing is mocked inside
EvalHub's code); only the endpoint and the throwaway credentials are the test's."""

import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import boto3

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "evalhub-test", "AWS_SECRET_ACCESS_KEY": "evalhub-test-secret"}
START_TIMEOUT = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_server(log: Path):
    """``moto_server`` on 127.0.0.1 for the duration of the block; its endpoint URL."""
    port = _free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS}
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}") from None
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=20)


def bucket_create(endpoint: str) -> str:
    """A new empty bucket; its name."""
    name = f"evalhub-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def s3_environment(endpoint: str, bucket: str) -> dict[str, str]:
    """The variables that point EvalHub (this process's settings, or a worker's) at
    ``bucket`` on the server."""
    return {
        "EVALHUB_S3_BUCKET": bucket,
        "EVALHUB_S3_ENDPOINT_URL": endpoint,
        "EVALHUB_S3_REGION": REGION,
        "EVALHUB_S3_ADDRESSING_STYLE": "path",
        **CREDENTIALS,
    }


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    """Every key in ``bucket``, read with boto3 directly (not through EvalHub)."""
    keys = []
    for page in s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def s3_client(endpoint: str):
    """boto3 on the test's S3 server, apart from EvalHub's storages."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
