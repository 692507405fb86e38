"""Time the full win-rate table export over a million judgments.

Builds, in a fresh PostgreSQL database, an A/B study of P prompts × 2 criteria
(default 100,000 prompts → 200,000 tasks) with N = 5 judgments each (1,000,000 in
all, sides random per task, votes random), then times ``ab_comparison`` (the
aggregation: one GROUP BY in the database, majority and statistics in pandas) and the
rendering to CSV, Markdown, LaTeX, JSON and PNG. Target: under 10 s on the 2-core
machine.

    .venv/bin/python bench/aggregate.py [--prompts 100000] [--keep]
"""

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


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
    t = {m: m._meta.db_table for m in (Prompt, GeneratedImage, Task, TaskImage, Judgment)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {t[Prompt]} (prompt_set_id, text, category, position) "
            "SELECT %s, 'prompt ' || g, '', g FROM generate_series(0, %s - 1) g",
            [prompt_set.pk, prompts],
        )
        cursor.execute(
            f"INSERT INTO {t[GeneratedImage]} (public_id, model_version_id, prompt_id, seed, index, settings,"
            " file, width, height, sha256, created_at) "
            "SELECT md5(m::text || p.id::text), m, p.id, 0, 0, '{}', 'images/none.png', 8, 8,"
            " md5(m::text || p.id::text) || md5(p.id::text || m::text), now() "
            f"FROM {t[Prompt]} p CROSS JOIN unnest(ARRAY[%s, %s]) m WHERE p.prompt_set_id = %s",
            [a.pk, b.pk, prompt_set.pk],
        )
        cursor.execute(
            f"INSERT INTO {t[Task]} (study_id, key, prompt_id, criterion, order_key, judgment_count,"
            " is_gold) "
            "SELECT %s, 'p' || p.position || '-' || c, p.id, c, (random() * 1e15)::bigint, %s, false "
            f"FROM {t[Prompt]} p CROSS JOIN unnest(ARRAY['flaws', 'appeal']) c WHERE p.prompt_set_id = %s",
            [study.pk, overlap, prompt_set.pk],
        )
        cursor.execute(
            f"INSERT INTO {t[TaskImage]} (task_id, image_id, position) "
            "SELECT task.id, img.id, CASE WHEN (img.model_version_id = %s) = task.a_left THEN 0 ELSE 1 END "
            f"FROM (SELECT id, prompt_id, random() < 0.5 AS a_left FROM {t[Task]} WHERE study_id = %s) task "
            f"JOIN {t[GeneratedImage]} img ON img.prompt_id = task.prompt_id",
            [a.pk, study.pk],
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
            [annotators, study.pk],
        )
        cursor.execute("ANALYZE")
    return study.pk


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=100_000, help="prompts; 2 tasks each (default 100000)")
    parser.add_argument("--overlap", type=int, default=5, help="judgments per task (default 5)")
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/evalhub_aggregate")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    import psycopg

    admin_url, name = args.database.rsplit("/", 1)
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    os.environ.update(
        DATABASE_URL=args.database, DEBUG="1", DJANGO_SETTINGS_MODULE="evalhub.settings", LOG_LEVEL="WARNING"
    )
    import django

    django.setup()
    from django.core.management import call_command

    from annotate.models import Judgment, Study
    from evalhub.results.winrate_formats import FORMATS, render_table
    from evalhub.results.winrates import ab_comparison

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    study = Study.objects.get(pk=build(args.prompts, args.overlap))
    judgments = Judgment.objects.filter(task__study=study).count()
    built = time.perf_counter() - started
    print(f"built {study.tasks.count()} tasks and {judgments} judgments in {built:.1f} s")

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

    if not args.keep:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
