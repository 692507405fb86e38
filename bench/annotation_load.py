"""Load test of the annotation API: K annotators doing next-task + submit over HTTP.

What it measures: the app under a real WSGI server (granian by default, or gunicorn) on
loopback, on PostgreSQL, with K simulated annotators (default 32) that each loop "POST
next" then "POST submit" with no pause (a fresh client_id per answer, token auth,
keep-alive connections; like the labeling page, "next" asks for the progress counter
only when no answer has just reported it) for a bounded time. It prints judgments per
second, p50/p95/p99/max latency of each call and the CPU each part spent per judgment,
then checks the database: no task over N judgments, no (task, annotator) pair twice,
and as many judgments as 201 answers (nothing lost, nothing duplicated).

The study's exposure control is on (``isolated``, the default for A/B; ``--exposure
shared`` turns it off): every lease checks the task's images against what the annotator
was shown elsewhere and writes them as seen. ``--revealed K`` first shows each annotator K
of the study's images in a revealing context (as a text-alignment study would), so the
queue must pass over the tasks that holds them; the check then also finds no image
handed to an annotator both ways, and every leased image written as seen.

The run starts on a new database: the tables the set-up filled are analyzed (as
autovacuum would after a bulk load), the ones the run fills are not (see
``analyze_filled_tables``).

    .venv/bin/python bench/annotation_load.py                 # defaults below
    .venv/bin/python bench/annotation_load.py --annotators 64 --seconds 60 --workers 3

The bench database is dropped and created anew each run (``--keep`` keeps it after).
Targets on the 2-core machine: p99 of next and of submit under 100 ms at 32
annotators, and at least 200 judgments/second.

``--mode images`` measures instead the image fetches per second one web process sustains
(``--workers 1`` unless given): each annotator leases ``--count`` tasks once, then fetches
their images from the per-task token URLs (``annotate.views.image``, with a session cookie
as the labeling page does) in a loop, with no pause. The images are ``--image-size``
squared PNGs of noise (incompressible, about 3 bytes a pixel). ``--storage s3`` keeps them
in a bucket of a moto S3 server this bench starts on loopback (tests/s3.py; the web
process reads each one from it per fetch); the default is the media folder. The report
adds MB/s and the CPU of the S3 server, and checks every fetch answered 200 with the same
length on each fetch of one URL (one task serves the same bytes every time).

    .venv/bin/python bench/annotation_load.py --mode images --storage filesystem
    .venv/bin/python bench/annotation_load.py --mode images --storage s3
"""

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
sys.path.insert(0, str(REPO))  # the set-up steps import the project


# ---------------------------------------------------------------- set-up (runs under Django)


