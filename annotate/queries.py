"""The annotation hot path's SQL, in one place.

Every annotator request makes a handful of small indexed statements; building each one
through the ORM costs several times what the database spends on it, so they are written
out here and run by ``evalhub.sql`` (as prepared statements on PostgreSQL, through
Django's cursor wrappers). The modules that own the rules run them: handing out tasks
(``annotate.assignment``), recording judgments (``annotate.submission``), the annotator's
payloads (``annotate.selectors``) and exposure control (``annotate.exposure``).

Table names and state literals come from the models, and each condition the statements
share is written once below (``live_lease``, ``expired_lease``, ``closed_lease``). The
same SQL runs on PostgreSQL and SQLite; where they differ (row locks, fresh counts),
``lease_sql`` builds the statement per database. The PL/pgSQL functions of migrations
0003 and 0007 are frozen copies of these rules, as migrations are.
"""

from functools import cache

from annotate.models import (
    AnnotatorTally,
    CrowdParticipant,
    Enrollment,
    ImageExposure,
    Judgment,
    Lease,
    Study,
    Task,
    TaskImage,
)
from evalhub.catalog.models import AlignmentQuestion, GeneratedImage, Prompt

STUDY = Study._meta.db_table
TASK = Task._meta.db_table
TASK_IMAGE = TaskImage._meta.db_table
LEASE = Lease._meta.db_table
JUDGMENT = Judgment._meta.db_table
TALLY = AnnotatorTally._meta.db_table
ENROLLMENT = Enrollment._meta.db_table
CROWD = CrowdParticipant._meta.db_table
EXPOSURE = ImageExposure._meta.db_table
IMAGE = GeneratedImage._meta.db_table
PROMPT = Prompt._meta.db_table
QUESTION = AlignmentQuestion._meta.db_table
RESAMPLED = TaskImage._meta.get_field("resampled").related_model._meta.db_table

ACTIVE, DONE = (f"'{state.value}'" for state in (Lease.State.ACTIVE, Lease.State.DONE))
OPEN_ACCESS = f"'{Study.Access.OPEN.value}'"
ENROLLED = f"'{Enrollment.Status.ENROLLED.value}'"


def live_lease(alias: str) -> str:
    """A lease that holds one of its task's N slots at ``%(now)s``."""
    return f"{alias}.state = {ACTIVE} AND {alias}.expires_at > %(now)s"


def expired_lease(alias: str) -> str:
    """An active lease past its expiry: its slot is free, and its holder may renew it."""
    return f"{alias}.state = {ACTIVE} AND {alias}.expires_at <= %(now)s"


def closed_lease(alias: str) -> str:
    """A lease its annotator answered or skipped."""
    return f"{alias}.state <> {ACTIVE}"


def live_leases_besides_me(task: str) -> str:
    """The live leases on ``task`` held by others than the caller."""
    return f"""(
    SELECT COUNT(*) FROM {LEASE} o
    WHERE o.task_id = {task} AND {live_lease("o")} AND o.annotator_id <> %(me)s)"""


# ---------------------------------------------------------------- progress and held leases

# Tasks this annotator answered (their tally), open tasks (the study's count), and the open
# ones this annotator answered or skipped (remaining = open - closed). Each is read by key
# or, for the last, through the annotator's leases on tasks not yet full (a partial index):
# nothing here reads the study's tasks or the annotator's answers on full tasks. The task
# is still checked open, so a lease the flag has not caught up with is not counted.
DONE_COLUMN = f"""
  COALESCE((SELECT a.judgments FROM {TALLY} a
            WHERE a.study_id = s.id AND a.annotator_id = %(me)s), 0)"""
OPEN_COLUMNS = f"""
  s.open_tasks,
  (SELECT COUNT(*) FROM {LEASE} l
   WHERE l.annotator_id = %(me)s AND NOT l.task_filled AND {closed_lease("l")}
     AND (SELECT t.study_id = s.id AND t.judgment_count < s.overlap
          FROM {TASK} t WHERE t.id = l.task_id))"""
