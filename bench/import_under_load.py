"""Annotators' latency on SQLite while an image import runs.

What it measures: K annotator threads (default 8) each looping "next" then "submit" through
the real services (``assignments_next``, ``judgment_submit``), each thread on its own
database connection, with a short pause between calls, on a new SQLite database (the
default configuration: rollback journal, IMMEDIATE transactions, 30 s busy timeout). After
a quiet phase, ``manage.py import_images`` imports M images (default 200 PNGs of
512×512 noise) in a separate process, as a web worker or a generation job would. It prints
the annotators' p50/p99/max latency of each call and the errors, in the quiet phase and
while the import runs, and how long the import took.

    .venv/bin/python bench/import_under_load.py
    .venv/bin/python bench/import_under_load.py --images 50 --size 1024 --annotators 16
    .venv/bin/python bench/import_under_load.py --control 10   # a CPU burner, no import

``--control SECONDS`` runs a process that only burns one core (zlib, no database) in the
import's place: what the annotators see then is CPU contention, not waiting for a lock.

Target: no annotator call waits more than about a second behind an import (the import
writes its rows in one short transaction after decoding, re-encoding and storing the
files outside it).

``--ui-job`` imports through the researcher UI's background path instead, as a deployment
runs it: a web server (gunicorn, 2 processes) and a Celery worker on the ``cpu`` queue, each
its own process on the same SQLite file. A ZIP of the images and their manifest is
streamed from disk to the import page over HTTP (above ``EVALHUB_IMPORT_INLINE_MAX_BYTES``,
so it is stored and queued as an import job); the worker imports it a chunk of rows at a
time while the annotator threads keep labeling and a poller reads the job's API and its
page every half second (their latency, and the progress they show). It prints the
annotators' figures quiet vs during the import, the upload's and the job's durations, the
pages' latency and the sampled progress.

    .venv/bin/python bench/import_under_load.py --ui-job --images 2000 --size 256
"""

import argparse
import http.client
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# The control: one core busy compressing for argv[1] seconds, touching no database.
BURNER = """
import os, sys, time, zlib
data, until = os.urandom(1 << 20), time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < until:
    zlib.compress(data)
print("burnt")
"""


