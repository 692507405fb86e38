"""Many annotators at once: no task gets more than N judgments, nobody answers a task
twice, no acknowledged judgment is lost. Real threads, each with its own database
connection, racing on the configured database (PostgreSQL in `make test`'s second run,
a SQLite file in the first)."""

import random
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count, F
from django.utils import timezone

from annotate.assignment import annotator_progress, assignments_next, lease_skip
from annotate.errors import Conflict
from annotate.models import AnnotatorTally, ImageExposure, Judgment, Lease, Study, Task, TaskImage
from annotate.services import study_create
from annotate.submission import judgment_submit
from evalhub.catalog.models import ModelVersion
from tests.annotate.conftest import catalog_images
from tests.factories import AlignmentQuestionFactory, PromptFactory, PromptSetFactory, UserFactory

ANNOTATORS = 16
PROMPTS = 8
OVERLAP = 5


@pytest.fixture
def race_study(transactional_db, tmp_path):
    prompt_set = PromptSetFactory(name="race")
    for position in range(PROMPTS):
        PromptFactory(prompt_set=prompt_set, text=f"prompt {position}", position=position)
    catalog_images(tmp_path, prompt_set, ["race-a", "race-b"], images_per_prompt=1)
    models = list(ModelVersion.objects.order_by("name"))
    return study_create(name="race", kind="ab", prompt_set=prompt_set, model_versions=models, overlap=OVERLAP)


def annotate_until_done(study_id: int, annotator, acknowledged: list, failures: list, barrier) -> None:
    """Next + submit in a loop, with retries of the same client_id and some skips."""
    rng = random.Random(annotator.pk)
    try:
        barrier.wait()
        study = Study.objects.get(pk=study_id)
        while True:
            leases = assignments_next(study_id=study.pk, annotator=annotator, count=rng.choice([1, 2])).leases
            if not leases:
                # Others hold the open slots; stay until nothing is left that we could answer.
                if annotator_progress(study_id=study.pk, annotator=annotator).remaining == 0:
                    break
                time.sleep(0.01)
                continue
            lease = leases[0]
            if rng.random() < 0.1:
                lease_skip(token=lease.token, annotator=annotator)
                continue
            client_id = uuid.uuid4()
            answer = {"choice": rng.choice(["left", "tie", "right", "reject"])}
            for _ in range(rng.choice([1, 2])):  # a retry of the same answer
                try:
                    result = judgment_submit(
                        token=lease.token, annotator=annotator, client_id=client_id, answer=answer
                    )
                except Conflict:
                    break
                if result.created:
                    acknowledged.append(result.judgment.pk)
    except Exception as exc:  # reported by the test, not lost in the thread
        failures.append(repr(exc))
    finally:
        connections.close_all()