PROGRESS_COLUMNS = f"{DONE_COLUMN},{OPEN_COLUMNS}"
PROGRESS_SQL = f"SELECT {PROGRESS_COLUMNS} FROM {STUDY} s WHERE s.id = %(study)s"

# The study's state, the annotator's progress and the leases they hold, in one read. A full
# task has no room for an answer, so "NOT task_filled" leaves out no lease that could
# still be answered (a submission fills a task only once no other lease is live on it; an
# import may fill a held one): it lets the read use the partial index.
# Whether the annotator was excluded from the study (annotate.workforce): read by key.
EXCLUDED_COLUMN = f"""
  COALESCE((SELECT a.excluded_at IS NOT NULL FROM {TALLY} a
            WHERE a.study_id = s.id AND a.annotator_id = %(me)s), FALSE)"""
# Whether the annotator may work on the study (annotate.enrollment): it is open to every
# annotator but crowd participants (annotate.crowd: they work on the studies they arrived
# at), or they are enrolled in it; read by key (the enrollment's and the crowd
# participant's unique indexes).
ALLOWED_COLUMN = f"""
  ((s.access = {OPEN_ACCESS} AND NOT EXISTS (SELECT 1 FROM {CROWD} c WHERE c.user_id = %(me)s))
   OR COALESCE((SELECT e.status = {ENROLLED} FROM {ENROLLMENT} e
            WHERE e.study_id = s.id AND e.annotator_id = %(me)s), FALSE))"""
# When a crowd participant arrived at the study (annotate.crowd): NULL for everyone else,
# who have no quota; read by key, like the enrollment above.
CROWD_STARTED_COLUMN = f"""
  (SELECT e.started_at FROM {ENROLLMENT} e WHERE e.study_id = s.id AND e.annotator_id = %(me)s)"""
# The study's config (the quiz and the gold rate are settings of its "quality" group) and the
# annotator's gold answers, right ones, quiz result and answers, from their tally row by key
# (annotate.assignment decides from them whether to serve a gold item).
GOLD_COLUMNS = """s.config, COALESCE(g.gold_answered, 0), COALESCE(g.gold_correct, 0),
  COALESCE(g.quiz_state, ''), COALESCE(g.judgments, 0)"""
_STUDY = f"""
SELECT s.status, s.kind, s.exposure, s.overlap, s.lease_seconds, {EXCLUDED_COLUMN}, {ALLOWED_COLUMN},
  {CROWD_STARTED_COLUMN},
  {GOLD_COLUMNS},
  {{progress}},
  h.id, h.token, h.task_id, h.state, h.shown_at, h.expires_at
FROM {STUDY} s
LEFT JOIN {TALLY} g ON g.study_id = s.id AND g.annotator_id = %(me)s
LEFT JOIN (
  SELECT l.id, l.token, l.task_id, l.state, l.shown_at, l.expires_at
  FROM {LEASE} l JOIN {TASK} t ON t.id = l.task_id
  WHERE l.annotator_id = %(me)s AND NOT l.task_filled AND {live_lease("l")} AND t.study_id = %(study)s
  ORDER BY l.shown_at, l.id
  LIMIT %(limit)s
) h ON TRUE
WHERE s.id = %(study)s
ORDER BY h.shown_at, h.id
"""
STUDY_SQL = _STUDY.format(progress=PROGRESS_COLUMNS)
STUDY_SQL_NO_PROGRESS = _STUDY.format(progress="NULL, NULL, NULL")


# ---------------------------------------------------------------- exposure (annotate.exposure)