def configure(var_dir: Path) -> dict:
    """The environment of this process and of the import: a fresh SQLite database."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-" + "k3y" * 20,
        "ALLOWED_HOSTS": "127.0.0.1",
        "EVALHUB_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "evalhub.settings",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return env


def seed(prompts: int, annotators: int, overlap: int) -> tuple[int, list]:
    """A prompt set, two models' tiny images, an A/B study and its annotators."""
    from PIL import Image

    from annotate.services import study_create
    from evalhub.catalog.image_import import generated_images_import
    from evalhub.catalog.models import ModelVersion
    from evalhub.catalog.prompt_import import PromptRow, prompt_set_import
    from tests.factories import UserFactory

    prompt_set = prompt_set_import(
        name="bench", rows=[PromptRow(line=i + 1, text=f"bench prompt {i}") for i in range(prompts)]
    )

    class MemorySource:
        files: dict[str, bytes] = {}

        def read(self, path):
            return self.files[path]

    source, manifest, counter = MemorySource(), [], 0
    for model in ("bench-a", "bench-b"):
        for i in range(prompts):
            counter += 1
            buffer = io.BytesIO()
            colour = (counter // 65536, counter // 256 % 256, counter % 256)
            Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
            source.files[f"{model}/{i}.png"] = buffer.getvalue()
            row = {"prompt": f"bench prompt {i}", "model": model, "seed": i, "index": 0}
            manifest.append(json.dumps(row | {"image": f"{model}/{i}.png"}))
    generated_images_import(
        prompt_set=prompt_set, manifest="\n".join(manifest), source=source, create_models=True
    )
    models = list(ModelVersion.objects.filter(name__in=["bench-a", "bench-b"]).order_by("name"))
    study = study_create(
        name="bench", kind="ab", prompt_set=prompt_set, model_versions=models, overlap=overlap
    )
    users = [UserFactory(username=f"bench{i}", role="annotators") for i in range(annotators)]
    return study.pk, users


def write_import(folder: Path, images: int, size: int, prompts: int) -> Path:
    """``images`` noise PNGs of a third model and their manifest, spread over the prompts."""
    from PIL import Image

    folder.mkdir()
    rows = []
    for i in range(images):
        noise = Image.frombytes("RGB", (size, size), random.Random(i).randbytes(size * size * 3))
        noise.save(folder / f"{i}.png", compress_level=1)
        rows.append(
            {
                "prompt": f"bench prompt {i % prompts}",
                "model": "bench-import",
                "seed": i,
                "index": i // prompts,
                "image": f"{i}.png",
            }
        )
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return manifest


def annotator_loop(study_id, user, stop, pause, calls, seed_value):
    """Next + submit until ``stop``; every call's start, duration and outcome is kept."""
    from django.db import connections

    from annotate.assignment import assignments_next
    from annotate.submission import judgment_submit

    rng = random.Random(seed_value)

    def timed(kind, function, **kwargs):
        started = time.perf_counter()
        try:
            result, error = function(**kwargs), None
        except Exception as exc:  # counted and shown, not lost in the thread
            result, error = None, f"{type(exc).__name__}: {str(exc)[:60]}"
        calls.append((kind, started, time.perf_counter() - started, error))
        return result

    try:
        while not stop.is_set():
            assignments = timed("next", assignments_next, study_id=study_id, annotator=user, count=1)
            if assignments is not None and assignments.leases:
                time.sleep(pause)
                timed(
                    "submit",
                    judgment_submit,
                    token=assignments.leases[0].token,
                    annotator=user,
                    client_id=uuid.uuid4(),
                    answer={"choice": rng.choice(["left", "tie", "right", "reject"])},
                )
            elif assignments is not None:
                break  # nothing left for this annotator
            time.sleep(pause)
    finally:
        connections.close_all()


def annotators_start(study_id, users, stop, args, calls) -> list[threading.Thread]:
    """One labeling thread per annotator, started; returns after the quiet phase."""
    threads = [
        threading.Thread(target=annotator_loop, args=(study_id, user, stop, args.pause, calls, i))
        for i, user in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    time.sleep(args.quiet)
    return threads


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000 if ordered else float("nan")
    )


def report(title: str, calls: list) -> None:
    print(f"{title}:")
    for kind in ("next", "submit"):
        times = [seconds for k, _, seconds, error in calls if k == kind and error is None]
        print(
            f"  {kind:>6}: n={len(times):5d}  p50 {percentile(times, 0.5):7.1f} ms"
            f"  p99 {percentile(times, 0.99):7.1f} ms  max {percentile(times, 1):7.1f} ms"
        )
    failures: dict[str, int] = {}
    for kind, _, _, error in calls:
        if error is not None:
            failures[f"{kind} {error}"] = failures.get(f"{kind} {error}", 0) + 1
    print(f"  errors: {failures or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--annotators", type=int, default=8, help="annotator threads (default 8)")
    parser.add_argument("--images", type=int, default=200, help="images the import holds (default 200)")
    parser.add_argument(
        "--size", type=int, default=512, help="their width and height in pixels (default 512)"
    )
    parser.add_argument("--prompts", type=int, default=2000, help="prompts of the study (default 2000)")
    parser.add_argument("--overlap", type=int, default=5, help="annotators per task (default 5)")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between an annotator's calls")
    parser.add_argument("--quiet", type=float, default=3.0, help="seconds of load before the import")
    parser.add_argument(
        "--control", type=float, metavar="SECONDS", help="burn one core this long instead of importing"
    )
    parser.add_argument(
        "--ui-job",
        action="store_true",
        help="import through the import page's background job (web server + cpu worker), not the CLI",
    )
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="evalhub-import-bench-"))
    env = configure(var_dir)
    import django

    django.setup()
    from django.core.management import call_command

    print(f"set-up in {var_dir}: migrating, seeding {args.prompts} prompts, writing {args.images} images…")
    call_command("migrate", verbosity=0)
    study_id, users = seed(args.prompts, args.annotators, args.overlap)
    if args.ui_job:
        return ui_job_bench(args, env, var_dir, study_id, users)
    manifest = write_import(var_dir / "import", args.images, args.size, args.prompts)

    calls: list = []
    stop = threading.Event()
    threads = annotators_start(study_id, users, stop, args, calls)
    import_started = time.perf_counter()
    command = [
        sys.executable,
        "manage.py",
        "import_images",
        str(manifest),
        "--prompt-set",
        "bench",
        "--create-models",
    ]
    if args.control:
        command = [sys.executable, "-c", BURNER, str(args.control)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    import_ended = time.perf_counter()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()

    what = "CPU burner (control)" if args.control else f"import of {args.images} {args.size}×{args.size} PNGs"
    print(
        f"{args.annotators} annotators (pause {args.pause * 1000:.0f} ms), {what}: "
        f"{import_ended - import_started:.1f} s, exit {done.returncode}"
    )
    print(f"  import says: {(done.stdout or done.stderr).strip().splitlines()[-1:]}")
    report("quiet (before the import)", [c for c in calls if c[1] < import_started])
    report(
        "during the import (calls started or ended while it ran)",
        [c for c in calls if c[1] + c[2] >= import_started and c[1] <= import_ended],
    )
    return 0 if done.returncode == 0 else 1


# ---------------------------------------------------------------- --ui-job: the background path

INLINE_MAX_BYTES = 1024 * 1024  # the web process's EVALHUB_IMPORT_INLINE_MAX_BYTES here
BOUNDARY = "evalhub-bench-" + uuid.uuid4().hex


def write_import_zip(path: Path, images: int, size: int, prompts: int) -> int:
    """``write_import``'s images and manifest, straight into a ZIP (stored: PNGs do not
    compress); its size in bytes."""
    from PIL import Image

    rows = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(images):
            png = io.BytesIO()
            noise = Image.frombytes("RGB", (size, size), random.Random(i).randbytes(size * size * 3))
            noise.save(png, "PNG", compress_level=1)
            archive.writestr(f"images/{i}.png", png.getvalue())
            prompt, index = f"bench prompt {i % prompts}", i // prompts
            rows.append({"prompt": prompt, "model": "bench-import", "seed": i, "index": index})
            rows[-1]["image"] = f"images/{i}.png"
        archive.writestr("manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    return path.stat().st_size


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def web_server(env: dict, port: int, log: Path):
    """gunicorn with 2 sync processes on ``port`` until the block ends, once /healthz answers."""
    command = [
        sys.executable, "-m", "gunicorn", "evalhub.wsgi:application", "-b", f"127.0.0.1:{port}",
        "-w", "2", "--timeout", "900",
    ]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if request("GET", port, "/healthz", {})[0] == 200:
                        break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the web server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield
        finally:
            server.terminate()
            server.wait(timeout=30)


def request(method: str, port: int, path: str, cookies: dict, body=None, headers=None):
    """One HTTP request to the bench's server: (status, headers, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    try:
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        connection.request(method, path, body=body, headers={"Cookie": cookie, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def researcher_cookies(port: int) -> dict:
    """A signed-in researcher's session cookie (a session row, as a login writes it) and the
    CSRF cookie the import page hands out, with that page's form token."""
    from django.conf import settings
    from django.test import Client

    from tests.factories import UserFactory

    browser = Client()
    browser.force_login(UserFactory(username="bench-researcher", role="researchers"))
    cookies = {settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value}
    status, headers, page = request("GET", port, "/catalog/images/import/", cookies)
    assert status == 200, (status, page[:500])
    csrf = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", "")).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    return cookies | {"csrftoken": csrf, "_form_token": token}


def multipart_upload(fields: dict[str, str], archive: Path):
    """The import form's body, streamed: (its length, an iterator of byte chunks) — the
    archive is read from disk a MiB at a time, never whole."""
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="archive"; filename="{archive.name}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def chunks():
        yield head
        with archive.open("rb") as handle:
            while block := handle.read(1024 * 1024):
                yield block
        yield tail

    return len(head) + archive.stat().st_size + len(tail), chunks()


def job_poller(port: int, cookies: dict, job_path: str, stop, samples: list, pages: list) -> None:
    """Every half second: the job's API (progress, state) and its HTML page, timed."""
    job_id = job_path.strip("/").split("/")[-1]
    while not stop.is_set():
        started = time.perf_counter()
        status, _, body = request("GET", port, f"/api/jobs/{job_id}/", cookies)
        pages.append(("api", time.perf_counter() - started, status))
        job = json.loads(body) if status == 200 else {}
        samples.append(
            (time.perf_counter(), job.get("state"), job.get("progress_step"), job.get("progress_total"))
        )
        started = time.perf_counter()
        status, _, _ = request("GET", port, job_path, cookies)
        pages.append(("page", time.perf_counter() - started, status))
        if job.get("state") in ("succeeded", "failed", "cancelled"):
            return
        time.sleep(0.5)


def ui_job_bench(args, env: dict, var_dir: Path, study_id: int, users: list) -> int:
    """The ``--ui-job`` run: see the module's docstring."""
    from django.core.management import call_command

    from tests.workers import celery_worker

    call_command("collectstatic", interactive=False, verbosity=0)
    archive = var_dir / "study-images.zip"
    size = write_import_zip(archive, args.images, args.size, args.prompts)
    print(f"archive: {args.images} {args.size}×{args.size} noise PNGs, {size / 1e6:.0f} MB")
    env = env | {
        "EVALHUB_IMPORT_INLINE_MAX_BYTES": str(INLINE_MAX_BYTES),
        "EVALHUB_JOB_HEARTBEAT_SECONDS": "1",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
    }
    port = free_port()
    calls, samples, pages = [], [], []
    stop = threading.Event()
    with (
        web_server(env, port, var_dir / "web.log"),
        celery_worker(env, var_dir / "worker.log", queues="cpu", name="cpu@%h", concurrency=1),
    ):
        cookies = researcher_cookies(port)
        token = cookies.pop("_form_token")
        while "ready." not in (var_dir / "worker.log").read_text():
            time.sleep(0.2)
        threads = annotators_start(study_id, users, stop, args, calls)

        from evalhub.catalog.models import PromptSet

        fields = {
            "csrfmiddlewaretoken": token,
            "prompt_set": str(PromptSet.objects.get(name="bench").pk),
            "create_models": "on",
        }
        length, body = multipart_upload(fields, archive)
        import_started = time.perf_counter()
        form_headers = {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(length),
        }
        status, headers, page = request("POST", port, "/catalog/images/import/", cookies, body, form_headers)
        uploaded = time.perf_counter()
        job_path = headers.get("Location", "")
        if status != 302 or not job_path.startswith("/jobs/"):
            stop.set()
            print(f"upload refused: {status} {page[-1500:]!r}")
            return 1
        job_poller(port, cookies, job_path, threading.Event(), samples, pages)
        import_ended = time.perf_counter()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()

    from evalhub.jobs.models import Job

    job = Job.objects.get(pk=int(job_path.strip("/").split("/")[-1]))
    ran = (
        (job.finished_at - job.started_at).total_seconds()
        if job.finished_at and job.started_at
        else float("nan")
    )
    print(
        f"{args.annotators} annotators (pause {args.pause * 1000:.0f} ms); import of {args.images} "
        f"{args.size}×{args.size} PNGs through the import page as job #{job.pk}: {job.state}"
    )
    print(f"  upload request (stored, job queued): {uploaded - import_started:.1f} s, answered {status}")
    print(
        f"  job ran {ran:.1f} s on the worker; upload to the job's end {import_ended - import_started:.1f} s"
    )
    print(f"  job says: {job.result.get('summary') or job.error}")
    progress = [(round(t - import_started, 1), step, total) for t, state, step, total in samples if state]
    moving = sorted({step for _, step, _ in progress if step is not None})
    print(f"  progress seen ({len(progress)} samples, distinct steps {moving}):")
    print(
        "   ",
        ", ".join(f"{t}s {step}/{total}" for t, step, total in progress[:: max(1, len(progress) // 12)]),
    )
    for kind in ("api", "page"):
        times = [seconds for k, seconds, code in pages if k == kind and code == 200]
        print(
            f"  job {kind} while importing: n={len(times)}  p50 {percentile(times, 0.5):.1f} ms"
            f"  max {percentile(times, 1):.1f} ms"
        )
    report("quiet (before the upload)", [c for c in calls if c[1] < import_started])
    report(
        "during the import (upload and job; calls started or ended while it ran)",
        [c for c in calls if c[1] + c[2] >= import_started and c[1] <= import_ended],
    )
    return 0 if job.state == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
