"""Time the full win-rate table export, or the raw judgments export, over a million judgments.

Builds, in a fresh database, an A/B study of P prompts × 2 criteria with N = 5 judgments
per task (``--judgments 1000000``: 100,000 prompts → 200,000 tasks, sides random per
task, votes random), with SQL set operations. Then, by default, times ``ab_comparison``
(the aggregation: one GROUP BY in the database, majority and statistics in pandas) and
the rendering to CSV, Markdown, LaTeX, JSON and PNG. Target: under 10 s on the 2-core
machine.

``--export`` times the raw judgments instead, as CSV (streamed) and as Parquet (written to
a temporary file, then sent), through the views a researcher's download goes through:
time to the first byte and to the first row, total time, bytes, and the export's peak
memory (the process's RSS high-water above what it was before the export, each format in
a process of its own; ``--tracemalloc`` adds the peak of Python's allocations, from another
run, which misses Arrow's own buffers and slows the run).

``--database`` is PostgreSQL by default (the database is dropped and created again) or a
SQLite file (``sqlite:////tmp/aggregate.sqlite3``, deleted and created again).

    .venv/bin/python bench/aggregate.py [--judgments 1000000] [--keep]
    .venv/bin/python bench/aggregate.py --export --database sqlite:////tmp/aggregate.sqlite3
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESEARCHER = "aggregate-researcher"

# ---------------------------------------------------------------- the study


def build(prompts: int, overlap: int) -> int:
    """Fill the database with SQL set operations (not the ORM: this is set-up, not the bench)."""
    from django.contrib.auth.models import User
    from django.db import connection

    from annotate.models import Judgment, Study, StudyModel, Task, TaskImage
    from evalhub.accounts.roles import user_grant_role
    from evalhub.catalog.models import GeneratedImage, ModelVersion, Prompt, PromptSet

    prompt_set = PromptSet.objects.create(name="aggregate bench")
    a = ModelVersion.objects.create(name="bench-ours")
    b = ModelVersion.objects.create(name="bench-baseline")
    study = Study.objects.create(
        name="aggregate bench",
        kind="ab",
        prompt_set=prompt_set,
        overlap=overlap,
        config={"image_index": 0, "criteria": ["flaws", "appeal"]},
    )
    StudyModel.objects.create(study=study, model_version=a, role="A")
    StudyModel.objects.create(study=study, model_version=b, role="B")
    annotators = []
    for i in range(overlap):
        user = User.objects.create_user(f"aggregate{i}")
        user_grant_role(user=user, role="annotators")
        annotators.append(user.pk)
    user_grant_role(user=User.objects.create_user(RESEARCHER), role="researchers")
    t = {m: m._meta.db_table for m in (Prompt, GeneratedImage, Task, TaskImage, Judgment)}
    fill = _fill_postgresql if connection.vendor == "postgresql" else _fill_sqlite
    with connection.cursor() as cursor:
        fill(cursor, t, prompt_set.pk, study.pk, a.pk, b.pk, annotators, prompts)
        cursor.execute("ANALYZE")
    return study.pk


def _fill_postgresql(cursor, t, prompt_set, study, a, b, annotators, prompts) -> None:
    from annotate.models import Judgment, Task, TaskImage
    from evalhub.catalog.models import GeneratedImage, Prompt

    cursor.execute(
        f"INSERT INTO {t[Prompt]} (prompt_set_id, text, category, position) "
        "SELECT %s, 'prompt ' || g, '', g FROM generate_series(0, %s - 1) g",
        [prompt_set, prompts],
    )
    cursor.execute(
        f"INSERT INTO {t[GeneratedImage]} (public_id, model_version_id, prompt_id, seed, index, settings,"
        " file, width, height, sha256, created_at) "
        "SELECT md5(m::text || p.id::text), m, p.id, 0, 0, '{}', 'images/none.png', 8, 8,"
        " md5(m::text || p.id::text) || md5(p.id::text || m::text), now() "
        f"FROM {t[Prompt]} p CROSS JOIN unnest(ARRAY[%s, %s]) m WHERE p.prompt_set_id = %s",
        [a, b, prompt_set],
    )
    cursor.execute(
        f"INSERT INTO {t[Task]} (study_id, key, prompt_id, criterion, order_key, judgment_count,"
        " is_gold) "
        "SELECT %s, 'p' || p.position || '-' || c, p.id, c, (random() * 1e15)::bigint, %s, false "
        f"FROM {t[Prompt]} p CROSS JOIN unnest(ARRAY['flaws', 'appeal']) c WHERE p.prompt_set_id = %s",
        [study, len(annotators), prompt_set],
    )
    cursor.execute(
        f"INSERT INTO {t[TaskImage]} (task_id, image_id, position) "
        "SELECT task.id, img.id, CASE WHEN (img.model_version_id = %s) = task.a_left THEN 0 ELSE 1 END "
        f"FROM (SELECT id, prompt_id, random() < 0.5 AS a_left FROM {t[Task]} WHERE study_id = %s) task "
        f"JOIN {t[GeneratedImage]} img ON img.prompt_id = task.prompt_id",
        [a, study],
    )
    cursor.execute(
        f"INSERT INTO {t[Judgment]} (task_id, annotator_id, client_id, answer, left_model_id, fetched_at,"
        " answered_at, source) "
        "SELECT ti.task_id, u, gen_random_uuid(), jsonb_build_object('choice',"
        " (ARRAY['left','tie','right','reject'])[1 + floor(random() * 4)::int]),"
        " img.model_version_id, now(), now(), 'bench' "
        f"FROM {t[TaskImage]} ti JOIN {t[GeneratedImage]} img ON img.id = ti.image_id "
        f"JOIN {t[Task]} task ON task.id = ti.task_id CROSS JOIN unnest(%s::bigint[]) u "
        "WHERE ti.position = 0 AND task.study_id = %s",
        [annotators, study],
    )


def _fill_sqlite(cursor, t, prompt_set, study, a, b, annotators, prompts) -> None:
    """The same rows in SQLite's dialect; a task's sides follow the low bit of its random
    order key (a value stored once, not a random() SQLite may evaluate again per join row)."""
    from django.db import connection
    from django.utils import timezone

    from annotate.models import Judgment, Task, TaskImage
    from evalhub.catalog.models import GeneratedImage, Prompt

    now = connection.ops.adapt_datetimefield_value(timezone.now())
    cursor.execute(
        "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < %s) "
        f"INSERT INTO {t[Prompt]} (prompt_set_id, text, category, position) "
        "SELECT %s, 'prompt ' || n, '', n FROM g",
        [prompts, prompt_set],
    )
    cursor.execute(
        f'INSERT INTO {t[GeneratedImage]} (public_id, model_version_id, prompt_id, seed, "index", settings,'
        " file, width, height, sha256, created_at) "
        "SELECT lower(hex(randomblob(16))), m.id, p.id, 0, 0, '{}', 'images/none.png', 8, 8,"
        " lower(hex(randomblob(32))), %s "
        f"FROM {t[Prompt]} p CROSS JOIN (SELECT %s AS id UNION ALL SELECT %s) m WHERE p.prompt_set_id = %s",
        [now, a, b, prompt_set],
    )
    cursor.execute(
        f"INSERT INTO {t[Task]} (study_id, key, prompt_id, criterion, order_key, judgment_count,"
        " is_gold) "
        "SELECT %s, 'p' || p.position || '-' || c.c, p.id, c.c, random() & 1125899906842623, %s, 0 "
        f"FROM {t[Prompt]} p CROSS JOIN (SELECT 'flaws' AS c UNION ALL SELECT 'appeal') c "
        "WHERE p.prompt_set_id = %s",
        [study, len(annotators), prompt_set],
    )
    cursor.execute(
        f"INSERT INTO {t[TaskImage]} (task_id, image_id, position) "
        "SELECT task.id, img.id,"
        " CASE WHEN (img.model_version_id = %s) = (task.order_key & 1) THEN 0 ELSE 1 END "
        f"FROM {t[Task]} task JOIN {t[GeneratedImage]} img ON img.prompt_id = task.prompt_id "
        "WHERE task.study_id = %s",
        [a, study],
    )
    cursor.execute(
        f"INSERT INTO {t[Judgment]} (task_id, annotator_id, client_id, answer, left_model_id, fetched_at,"
        " answered_at, source) "
        "SELECT ti.task_id, u.id, lower(hex(randomblob(16))), json_object('choice',"
        " CASE random() & 3 WHEN 0 THEN 'left' WHEN 1 THEN 'tie' WHEN 2 THEN 'right' ELSE 'reject' END),"
        " img.model_version_id, %s, %s, 'bench' "
        f"FROM {t[TaskImage]} ti JOIN {t[GeneratedImage]} img ON img.id = ti.image_id "
        f"JOIN {t[Task]} task ON task.id = ti.task_id "
        f"CROSS JOIN (SELECT id FROM auth_user WHERE id IN ({', '.join(['%s'] * len(annotators))})) u "
        "WHERE ti.position = 0 AND task.study_id = %s",
        [now, now, *annotators, study],
    )


# ---------------------------------------------------------------- the win-rate table


def time_winrates(study) -> None:
    """Aggregate the study and render the table in every format; print the times."""
    from evalhub.results.winrate_formats import FORMATS, render_table
    from evalhub.results.winrates import ab_comparison

    started = time.perf_counter()
    comparison = ab_comparison(study)
    aggregated = time.perf_counter() - started
    sizes = {fmt: len(render_table([comparison], fmt)) for fmt in FORMATS}
    total = time.perf_counter() - started
    print(f"aggregation (majority of every task, shares, intervals, sign test): {aggregated:.2f} s")
    print(
        f"full table export (aggregation + {', '.join(FORMATS)}): {total:.2f} s  "
        f"({'under' if total < 10 else 'OVER'} the 10 s target)"
    )
    for r in comparison.criteria:
        print(
            f"  {r.criterion}: A {r.a_wins.count}  tie {r.tie.count}  B {r.b_wins.count}  "
            f"rejects {r.rejects}  decided {r.decided}"
        )
    print("bytes per format:", sizes)


# ---------------------------------------------------------------- the raw judgments export


def measure_export(study_id: int, fmt: str, trace: bool) -> dict:
    """Download the study's judgments in ``fmt`` through its view, as a researcher's
    browser would, reading every chunk; the figures of that one download."""
    import gc
    import resource
    import tracemalloc

    from django.contrib.auth.models import User
    from django.test import RequestFactory

    from evalhub.results import views

    view = {"csv": views.judgments, "parquet": views.judgments_parquet}[fmt]
    request = RequestFactory().get(f"/results/studies/{study_id}/judgments.{fmt}")
    request.user = User.objects.get(username=RESEARCHER)
    request.user.has_perm("annotate.view_judgment")  # permissions cached before the clock starts
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    response = view(request, pk=study_id)
    times, size = [], 0
    for chunk in response.streaming_content:
        if len(times) < 2:
            times.append(time.perf_counter() - started)
        size += len(chunk)
    response.close()
    total = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "first_byte": times[0],
        "first_row": times[1] if fmt == "csv" else times[0],  # CSV: the header goes first
        "total": total,
        "bytes": size,
        "rss_growth_kb": rss_after - rss_before,
        "rss_kb": rss_after,
        "traced_peak": tracemalloc.get_traced_memory()[1] if trace else None,
    }


def export_in_a_process(args, study_id: int, fmt: str, trace: bool = False) -> dict:
    """``measure_export`` in a fresh process, so its memory high-water is the export's."""
    command = [sys.executable, __file__, "--measure", fmt, "--study", str(study_id)]
    command += ["--database", args.database] + (["--tracemalloc"] if trace else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ)
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_exports(args, study_id: int, judgments: int) -> None:
    """Each format in a process of its own; print a table of the figures."""
    mb = 1024 * 1024
    print(f"raw judgments export of {judgments:,} judgments ({args.database.split(':')[0]}):")
    print("format   first byte  first row      total        MB  RSS +MB (high-water)  traced peak MB")
    for fmt in ("csv", "parquet"):
        m = export_in_a_process(args, study_id, fmt)
        traced = (
            export_in_a_process(args, study_id, fmt, trace=True)["traced_peak"] if args.tracemalloc else None
        )
        print(
            f"{fmt:8} {m['first_byte']:9.3f} s {m['first_row']:8.2f} s {m['total']:8.2f} s "
            f"{m['bytes'] / mb:9.1f}  {m['rss_growth_kb'] / 1024:7.1f} ({m['rss_kb'] / 1024:6.1f})"
            f"        {'—' if traced is None else f'{traced / mb:.1f}'}"
        )