# A task is barred for the annotator when one of its images was shown to them in the
# conflicting context: read with the calling statement's snapshot (enough to pass over
# tasks while picking; the lease statement checks again afresh).
BARRED_SQL = f"""EXISTS (
    SELECT 1 FROM {TASK_IMAGE} x JOIN {EXPOSURE} e ON e.image_id = x.image_id
    WHERE x.task_id = {{task}} AND e.annotator_id = %(me)s AND e.context = %(conflicts)s)"""
# PostgreSQL: the same check by annotate_exposed() (migration 0007), a VOLATILE function
# that first takes the annotator's advisory lock until the transaction ends, then reads
# with a snapshot of its own, so it sees the exposures of any lease of theirs that
# committed meanwhile, and makes a concurrent lease of theirs wait for this one.
BARRED_FRESH_SQL = "annotate_exposed({task}, %(me)s, %(conflicts)s)"
# The images of a leased task, written for its annotator (a renewed lease finds them).
RECORD_SQL = f"""
INSERT INTO {EXPOSURE} (annotator_id, image_id, context)
SELECT %(me)s, x.image_id, %(records)s FROM {TASK_IMAGE} x
WHERE x.task_id {{task}}
ON CONFLICT DO NOTHING"""
# SQLite: the leased task's images, written in the lease's transaction.
RECORD_TASK_SQL = RECORD_SQL.format(task="= %(task)s")


# ---------------------------------------------------------------- leasing (annotate.assignment)

# The next task for an annotator: one that still has room by this statement's view, that
# they have not answered, skipped or already hold (an expired lease of theirs may be
# renewed) and that exposure control does not bar them from, the most answered first
# (breadth first), then by the random key. Walks the queue index, so it costs the tasks
# passed over, not the size of the study. The tasks to pass over are read first, once,
# from the annotator's leases on tasks not yet full (the partial index: a lease on an open
# task is never marked full), and tested per task before anything else: while fewer than
# N annotators are at work, those are all the open tasks the annotator answered, at the
# head of the queue.
PICK_SQL = f"""
SELECT t.id, t.judgment_count FROM {TASK} t
WHERE t.study_id = %(study)s AND t.judgment_count < %(n)s
  AND t.id NOT IN (
    SELECT m.task_id FROM {LEASE} m
    WHERE m.annotator_id = %(me)s AND NOT m.task_filled
      AND NOT ({expired_lease("m")})){{barred}}
  AND t.judgment_count + (
    SELECT COUNT(*) FROM {LEASE} o WHERE o.task_id = t.id AND {live_lease("o")}) < %(n)s
ORDER BY t.judgment_count DESC, t.order_key
LIMIT 1"""

# Pick, lock and lease in one statement. The lease is written only if the picked task
# still has room counted afresh, and (PostgreSQL) exposure control still lets the
# annotator take it: the pick's view may predate a lease committed just before the row
# lock was granted, so both are checked again by VOLATILE functions whose queries see
# everything committed (migrations 0003 and 0007). SQLite runs the statement under its
# write lock, so the pick's own view is current. An expired lease of the annotator's own
# is renewed in place (same token). The task's images are written as seen, in the same
# statement on PostgreSQL and in the same transaction on SQLite (RECORD_TASK_SQL).
LEASED_COLUMNS = "id, token, task_id, state, shown_at, expires_at"
LEASE_SQL = f"""
INSERT INTO {LEASE} (token, task_id, annotator_id, state, shown_at, expires_at)
SELECT %(token)s, pick.id, %(me)s, {ACTIVE}, %(now)s, %(expires)s FROM pick
WHERE {{room}}{{barred}}
ON CONFLICT (task_id, annotator_id) DO UPDATE SET expires_at = excluded.expires_at
  WHERE {LEASE}.state = {ACTIVE}
RETURNING {LEASED_COLUMNS}"""
LIVE_LEASES_FRESH = "annotate_live_leases(pick.id, %(me)s, %(now)s)"