def test_racing_annotators_fill_every_task_exactly_to_n(race_study):
    """16 annotators race over 16 tasks with N = 5: every task ends with exactly 5 judgments."""
    annotators = [UserFactory(username=f"racer{i}", role="annotators") for i in range(ANNOTATORS)]
    acknowledged, failures = [], []
    barrier = threading.Barrier(ANNOTATORS)
    threads = [
        threading.Thread(target=annotate_until_done, args=(race_study.pk, a, acknowledged, failures, barrier))
        for a in annotators
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    assert not any(thread.is_alive() for thread in threads)

    per_task = dict(race_study.tasks.annotate(n=Count("judgments")).values_list("pk", "n"))
    assert set(per_task.values()) == {OVERLAP}, per_task
    assert dict(race_study.tasks.values_list("pk", "judgment_count")) == per_task
    assert Study.objects.get(pk=race_study.pk).open_tasks == 0
    pairs = Judgment.objects.values("task", "annotator").annotate(n=Count("pk")).filter(n__gt=1)
    assert not pairs.exists()
    assert sorted(acknowledged) == sorted(Judgment.objects.values_list("pk", flat=True))
    assert len(acknowledged) == PROMPTS * 2 * OVERLAP
    # The counts progress is read from stayed exact under the race.
    judged = dict(Judgment.objects.values("annotator").annotate(n=Count("pk")).values_list("annotator", "n"))
    assert dict(AnnotatorTally.objects.values_list("annotator", "judgments")) == judged
    assert not Lease.objects.filter(task__study=race_study, task_filled=False).exists()
    print(f"{connection.vendor}: {len(acknowledged)} judgments by {ANNOTATORS} racing annotators")


@pytest.fixture
def crossing_studies(race_study):
    """Beside the A/B race study (isolated), a text-alignment study over the same images."""
    for prompt in race_study.prompt_set.prompts.all():
        AlignmentQuestionFactory(prompt=prompt, text="Is there a shape?", position=0)
    alignment = study_create(
        name="race alignment",
        kind="alignment",
        prompt_set=race_study.prompt_set,
        model_versions=list(race_study.model_versions.all()),
        overlap=OVERLAP,
    )
    return race_study, alignment


def work_one_study(study_id: int, studies: list[int], annotator, acknowledged, failures, barrier, deadline):
    """Next + submit (or skip) in one study until it has nothing for this annotator and no
    lease in either study is live, so a task someone gives back could still come to them."""
    rng = random.Random(f"{annotator.pk}:{study_id}")
    try:
        barrier.wait()
        while time.monotonic() < deadline:
            leases = assignments_next(study_id=study_id, annotator=annotator, count=rng.choice([1, 2])).leases
            if not leases:
                live = Lease.objects.filter(
                    task__study_id__in=studies, state=Lease.State.ACTIVE, expires_at__gt=timezone.now()
                )
                if not live.exists():
                    return
                time.sleep(0.01)
                continue
            lease = leases[0]
            if rng.random() < 0.1:
                lease_skip(token=lease.token, annotator=annotator)
                continue
            try:
                result = judgment_submit(
                    token=lease.token,
                    annotator=annotator,
                    client_id=uuid.uuid4(),
                    answer=answer_to(lease, rng),
                )
            except Conflict:
                continue
            acknowledged.append(result.judgment.pk)
        failures.append(f"{annotator.username} still working at the deadline")
    except Exception as exc:  # reported by the test, not lost in the thread
        failures.append(repr(exc))
    finally:
        connections.close_all()


def answer_to(lease, rng) -> dict:
    if lease.task.study.kind == Study.Kind.AB:
        return {"choice": rng.choice(["left", "tie", "right", "reject"])}
    questions = lease.task.prompt.questions.values_list("pk", flat=True)
    return {"answers": {str(q): rng.random() < 0.5 for q in questions}}


def test_exposure_and_overlap_hold_while_each_annotator_works_two_studies_at_once(crossing_studies):
    """8 annotators, each in both studies at once (16 threads): nobody is handed one image
    both blind and with its prompt, and no task goes over N."""
    ab, alignment = crossing_studies
    annotators = [UserFactory(username=f"crosser{i}", role="annotators") for i in range(ANNOTATORS // 2)]
    acknowledged, failures = [], []
    barrier = threading.Barrier(ANNOTATORS)
    deadline = time.monotonic() + 120
    studies = [ab.pk, alignment.pk]
    threads = [
        threading.Thread(
            target=work_one_study, args=(study, studies, a, acknowledged, failures, barrier, deadline)
        )
        for a in annotators
        for study in studies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []

    # What each annotator was handed (a lease makes a task's images reachable), per context.
    handed = {}
    for annotator_id, kind, image_id in TaskImage.objects.filter(task__leases__isnull=False).values_list(
        "task__leases__annotator_id", "task__study__kind", "image_id"
    ):
        handed.setdefault((annotator_id, kind == "ab"), set()).add(image_id)
    crossed = {
        a.username: handed.get((a.pk, True), set()) & handed.get((a.pk, False), set()) for a in annotators
    }
    assert crossed == {a.username: set() for a in annotators}
    assert sum(bool(handed.get((a.pk, True))) and bool(handed.get((a.pk, False))) for a in annotators) > 0
    recorded = set(ImageExposure.objects.values_list("annotator_id", "image_id", "context"))
    assert recorded == {
        (annotator, image, "blind" if blind else "revealing")
        for (annotator, blind), images in handed.items()
        for image in images
    }

    for study in (ab, alignment):
        per_task = dict(study.tasks.annotate(n=Count("judgments")).values_list("pk", "n"))
        assert max(per_task.values()) <= OVERLAP and sum(per_task.values()) > 0
        assert dict(study.tasks.values_list("pk", "judgment_count")) == per_task
        open_tasks = sum(n < OVERLAP for n in per_task.values())
        assert Study.objects.get(pk=study.pk).open_tasks == open_tasks
    assert not Judgment.objects.values("task", "annotator").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert sorted(acknowledged) == sorted(Judgment.objects.values_list("pk", flat=True))
    print(
        f"{connection.vendor}: {len(acknowledged)} judgments, exposure held for {len(annotators)} annotators"
    )


def test_the_fresh_lease_count_sees_leases_committed_during_the_statement(race_study):
    """annotate_live_leases() counts a lease committed after the calling statement began,
    which the statement's own snapshot does not see (the lease race it closes)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes the lease statement; the function exists on PostgreSQL only")
    task = race_study.tasks.first()
    holder = UserFactory(username="holder", role="annotators")
    started = threading.Event()

    def commit_a_lease_meanwhile():
        started.wait()
        time.sleep(0.3)
        now = timezone.now()
        Lease.objects.create(task=task, annotator=holder, shown_at=now, expires_at=now + timedelta(minutes=5))
        connections.close_all()

    other = threading.Thread(target=commit_a_lease_meanwhile)
    other.start()
    with connection.cursor() as cursor:
        started.set()
        # The subquery behind OFFSET 0 sleeps before the outer select list is evaluated.
        cursor.execute(
            """
            SELECT (SELECT COUNT(*) FROM annotate_lease WHERE task_id = %s),
                   annotate_live_leases(%s, 0, now())
            FROM (SELECT pg_sleep(1) OFFSET 0) AS pause
            """,
            [task.pk, task.pk],
        )
        stale, fresh = cursor.fetchone()
    other.join()
    assert (stale, fresh) == (0, 1)


def test_a_retry_that_waited_for_the_first_attempt_returns_it_and_counts_once(race_study):
    """A retry blocked on the task's lock while the first attempt with the same client_id
    committed answers with that judgment, and rolls its own raised count back."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes whole transactions: a retry never overlaps the first attempt")
    dana = UserFactory(username="dana", role="annotators")
    lease = assignments_next(study_id=race_study.pk, annotator=dana).leases[0]
    client_id, answer = uuid.uuid4(), {"choice": "tie"}
    first_holds_the_lock, retry_is_waiting = threading.Event(), threading.Event()
    results, failures = [], []

    def first_attempt():
        """Records the judgment by hand under the task's lock, and commits once the retry waits."""
        try:
            with transaction.atomic():
                Task.objects.select_for_update().get(pk=lease.task_id)
                Judgment.objects.create(
                    task_id=lease.task_id,
                    annotator=dana,
                    client_id=client_id,
                    answer=answer,
                    fetched_at=lease.shown_at,
                    answered_at=timezone.now(),
                )
                Task.objects.filter(pk=lease.task_id).update(judgment_count=F("judgment_count") + 1)
                Lease.objects.filter(pk=lease.pk).update(state=Lease.State.DONE)
                first_holds_the_lock.set()
                retry_is_waiting.wait(10)
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            connections.close_all()

    def retry():
        try:
            results.append(
                judgment_submit(token=lease.token, annotator=dana, client_id=client_id, answer=answer)
            )
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            connections.close_all()

    first = threading.Thread(target=first_attempt)
    first.start()
    first_holds_the_lock.wait(10)
    second = threading.Thread(target=retry)
    second.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not retry_is_waiting.is_set():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                retry_is_waiting.set()
        time.sleep(0.02)
    first.join()
    second.join()
    assert failures == [] and retry_is_waiting.is_set()
    (result,) = results
    assert not result.created and result.judgment.client_id == client_id
    assert Task.objects.get(pk=lease.task_id).judgment_count == 1
    assert Judgment.objects.filter(task_id=lease.task_id).count() == 1