def seed(prompts: int, annotators: int, overlap: int, exposure: str, revealed: int, image_size: int) -> dict:
    """Prompt set, two models' images, an A/B study (both criteria), annotators with tokens
    and logged-in sessions, each shown ``revealed`` of the study's images with their prompt
    beforehand. Images of 8 pixels a side are plain colours; larger ones are noise."""
    import django

    django.setup()
    import io

    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client
    from PIL import Image
    from rest_framework.authtoken.models import Token

    from annotate.models import ImageExposure, TaskImage
    from annotate.services import study_create
    from evalhub.accounts.roles import user_grant_role
    from evalhub.catalog.image_import import generated_images_import
    from evalhub.catalog.models import ModelVersion
    from evalhub.catalog.prompt_import import PromptRow, QuestionRow, prompt_set_import

    rows = [
        PromptRow(line=i + 1, text=f"bench prompt {i}", questions=(QuestionRow("Is it there?"),))
        for i in range(prompts)
    ]
    prompt_set = prompt_set_import(name="bench", rows=rows)

    class MemorySource:
        def __init__(self):
            self.files = {}

        def read(self, path):
            return self.files[path]

    source, manifest, counter = MemorySource(), [], 0
    noise = random.Random(1)
    for model in ("bench-a", "bench-b"):
        for i in range(prompts):
            counter += 1
            buffer = io.BytesIO()
            if image_size == 8:
                image = Image.new("RGB", (8, 8), (counter // 65536, counter // 256 % 256, counter % 256))
            else:
                image = Image.frombytes("RGB", (image_size, image_size), noise.randbytes(3 * image_size**2))
            image.save(buffer, "PNG")
            source.files[f"{model}/{i}.png"] = buffer.getvalue()
            manifest.append(
                json.dumps(
                    {
                        "prompt": f"bench prompt {i}",
                        "model": model,
                        "seed": i,
                        "index": 0,
                        "image": f"{model}/{i}.png",
                    }
                )
            )
    generated_images_import(
        prompt_set=prompt_set, manifest="\n".join(manifest), source=source, create_models=True
    )
    models = [ModelVersion.objects.get(name="bench-a"), ModelVersion.objects.get(name="bench-b")]
    study = study_create(
        name="bench",
        kind="ab",
        prompt_set=prompt_set,
        model_versions=models,
        overlap=overlap,
        exposure=exposure,
    )
    images = sorted(set(TaskImage.objects.filter(task__study=study).values_list("image_id", flat=True)))
    rng = random.Random(0)
    tokens, sessions = [], []
    for i in range(annotators):
        user = User.objects.create_user(f"bench{i}")
        user_grant_role(user=user, role="annotators")
        tokens.append(Token.objects.create(user=user).key)
        browser = Client()
        browser.force_login(user)
        sessions.append(
            f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        ImageExposure.objects.bulk_create(
            ImageExposure(annotator=user, image_id=image, context=ImageExposure.Context.REVEALING)
            for image in rng.sample(images, min(revealed, len(images)))
        )
    return {"study": study.pk, "tasks": study.tasks.count(), "tokens": tokens, "sessions": sessions}


def check(study_id: int) -> dict:
    """Integrity of what the run left in the database."""
    import django

    django.setup()
    from django.db.models import Count, F

    from annotate.models import AnnotatorTally, ImageExposure, Judgment, Lease, Study, Task, TaskImage

    study = Study.objects.get(pk=study_id)
    per_task = Task.objects.filter(study=study).annotate(n=Count("judgments"))
    judged = dict(
        Judgment.objects.filter(task__study=study)
        .values("annotator")
        .annotate(n=Count("pk"))
        .values_list("annotator", "n")
    )
    tallied = dict(AnnotatorTally.objects.filter(study=study).values_list("annotator", "judgments"))
    leased = set(
        TaskImage.objects.filter(task__study=study, task__leases__isnull=False).values_list(
            "task__leases__annotator_id", "image_id"
        )
    )
    seen = set(ImageExposure.objects.filter(context="blind").values_list("annotator_id", "image_id"))
    revealed = set(ImageExposure.objects.filter(context="revealing").values_list("annotator_id", "image_id"))
    return {
        "exposures": len(seen),
        "leased_unrecorded": len(leased - seen) if study.exposure == "isolated" else 0,
        "leased_revealed": len(leased & revealed) if study.exposure == "isolated" else 0,
        "judgments": Judgment.objects.filter(task__study=study).count(),
        "over_n": per_task.filter(n__gt=study.overlap).count(),
        "counter_mismatch": per_task.exclude(n=F("judgment_count")).count(),
        "duplicate_pairs": Judgment.objects.filter(task__study=study)
        .values("task", "annotator")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count(),
        "tasks_at_n": per_task.filter(n=study.overlap).count(),
        "open_count_mismatch": int(
            study.open_tasks != Task.objects.filter(study=study, judgment_count__lt=study.overlap).count()
        ),
        "tally_mismatch": int(judged != tallied),
        "unmarked_full_leases": Lease.objects.filter(
            task__study=study, task__judgment_count__gte=study.overlap, task_filled=False
        ).count(),
    }


# ---------------------------------------------------------------- load (no Django)


class KeepAliveClient:
    """A minimal HTTP/1.1 client on one keep-alive connection (reopened when the server
    closes it). http.client parses every response's headers with the email package, which
    costs the load generator more CPU than the server spends on some calls, on the same
    two cores; this parses the status line and two headers."""

    def __init__(self, port: int, token: str, session: str = ""):
        self.port = port
        self.headers = (
            f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\nContent-Type: application/json\r\n"
        )
        # The images go by session, as in the browser; the API by token (a POST with the
        # session cookie would need a CSRF token too).
        self.cookie = f"Cookie: {session}\r\n" if session else ""
        self.sock = None
        self.pending = b""

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pending = b""
        headers = self.headers + (self.cookie if method == "GET" else "")
        request = f"{method} {path} HTTP/1.1\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
        self.sock.sendall(request.encode() + body)
        while b"\r\n\r\n" not in self.pending:
            self.pending += self._receive()
        head, _, rest = self.pending.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status, length, close = int(lines[0].split()[1]), 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise ValueError("chunked responses are not expected from these endpoints")
        chunks, have = [rest], len(rest)
        while have < length:  # an image is hundreds of kilobytes: join once, not per chunk
            chunks.append(self._receive())
            have += len(chunks[-1])
        rest = b"".join(chunks)
        data, self.pending = rest[:length], rest[length:]
        if close:
            self.close()
        return status, data

    def _receive(self) -> bytes:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def annotator_loop(port, study_id, token, deadline, results, seed_value):
    rng = random.Random(seed_value)
    client = KeepAliveClient(port, token)

    def call(kind, path, body):
        started = time.perf_counter()
        try:
            status, data = client.post(path, json.dumps(body).encode())
        except (OSError, ValueError):
            client.close()
            status, data = 0, b"{}"
        results.append((kind, status, time.perf_counter() - started, len(data)))
        return status, data

    progress = True  # as the page: the counter comes with each answer's acknowledgement
    while time.perf_counter() < deadline:
        status, data = call(
            "next", f"/api/annotate/studies/{study_id}/next/", {"count": 1, "progress": progress}
        )
        if status != 200:
            continue
        assignments = json.loads(data)["assignments"]
        if not assignments:
            break
        answer = {"choice": rng.choice(["left", "tie", "right", "reject"])}
        status, _ = call(
            "submit",
            f"/api/annotate/assignments/{assignments[0]['token']}/submit/",
            {"client_id": str(uuid.uuid4()), "answer": answer},
        )
        progress = status not in (200, 201)
    client.close()


def image_viewer_loop(port, study_id, credentials, deadline, results, count):
    """Lease ``count`` tasks once, then fetch their images round and round until the
    deadline. Each result is ("image", status, seconds, bytes); a fetch whose length differs
    from the first fetch of its URL counts as status -1."""
    token, session = credentials
    client = KeepAliveClient(port, token, session)
    status, data = client.post(
        f"/api/annotate/studies/{study_id}/next/", json.dumps({"count": count}).encode()
    )
    if status != 200:
        results.append(("lease", status, 0.0, 0))
        return
    urls = [image["url"] for assignment in json.loads(data)["assignments"] for image in assignment["images"]]
    lengths: dict[str, int] = {}
    fetches = 0
    while urls and time.perf_counter() < deadline:
        url = urls[fetches % len(urls)]
        fetches += 1
        started = time.perf_counter()
        try:
            status, body = client.request("GET", url)
        except (OSError, ValueError):
            client.close()
            status, body = 0, b""
        seconds = time.perf_counter() - started
        if status == 200 and lengths.setdefault(url, len(body)) != len(body):
            status = -1
        results.append(("image", status, seconds, len(body)))
    client.close()


def load_process(port, study_id, credentials, deadline, queue, mode, count):
    results = []
    started = time.process_time()
    threads = [
        threading.Thread(target=annotator_loop, args=(port, study_id, token, deadline, results, i))
        if mode == "annotate"
        else threading.Thread(
            target=image_viewer_loop, args=(port, study_id, (token, session), deadline, results, count)
        )
        for i, (token, session) in enumerate(credentials)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put((results, time.process_time() - started))


# ---------------------------------------------------------------- orchestration


def server_name(args) -> str:
    return "granian" if args.server == "granian" else f"gunicorn {args.worker_class}"


def server_command(args, port: int) -> list[str]:
    """The WSGI server under test: granian (Rust HTTP, the app on one thread per worker)
    or gunicorn (pure Python)."""
    if args.server == "granian":
        return [
            PYTHON, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(args.workers), "--blocking-threads", str(args.threads),
            "--no-ws", "--log-level", "warning", "evalhub.wsgi:application",
        ]  # fmt: skip
    return [
        PYTHON, "-m", "gunicorn", "evalhub.wsgi", "-b", f"127.0.0.1:{port}",
        "-w", str(args.workers), "-k", args.worker_class, "--threads", str(args.threads),
        "--log-level", "warning",
    ]  # fmt: skip


def analyze_filled_tables(database: str) -> None:
    """Planner statistics for the tables the set-up filled, as autovacuum gathers them after
    a bulk load. The empty ones are left never analyzed, as in a new deployment: analyzing
    an empty table tells the planner it is that small, and plans cached then keep reading
    it whole as it grows."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as connection:
        filled = [
            name
            for (name,) in connection.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE n_live_tup > 0 ORDER BY relname"
            )
        ]
        for name in filled:
            connection.execute(f'ANALYZE "{name}"')


def run(command, env, **kwargs):
    return subprocess.run(command, cwd=REPO, env=env, check=True, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /healthz")


def cpu_seconds(processes) -> float:
    """User + system CPU time of the processes still alive (PostgreSQL backends come and go
    only with connections, which the server keeps open)."""
    import psutil

    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def server_processes(server_pid: int, database: str) -> list:
    """gunicorn's master and workers; PostgreSQL's backends for the bench database and its
    shared processes (WAL writer, checkpointer…), not other databases' backends."""
    import psutil

    master = psutil.Process(server_pid)
    postgres = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] not in ("postgres", "postmaster"):
            continue
        title = " ".join(process.info["cmdline"] or [])
        is_backend = "(" in title or "[local]" in title
        if not is_backend or f" {database} " in title:
            postgres.append(process)
    return [[master, *master.children(recursive=True)], postgres]


def connections_per_worker(server_pid: int, port: int) -> list[int]:
    """The annotators' keep-alive connections each server worker holds. A connection stays
    with the worker that accepted it, and which one that is depends on who wins the race
    to accept, so the share of work each worker gets differs from run to run."""
    import psutil

    counts = []
    for worker in psutil.Process(server_pid).children(recursive=True):
        try:
            counts.append(
                sum(
                    1
                    for held in worker.net_connections("tcp")
                    if held.status == psutil.CONN_ESTABLISHED and held.laddr.port == port
                )
            )
        except psutil.NoSuchProcess:
            pass
    return sorted(counts, reverse=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000 if ordered else float("nan")
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mode",
        choices=["annotate", "images"],
        default="annotate",
        help="annotate: next + submit (default); images: image fetches from the token URLs",
    )
    parser.add_argument(
        "--storage",
        choices=["filesystem", "s3"],
        default="filesystem",
        help="where the images are kept: the media folder (default) or a bucket of a local moto S3 server",
    )
    parser.add_argument("--annotators", type=int, default=32, help="simulated annotators (default 32)")
    parser.add_argument("--seconds", type=float, default=30, help="how long the load runs (default 30)")
    parser.add_argument(
        "--prompts",
        type=int,
        help="prompts; the study has 2 tasks each (default 4000; 64 with --mode images)",
    )
    parser.add_argument("--overlap", type=int, default=5, help="annotators per task, N (default 5)")
    parser.add_argument(
        "--image-size",
        type=int,
        help="side of the square images in pixels (default 8: plain colours; 512 with --mode images: noise)",
    )
    parser.add_argument(
        "--count", type=int, default=3, help="--mode images: tasks each annotator leases and fetches (1-3)"
    )
    parser.add_argument(
        "--workers", type=int, help="server worker processes (default 3; 1 with --mode images)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads running the app per worker (default 1: the GIL makes more slower here)",
    )
    parser.add_argument(
        "--server", choices=["granian", "gunicorn"], default="granian", help="WSGI server (default granian)"
    )
    parser.add_argument(
        "--worker-class", default="gthread", help="gunicorn's worker class (default gthread: keep-alive)"
    )
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument(
        "--exposure", choices=["isolated", "shared"], default="isolated", help="the study's exposure setting"
    )
    parser.add_argument(
        "--revealed",
        type=int,
        default=0,
        help="study images each annotator was shown with their prompt beforehand (default 0)",
    )
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/evalhub_bench")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--_seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_check", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    images = args.mode == "images"
    args.prompts = args.prompts or (64 if images else 4000)
    args.image_size = args.image_size or (512 if images else 8)
    args.workers = args.workers or (1 if images else 3)
    if not 1 <= args.count <= 3:
        parser.error("--count must be 1, 2 or 3 (the most tasks one call to next leases)")
    return args


@contextlib.contextmanager
def object_store(storage: str, var_dir: str):
    """The environment that keeps the app's files in a bucket of a moto S3 server started
    on loopback for the block (tests/s3.py), and the server's process; nothing and None
    for the filesystem."""
    if storage == "filesystem":
        yield {}, None
        return
    import psutil

    from tests.s3 import bucket_create, moto_server, s3_environment

    with moto_server(Path(var_dir) / "moto.log") as endpoint:
        server = next(
            child for child in psutil.Process().children() if "moto.server" in " ".join(child.cmdline())
        )
        yield s3_environment(endpoint, bucket_create(endpoint)), server


def main() -> int:
    args = parse_args()
    if args._seed:
        seeded = seed(
            args.prompts, args.annotators, args.overlap, args.exposure, args.revealed, args.image_size
        )
        print(json.dumps(seeded))
        return 0
    if args._check is not None:
        print(json.dumps(check(args._check)))
        return 0
    var_dir = tempfile.mkdtemp(prefix="evalhub-bench-")
    with object_store(args.storage, var_dir) as (storage_env, store_process):
        return measure(args, var_dir, storage_env, store_process)


def measure(args, var_dir: str, storage_env: dict, store_process) -> int:
    admin_url, name = args.database.rsplit("/", 1)
    env = {
        **os.environ,
        **storage_env,
        "DATABASE_URL": args.database,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-" + "k3y" * 20,  # production settings want 50+ characters
        "ALLOWED_HOSTS": "127.0.0.1",
        "EVALHUB_VAR_DIR": var_dir,
        "DJANGO_SETTINGS_MODULE": "evalhub.settings",
        "LOG_LEVEL": "WARNING",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
    }
    import psycopg

    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    print(
        f"set-up: migrating and seeding {args.prompts} prompts ({args.image_size}² images, "
        f"{args.storage}), {args.annotators} annotators…",
        flush=True,
    )
    run([PYTHON, "manage.py", "migrate", "-v0"], env)
    seed_command = [PYTHON, __file__, "--_seed", "--mode", args.mode, "--prompts", str(args.prompts)]
    seed_command += ["--annotators", str(args.annotators), "--overlap", str(args.overlap)]
    seed_command += ["--exposure", args.exposure, "--revealed", str(args.revealed)]
    seed_command += ["--image-size", str(args.image_size)]
    seeded = json.loads(
        run(seed_command, env, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    )

    analyze_filled_tables(args.database)

    port = free_port()
    server = subprocess.Popen(
        server_command(args, port), cwd=REPO, env={**env, "DATABASE_CONN_MAX_AGE": "600"}
    )
    try:
        wait_for(port)
        # Warm every worker's connection before counting CPU, so the PostgreSQL backends
        # that serve the run exist when the processes are listed.
        for _ in range(3 * args.workers):
            wait_for(port)
        web, database = server_processes(server.pid, name)
        store = [store_process] if store_process else []
        cpu_before = (cpu_seconds(web), cpu_seconds(database), cpu_seconds(store))
        queue = multiprocessing.Queue()
        started = time.perf_counter()
        deadline = started + args.seconds
        credentials = list(zip(seeded["tokens"], seeded["sessions"], strict=True))
        share = [credentials[i :: args.clients] for i in range(args.clients)]
        clients = [
            multiprocessing.Process(
                target=load_process,
                args=(port, seeded["study"], annotators, deadline, queue, args.mode, args.count),
            )
            for annotators in share
            if annotators
        ]
        for client in clients:
            client.start()
        time.sleep(min(2.0, args.seconds / 2))
        spread = connections_per_worker(server.pid, port)
        reports = [queue.get() for _ in clients]
        for client in clients:
            client.join()
        elapsed = time.perf_counter() - started
        web, database = server_processes(server.pid, name)
        cpu = {
            "web": cpu_seconds(web) - cpu_before[0],
            "database": cpu_seconds(database) - cpu_before[1],
            **({"S3 server": cpu_seconds(store) - cpu_before[2]} if store else {}),
            "load generator": sum(seconds for _, seconds in reports),
        }
        results = [row for rows, _ in reports for row in rows]
    finally:
        server.terminate()
        server.wait(timeout=30)

    if args.mode == "images":
        ok = image_report(args, seeded, results, elapsed, cpu, spread)
    else:
        ok = annotate_report(args, env, seeded, results, elapsed, cpu, spread)
    if not args.keep:
        with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0 if ok else 1


def error_counts(results) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for kind, status, _, _ in results:
        if status not in (200, 201):
            statuses[f"{kind} {status}"] = statuses.get(f"{kind} {status}", 0) + 1
    return statuses


def latency_line(kind: str, times: list[float]) -> str:
    return (
        f"{kind:>6}: n={len(times):6d}  p50 {percentile(times, 0.5):6.1f} ms"
        f"  p95 {percentile(times, 0.95):6.1f} ms"
        f"  p99 {percentile(times, 0.99):6.1f} ms  max {percentile(times, 1):6.1f} ms"
    )


def cpu_line(cpu: dict[str, float], per: int, unit: str, elapsed: float) -> str:
    return (
        f"CPU per {unit}, of {os.cpu_count()} cores × {elapsed:.1f} s: "
        + ", ".join(f"{name} {1000 * seconds / max(per, 1):.2f} ms" for name, seconds in cpu.items())
        + f"; busy {100 * sum(cpu.values()) / (elapsed * os.cpu_count()):.0f}%"
    )


def image_report(args, seeded, results, elapsed, cpu, spread) -> bool:
    """Image fetches per second and their latency; PASS when every fetch answered 200 with
    the length of its URL's first fetch."""
    fetched = [
        (seconds, size) for kind, status, seconds, size in results if kind == "image" and status == 200
    ]
    statuses = error_counts(results)
    megabytes = sum(size for _, size in fetched) / 1e6
    print(
        f"image fetches: {args.annotators} annotators × {args.count} tasks × 2 images, "
        f"{args.storage} storage, {server_name(args)} {args.workers}×{args.threads}, "
        f"{args.clients} client processes, {elapsed:.1f} s, {args.image_size}² PNG of noise"
    )
    print(
        f"images served: {len(fetched)}  ({len(fetched) / elapsed:.0f} fetches/s, "
        f"{megabytes / elapsed:.1f} MB/s, {1000 * megabytes / max(len(fetched), 1):.0f} kB each)"
    )
    print(f"connections per server worker: {', '.join(map(str, spread))}")
    print(latency_line("image", [seconds for seconds, _ in fetched]))
    print(f"errors: {statuses or 'none'}")
    print(cpu_line(cpu, len(fetched), "image fetch", elapsed))
    ok = bool(fetched) and not statuses
    print(f"integrity: every fetch 200, one length per URL -> {'PASS' if ok else 'FAIL'}")
    return ok


def annotate_report(args, env, seeded, results, elapsed, cpu, spread) -> bool:
    """Judgments per second, the latency of next and submit, and the database checked."""
    integrity = json.loads(
        run([PYTHON, __file__, "--_check", str(seeded["study"])], env, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    created = sum(1 for kind, status, _, _ in results if kind == "submit" and status == 201)
    statuses = error_counts(results)
    print(
        f"annotators {args.annotators}, {server_name(args)} {args.workers}×{args.threads}, "
        f"{args.clients} client processes, {elapsed:.1f} s, "
        f"study of {seeded['tasks']} tasks × N={args.overlap}, exposure {args.exposure}"
        + (f", {args.revealed} images revealed to each annotator" if args.revealed else "")
    )
    print(f"judgments recorded: {created}  ({created / elapsed:.0f} judgments/s)")
    print(f"connections per server worker: {', '.join(map(str, spread))}")
    for kind in ("next", "submit"):
        print(
            latency_line(
                kind, [seconds for k, status, seconds, _ in results if k == kind and status in (200, 201)]
            )
        )
    print(f"errors: {statuses or 'none'}")
    print(cpu_line(cpu, created, "judgment (next + submit)", elapsed))
    counts_exact = not (
        integrity["counter_mismatch"]
        or integrity["open_count_mismatch"]
        or integrity["tally_mismatch"]
        or integrity["unmarked_full_leases"]
    )
    exposure_held = integrity["leased_unrecorded"] == 0 and integrity["leased_revealed"] == 0
    ok = (
        integrity["over_n"] == 0
        and integrity["duplicate_pairs"] == 0
        and counts_exact
        and exposure_held
        and integrity["judgments"] == created
    )
    print(
        f"integrity: {integrity['judgments']} judgments in the database, {created} acknowledged, "
        f"{integrity['over_n']} tasks over N, {integrity['duplicate_pairs']} duplicate (task, annotator), "
        f"{integrity['tasks_at_n']} tasks at N, kept counts {'exact' if counts_exact else 'WRONG'}, "
        f"{integrity['exposures']} images written as seen blind, {integrity['leased_revealed']} leased "
        f"after being revealed, {integrity['leased_unrecorded']} leased but not written "
        f"-> {'PASS' if ok else 'FAIL'}"
    )
    return ok


if __name__ == "__main__":
    sys.exit(main())