# ---------------------------------------------------------------- main


def database_fresh(url: str) -> None:
    """Drop and create the bench's database (a SQLite file: delete it)."""
    database_drop(url, create=True)


def database_drop(url: str, *, create: bool = False) -> None:
    """Drop the bench's database (a SQLite file: delete it); with ``create``, make it anew.
    Django's connections to it are closed first."""
    from django.conf import settings

    if settings.configured:
        from django.db import connections

        connections.close_all()
    if url.startswith("sqlite:"):
        Path(url.removeprefix("sqlite://")).unlink(missing_ok=True)
        return
    import psycopg

    admin_url, name = url.rsplit("/", 1)
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def django_setup(database: str) -> None:
    os.environ.update(
        DATABASE_URL=database, DEBUG="1", DJANGO_SETTINGS_MODULE="evalhub.settings", LOG_LEVEL="WARNING"
    )
    import django

    django.setup()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--judgments", type=int, default=1_000_000, help="judgments in all: prompts × 2 criteria × overlap"
    )
    parser.add_argument("--overlap", type=int, default=5, help="judgments per task (default 5)")
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/evalhub_aggregate")
    parser.add_argument("--export", action="store_true", help="time the raw judgments export (CSV, Parquet)")
    parser.add_argument("--tracemalloc", action="store_true", help="with --export: also trace Python's peak")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--measure", choices=["csv", "parquet"], help=argparse.SUPPRESS
    )  # one export's process
    parser.add_argument("--study", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        django_setup(args.database)
        print(json.dumps(measure_export(args.study, args.measure, args.tracemalloc)))
        return 0

    database_fresh(args.database)
    django_setup(args.database)
    from django.core.management import call_command

    from annotate.models import Judgment, Study

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    prompts = -(-args.judgments // (2 * args.overlap))
    study = Study.objects.get(pk=build(prompts, args.overlap))
    judgments = Judgment.objects.filter(task__study=study).count()
    built = time.perf_counter() - started
    print(f"built {study.tasks.count()} tasks and {judgments} judgments in {built:.1f} s")
    if args.export:
        time_exports(args, study.pk, judgments)
    else:
        time_winrates(study)
    if not args.keep:
        database_drop(args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
