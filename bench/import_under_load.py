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
"""

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
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
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="evalhub-import-bench-"))
    env = configure(var_dir)
    import django

    django.setup()
    from django.core.management import call_command

    print(f"set-up in {var_dir}: migrating, seeding {args.prompts} prompts, writing {args.images} images…")
    call_command("migrate", verbosity=0)
    study_id, users = seed(args.prompts, args.annotators, args.overlap)
    manifest = write_import(var_dir / "import", args.images, args.size, args.prompts)

    calls: list = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=annotator_loop, args=(study_id, user, stop, args.pause, calls, i))
        for i, user in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    time.sleep(args.quiet)
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


if __name__ == "__main__":
    sys.exit(main())