# A gold item for the annotator (the qualification quiz, or the gold rate): one of the
# study's gold tasks they hold no lease on in any state (answered, skipped, held or
# expired), passed over where exposure control bars it, in the queue's random order.
# Gold items are answered by everyone served them, so there is no room condition: the
# gold lease statement (``lease_sql(…, gold=True)``) leaves it out too.
GOLD_PICK_SQL = f"""
SELECT t.id, t.judgment_count FROM {TASK} t
WHERE t.study_id = %(study)s AND t.is_gold
  AND NOT EXISTS (
    SELECT 1 FROM {LEASE} m WHERE m.task_id = t.id AND m.annotator_id = %(me)s){{barred}}
ORDER BY t.order_key
LIMIT 1"""


@cache
def pick_sql(barred: bool) -> str:
    """The pick, passing over barred tasks when the study's exposure rule has conflicts."""
    return PICK_SQL.format(barred="\n  AND NOT " + BARRED_SQL.format(task="t.id") if barred else "")


@cache
def gold_pick_sql(barred: bool) -> str:
    """The gold pick, passing over barred tasks as ``pick_sql`` does."""
    return GOLD_PICK_SQL.format(barred="\n  AND NOT " + BARRED_SQL.format(task="t.id") if barred else "")


def _room(live_leases: str) -> str:
    return f"pick.judgment_count + {live_leases} < %(n)s"


@cache
def lease_sql(vendor: str, barred: bool, records: bool, gold: bool = False) -> str:
    """The lease statement for the database and the study's exposure rule; with ``gold``,
    a gold item's (``GOLD_PICK_SQL``, no room condition)."""
    pick = gold_pick_sql(barred) if gold else pick_sql(barred)
    if vendor != "postgresql":
        return f"WITH pick AS ({pick})" + LEASE_SQL.format(
            room="TRUE" if gold else _room(live_leases_besides_me("pick.id")), barred=""
        )
    lease = LEASE_SQL.format(
        room="TRUE" if gold else _room(LIVE_LEASES_FRESH),
        barred="\n  AND NOT " + BARRED_FRESH_SQL.format(task="pick.id") if barred else "",
    )
    seen = f",\nseen AS ({RECORD_SQL.format(task='IN (SELECT task_id FROM lease)')})" if records else ""
    return (
        f"WITH pick AS ({pick} FOR UPDATE SKIP LOCKED),\nlease AS ({lease}){seen}\n"
        f"SELECT {LEASED_COLUMNS} FROM lease"
    )


# ---------------------------------------------------------------- submitting (annotate.submission)

# The lease with what checking the answer needs, and a judgment already recorded under
# this client_id (a repeat).
LEASE_READ_SQL = f"""
SELECT l.id, l.task_id, l.shown_at, s.id, s.kind, s.status, t.prompt_id, t.is_gold, t.gold_answer, s.config,
  (SELECT COUNT(*) FROM {TASK_IMAGE} ti WHERE ti.task_id = t.id),
  j.id, j.task_id
FROM {LEASE} l
JOIN {TASK} t ON t.id = l.task_id
JOIN {STUDY} s ON s.id = t.study_id
LEFT JOIN {JUDGMENT} j ON j.annotator_id = %(me)s AND j.client_id = %(client)s
WHERE l.token = %(token)s AND l.annotator_id = %(me)s
"""

QUESTION_IDS_SQL = f"SELECT id FROM {QUESTION} WHERE prompt_id = %(prompt)s"

# Read again once the lock is held (the lease read may predate a submission that committed
# meanwhile), with the open tasks of the annotator's progress before this answer (the
# task's own count is already raised); "done" comes from the tally this answer raises.
FRESH_SQL = f"""
SELECT t.judgment_count, s.overlap, l.state, l.expires_at, j.id, j.task_id,
  {live_leases_besides_me("t.id")},
  (SELECT i.model_version_id FROM {TASK_IMAGE} ti
   JOIN {IMAGE} i ON i.id = ti.image_id
   WHERE ti.task_id = t.id AND ti.position = 0),
  {OPEN_COLUMNS}
FROM {TASK} t
JOIN {STUDY} s ON s.id = t.study_id
JOIN {LEASE} l ON l.id = %(lease)s
LEFT JOIN {JUDGMENT} j ON j.annotator_id = %(me)s AND j.client_id = %(client)s
WHERE t.id = %(task)s
"""

