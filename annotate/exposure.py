"""Exposure control (SPEC "Blinding"): no annotator meets one image both blinded and revealed.

A blinded A/B task hides the prompt and mixes two models. A *revealing* task shows the
image with its prompt (text alignment, best/worst) or comes from a study of one model
(best/worst): an annotator who met an image there can recognise it in an A/B task, and so
know its prompt and its model; one who met it in an A/B task first learns the same
afterwards, about the answers they gave and the ones they have left (the same pair comes
back for each criterion). So, for an A/B study whose ``exposure`` is ``isolated`` (the
default), whichever comes first:

- none of its tasks goes to an annotator who was shown one of the task's images in a
  revealing context;
- no revealing task, in any study, goes to an annotator who was shown one of its images
  in an isolated A/B study.

``shared`` opts an A/B study out: its tasks ignore what their annotators saw elsewhere,
and what it shows restricts nothing. The cost of isolation is a larger annotator pool:
people who labelled a model's images with their prompts cannot judge those images blind.

Every lease writes its task's images for its annotator (``ImageExposure``) in the same
statement that checks them and the overlap (annotate.assignment): the check runs after
the task's row lock, under a lock per annotator, with a snapshot of its own, so two
leases of one annotator in two studies at once cannot both pass it.
"""

from dataclasses import dataclass

import pandas as pd
from django.contrib.auth.models import User
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from annotate.models import Enrollment, ImageExposure, Lease, Study, Task, TaskImage
from evalhub.accounts.roles import ANNOTATORS

BLIND, REVEALING = ImageExposure.Context.BLIND.value, ImageExposure.Context.REVEALING.value


@dataclass(frozen=True)
class ExposureRule:
    """What a study's leases write (``records``) and which earlier exposures bar one of
    its tasks (``conflicts``); None for neither."""

    records: str | None
    conflicts: str | None


def exposure_rule(kind: str, exposure: str) -> ExposureRule:
    if kind != Study.Kind.AB:
        return ExposureRule(records=REVEALING, conflicts=BLIND)
    if exposure == Study.Exposure.SHARED:
        return ExposureRule(records=None, conflicts=None)
    return ExposureRule(records=BLIND, conflicts=REVEALING)


def exposures_record(leases: QuerySet[Lease]) -> int:
    """Write the exposures of leases made other than by the lease statement (judgments
    imported with their leases); those already written stay as they are. Returns how many
    exposures the leases account for."""
    rows = leases.values_list(
        "annotator_id", "task__task_images__image_id", "task__study__kind", "task__study__exposure"
    ).distinct()
    exposures = []
    for annotator_id, image_id, kind, exposure in rows:
        context = exposure_rule(kind, exposure).records
        if context is not None:
            exposures.append(ImageExposure(annotator_id=annotator_id, image_id=image_id, context=context))
    return len(ImageExposure.objects.bulk_create(exposures, ignore_conflicts=True))


# ---------------------------------------------------------------- the researcher's view


@dataclass(frozen=True)
class ExposureBlocks:
    """Open tasks that cannot get their N judgments from the annotators there are."""

    annotators: int  # the pool: active users with the annotator role
    open_tasks: int
    short: int  # open tasks with fewer eligible annotators than answers still needed
    by_exposure: int  # of those, the ones that would have enough but for exposure control
    barred_annotators: int  # annotators barred by exposure from at least one open task

    @property
    def by_pool(self) -> int:
        """Short tasks that exposure control does not explain: too few annotators."""
        return self.short - self.by_exposure


def study_exposure_blocks(study: Study, now=None) -> ExposureBlocks:
    """Per open task: the answers it still needs (N minus judgments and others' live
    leases), against the annotators who could still take it (the pool, less those who
    hold, answered or skipped it, less those its images' exposures bar). The pool of a
    study open to enrolled annotators only is its enrolled annotators."""
    now = now or timezone.now()
    annotators = User.objects.filter(is_active=True, groups__name=ANNOTATORS)
    if study.access == Study.Access.ENROLLED:
        annotators = annotators.filter(
            enrollments__study=study, enrollments__status=Enrollment.Status.ENROLLED
        )
    pool = set(annotators.values_list("pk", flat=True).distinct())
    tasks = pd.DataFrame.from_records(
        list(
            Task.objects.filter(study=study, judgment_count__lt=study.overlap).values_list(
                "pk", "judgment_count"
            )
        ),
        columns=["task", "judgments"],
    ).set_index("task")
    if tasks.empty:
        return ExposureBlocks(len(pool), 0, 0, 0, 0)
    open_ids = Q(task__study=study, task__judgment_count__lt=study.overlap)
    leases = pd.DataFrame.from_records(
        list(Lease.objects.filter(open_ids).values_list("task_id", "annotator_id", "state", "expires_at")),
        columns=["task", "annotator", "state", "expires_at"],
    )
    active = leases["state"] == Lease.State.ACTIVE
    live = leases[active & (leases["expires_at"] > now)]
    needed = tasks["judgments"].rsub(study.overlap) - _per_task(live, tasks.index)
    # Whoever holds, answered or skipped a task cannot take it (again); an expired lease
    # of one's own may be renewed.
    taken = leases[~(active & (leases["expires_at"] <= now)) & leases["annotator"].isin(pool)]
    taken = taken[["task", "annotator"]]
    rule = exposure_rule(study.kind, study.exposure)
    barred = pd.DataFrame(columns=["task", "annotator"])
    if rule.conflicts is not None:
        barred = pd.DataFrame.from_records(
            list(
                TaskImage.objects.filter(open_ids, image__exposures__context=rule.conflicts)
                .filter(image__exposures__annotator_id__in=pool)
                .values_list("task_id", F("image__exposures__annotator_id"))
                .distinct()
            ),
            columns=["task", "annotator"],
        )
    # An annotator who holds or closed a task is counted out once, whatever bars them too.
    merged = barred.merge(taken, how="left", on=["task", "annotator"], indicator=True)
    barred_only = merged[merged["_merge"] == "left_only"][["task", "annotator"]]
    barred_here = _per_task(barred_only, tasks.index)
    eligible = len(pool) - _per_task(taken, tasks.index) - barred_here
    short = needed > eligible
    return ExposureBlocks(
        annotators=len(pool),
        open_tasks=len(tasks),
        short=int(short.sum()),
        by_exposure=int((short & (needed <= eligible + barred_here)).sum()),
        barred_annotators=int(barred_only["annotator"].nunique()),
    )


def _per_task(frame: pd.DataFrame, tasks: pd.Index) -> pd.Series:
    return frame.groupby("task").size().reindex(tasks, fill_value=0)