INSERT_JUDGMENT_SQL = f"""
INSERT INTO {JUDGMENT}
  (task_id, annotator_id, client_id, answer, left_model_id, fetched_at, displayed_at, on_screen_seconds,
   answered_at, source)
VALUES (%(task)s, %(me)s, %(client)s, %(answer)s, %(left)s, %(fetched)s, %(displayed)s, %(on_screen)s,
  %(answered)s, 'web')
RETURNING id
"""
COUNT_SQL = f"UPDATE {TASK} SET judgment_count = judgment_count + 1 WHERE id = %(task)s"
DONE_SQL = f"UPDATE {LEASE} SET state = {DONE} WHERE id = %(lease)s"
# The annotator's tally, raised: the last write of a submission. It returns the row as
# written, so it reads an exclusion that committed while it waited for the row's lock
# (annotate.workforce), and the submission is then refused and undone. A gold answer
# raises the gold counts too (%(gold)s and %(correct)s are 0 or 1).
TALLY_SQL = f"""
INSERT INTO {TALLY}
  (study_id, annotator_id, judgments, excluded_reason, gold_answered, gold_correct, quiz_state)
VALUES (%(study)s, %(me)s, 1, '', %(gold)s, %(correct)s, '')
ON CONFLICT (study_id, annotator_id) DO UPDATE SET judgments = {TALLY}.judgments + 1,
  gold_answered = {TALLY}.gold_answered + %(gold)s, gold_correct = {TALLY}.gold_correct + %(correct)s
RETURNING judgments, excluded_at, gold_answered, gold_correct, quiz_state
"""
# The qualification quiz's result, once its last gold answer is in (only where the study
# has a quiz): written once, in the submission's transaction.
QUIZ_STATE_SQL = f"""
UPDATE {TALLY} SET quiz_state = %(quiz)s
WHERE study_id = %(study)s AND annotator_id = %(me)s AND quiz_state = ''
"""
# This answer gave the task its N-th judgment: the lease is done as above, and every lease
# on the task leaves the annotators' open ones (Lease.task_filled); the study has one open
# task fewer (Study.open_tasks).
DONE_FILLED_SQL = f"""
UPDATE {LEASE} SET task_filled = TRUE,
  state = CASE WHEN id = %(lease)s THEN {DONE} ELSE state END
WHERE task_id = %(task)s
"""
FILLED_SQL = f"UPDATE {STUDY} SET open_tasks = open_tasks - 1 WHERE id = %(study)s"


# ---------------------------------------------------------------- payloads (annotate.selectors)

# One row per image of each lease's task, in display order, at the size it is served.
PAYLOAD_SQL = f"""
SELECT l.token, l.expires_at, s.kind, t.criterion, p.text, t.prompt_id, ti.position,
  COALESCE(r.width, i.width), COALESCE(r.height, i.height)
FROM {LEASE} l
JOIN {TASK} t ON t.id = l.task_id
JOIN {STUDY} s ON s.id = t.study_id
JOIN {PROMPT} p ON p.id = t.prompt_id
JOIN {TASK_IMAGE} ti ON ti.task_id = t.id
JOIN {IMAGE} i ON i.id = ti.image_id
LEFT JOIN {RESAMPLED} r ON r.id = ti.resampled_id
WHERE l.id IN ({{leases}})
ORDER BY l.shown_at, l.id, ti.position
"""
PAYLOAD_QUESTIONS_SQL = f"""
SELECT prompt_id, id, text FROM {QUESTION}
WHERE prompt_id IN ({{prompts}}) ORDER BY prompt_id, position
"""
