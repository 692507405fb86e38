"""Studies, their tasks, the leases that hand tasks out, and the judgments that come
back (paper §4.1–4.2; SPEC "The three annotation task kinds").

A task is one unit an annotator answers once: the five images of a prompt (best/worst
of five), two images of a prompt for one criterion (A/B), or one image with its
alignment questions (text alignment). Every task is answered by ``overlap`` different
annotators. Anything an annotator can see refers to a lease by its random token, never
to a model, an image's catalog id or a task's sequential id.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from evalhub.catalog.models import GeneratedImage, ModelVersion, Prompt, PromptSet


def new_token() -> str:
    return secrets.token_hex(16)


def new_order_key() -> int:
    """A random position: tasks at the same fill level are served in an order that
    says nothing about their prompt or model."""
    return secrets.randbits(62)


class Study(models.Model):
    class Kind(models.TextChoices):
        BEST_WORST = "best_worst", "Best/worst of five"
        AB = "ab", "A/B comparison"
        ALIGNMENT = "alignment", "Text alignment"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    class Exposure(models.TextChoices):
        """Whether a blinded study keeps its images apart from every context that reveals
        them (annotate.exposure); only A/B studies have the setting."""

        ISOLATED = "isolated", "Isolated"
        SHARED = "shared", "Shared"

    class Access(models.TextChoices):
        """Who may work on the study (annotate.enrollment)."""

        OPEN = "open", "Every annotator"
        ENROLLED = "enrolled", "Enrolled annotators only"

    name = models.CharField(
        max_length=200, unique=True, help_text="The researchers' name; annotators never see it."
    )
    title = models.CharField(
        max_length=200,
        help_text="What annotators see; never a model version's name (annotate.titles).",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="studies")
    model_versions = models.ManyToManyField(ModelVersion, through="StudyModel", related_name="studies")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    overlap = models.PositiveSmallIntegerField(default=5, help_text="Annotators per task (N).")
    open_tasks = models.PositiveIntegerField(
        default=0,
        help_text="Tasks with fewer than N judgments, kept as judgments arrive (study_recount).",
    )
    lease_seconds = models.PositiveIntegerField(default=300)
    exposure = models.CharField(
        max_length=10,
        choices=Exposure.choices,
        blank=True,
        help_text="A/B: isolated (default) or shared; empty for the kinds that reveal their images.",
    )
    access = models.CharField(
        max_length=10,
        choices=Access.choices,
        default=Access.OPEN,
        help_text="open: every annotator; enrolled: those enrolled in it (an invitation, or by hand).",
    )
    config = models.JSONField(default=dict, blank=True, help_text="Kind-specific settings.")
    guidelines = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [models.CheckConstraint(condition=Q(overlap__gte=1), name="study_overlap_positive")]

    def __str__(self) -> str:
        return self.name


class StudyModel(models.Model):
    """A model version in a study; for A/B, ``role`` says which one is A and which B."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="study_models")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT)
    role = models.CharField(max_length=1, blank=True, help_text="A or B in an A/B study.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "model_version"], name="study_model_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.study_id}/{self.role or '-'}/{self.model_version_id}"


class Task(models.Model):
    class Criterion(models.TextChoices):
        FLAWS = "flaws", "Visual flaws"
        APPEAL = "appeal", "Visual appeal"

    # Indexes that lead with the same column serve the foreign keys here and below: every
    # index is written again on each judgment (a task's count, a lease's state change).
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="tasks", db_index=False)
    key = models.CharField(max_length=100, help_text="Stable name within the study, for exports and imports.")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="tasks")
    criterion = models.CharField(max_length=10, choices=Criterion.choices, blank=True)
    images = models.ManyToManyField(GeneratedImage, through="TaskImage", related_name="tasks")
    order_key = models.BigIntegerField(default=new_order_key)
    judgment_count = models.PositiveSmallIntegerField(default=0)
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["study", "key"]
        constraints = [models.UniqueConstraint(fields=["study", "key"], name="task_key_unique")]
        # The assignment queue's order (annotate.assignment.PICK_SQL): most answered first,
        # then the random key, so a pick reads the index in order and stops early.
        indexes = [models.Index(fields=["study", "-judgment_count", "order_key"], name="task_queue_idx")]

    def __str__(self) -> str:
        return f"{self.study.name}/{self.key}"


class ResampledImage(models.Model):
    """A catalog image resampled to an A/B study's common display size, stored under an
    opaque name like every image (``Study.config["display_size"]``; annotate.display_size)."""

    source = models.ForeignKey(GeneratedImage, on_delete=models.PROTECT, related_name="resampled")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    file = models.FileField(upload_to="images/", max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "width", "height"], name="resampled_once_per_size"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} at {self.width}x{self.height}"


class TaskImage(models.Model):
    """An image in a task at a display position (A/B: 0 is left, 1 is right); served as
    ``resampled`` where the study shows its images at a common size."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="task_images")
    image = models.ForeignKey(GeneratedImage, on_delete=models.PROTECT)
    position = models.PositiveSmallIntegerField()
    resampled = models.ForeignKey(ResampledImage, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="task_image_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}@{self.position}"


class Lease(models.Model):
    """A task handed to an annotator until ``expires_at``; kept alive by heartbeats.

    The row stays after the work is done (``state``) so that a skipped task is not
    served to the same annotator again and the time shown is kept for the judgment.
    ``task_filled`` is set on all of a task's leases when the task gets its N-th judgment:
    an annotator's leases on open tasks are then read by a partial index, not through
    all they ever held.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        SKIPPED = "skipped", "Skipped"
        DONE = "done", "Done"

    token = models.CharField(max_length=32, default=new_token)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="leases", db_index=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases", db_index=False
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    shown_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    task_filled = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="lease_once_per_annotator"),
            # A constraint, not unique=True, which on PostgreSQL adds a second (LIKE) index.
            models.UniqueConstraint(fields=["token"], name="lease_token_unique"),
        ]
        indexes = [
            models.Index(fields=["task", "state", "expires_at"], name="lease_active_idx"),
            # An annotator's leases on tasks still open: the ones they hold, and the ones
            # they answered or skipped (their progress), without all they ever held.
            models.Index(
                fields=["annotator", "state", "expires_at"],
                condition=Q(task_filled=False),
                name="lease_annotator_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"lease {self.token} ({self.state})"


class Judgment(models.Model):
    """One annotator's answer to one task.

    ``answer`` holds display positions for best/worst (``positive``, ``negative``; a
    task's positions are fixed by its ``TaskImage`` rows), the side for A/B (``choice``:
    left/tie/right/reject, with ``left_model`` kept here, server side) and ``answers``
    (question id to true/false) for text alignment.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="judgments", db_index=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments", db_index=False
    )
    client_id = models.UUIDField(
        help_text="Sent by the page with each answer: repeats are the same judgment."
    )
    answer = models.JSONField()
    left_model = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT)
    fetched_at = models.DateTimeField(
        help_text="When the page fetched the task (its lease was made); the page preloads tasks, "
        "so this can precede the moment the task was on screen."
    )
    displayed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the task became visible on the annotator's screen, from the durations the "
        "page measured, kept between fetched_at and answered_at; empty without them (API, imports).",
    )
    on_screen_seconds = models.FloatField(
        null=True,
        blank=True,
        help_text="How long the task was on screen before the answer: the tab visible and the window "
        "focused, interruptions left out; empty without the page's figures (API, imports).",
    )
    answered_at = models.DateTimeField()
    source = models.CharField(max_length=20, default="web", help_text="web, or import for vendor data.")
    excluded = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Its annotator was excluded from the study (annotate.workforce): kept, flagged in "
        "the raw export, left out of every table and of its task's count, which reopened.",
    )

    class Meta:
        ordering = ["task", "answered_at"]
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="judgment_once_per_annotator"),
            models.UniqueConstraint(fields=["annotator", "client_id"], name="judgment_client_id_unique"),
        ]

    def __str__(self) -> str:
        return f"judgment {self.pk} on task {self.task_id}"


class AnnotatorTally(models.Model):
    """An annotator in a study: how many judgments they have given (the "done" of their
    progress, raised with each submission so that no request counts their history), and
    whether they were excluded from it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="tallies", db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tallies")
    judgments = models.PositiveIntegerField(default=0)
    # Exclusion lives on this row because every submission already writes it last, under
    # its row lock: the submission reads the flag back from that write, so an exclusion and
    # an answer in flight are ordered, whichever comes first (annotate.workforce).
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_reason = models.CharField(max_length=300, blank=True)
    # Answers on the study's gold items, and how many matched the known answer: raised by
    # the same write as ``judgments`` (annotate.submission). The qualification quiz is the
    # first ``quiz_size`` of them; its result is kept once reached (annotate.assignment).
    gold_answered = models.PositiveIntegerField(default=0, db_default=0)
    gold_correct = models.PositiveIntegerField(default=0, db_default=0)

    class QuizState(models.TextChoices):
        NONE = "", "Not taken"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    quiz_state = models.CharField(
        max_length=6, choices=QuizState.choices, blank=True, default="", db_default=""
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "annotator"], name="tally_once_per_study_annotator"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} in study {self.study_id}: {self.judgments}"


class ImageExposure(models.Model):
    """A catalog image an annotator has been shown, and in what context (SPEC "Blinding").

    ``blind``: in a task of an isolated A/B study (no prompt, two models). ``revealing``:
    with its prompt, or in a study of one model. Written when the task is leased (from then
    on its images can be fetched), and read by the same statement that leases, so that no
    annotator meets one image in both contexts (annotate.exposure).
    """

    class Context(models.TextChoices):
        BLIND = "blind", "Blinded, in an isolated A/B study"
        REVEALING = "revealing", "With its prompt or in a one-model study"

    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exposures", db_index=False
    )
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="exposures")
    context = models.CharField(max_length=10, choices=Context.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "image", "context"], name="exposure_once"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} saw {self.image_id} ({self.context})"


class ImageReport(models.Model):
    """An annotator's report that an image in a task is broken: at most one per annotator
    and task, so a study's report count is the tasks its annotators found broken."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="reports")
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="reports")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="report_once_per_annotator"),
        ]

    def __str__(self) -> str:
        return f"report on task {self.task_id}"


class WorkforceEvent(models.Model):
    """Something done to an annotator's part in a study, with its reason: an exclusion or
    a reinstatement, by a researcher or by the study's quality rule (``by`` empty)."""

    class Action(models.TextChoices):
        EXCLUDED = "excluded", "Excluded"
        REINSTATED = "reinstated", "Reinstated"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="workforce_events")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    reason = models.CharField(max_length=300)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    judgments = models.PositiveIntegerField(
        default=0, help_text="Judgments the action left out of the tables or brought back."
    )
    tasks_reopened = models.PositiveIntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.annotator_id} {self.action} in study {self.study_id}"


class Invitation(models.Model):
    """A link that lets people sign up (or log in) as annotators and enrolls them in its
    studies (annotate.enrollment). It stops taking people once revoked, expired or used
    ``max_uses`` times; who joined through it stays enrolled."""

    token = models.CharField(max_length=32, default=new_token)
    studies = models.ManyToManyField(Study, related_name="invitations")
    expires_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    email_domain = models.CharField(
        max_length=253, blank=True, help_text="Accounts made through the link give an e-mail at this domain."
    )
    note = models.CharField(
        max_length=200, blank=True, help_text="The researchers' label; never shown on the link."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["token"], name="invitation_token_unique")]

    def __str__(self) -> str:
        return f"invitation {self.pk} ({self.note or self.uses})"


class CrowdParticipant(models.Model):
    """A participant from a crowd platform (Prolific, MTurk), bound to a passwordless
    annotator account (annotate.crowd). The account's username is random: the platform's
    id is kept here only, for the researchers' participants export."""

    platform_id = models.CharField(max_length=64, help_text="The platform's participant id.")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crowd")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform_id"], name="crowd_platform_id_unique")]

    def __str__(self) -> str:
        return f"crowd participant {self.pk}"


class Enrollment(models.Model):
    """An annotator admitted to a study that is open to enrolled annotators only; a removed
    one keeps the row (``removed``) with the reason. A crowd participant's enrollment also
    holds their platform's study and session ids and their session's times
    (annotate.crowd): ``started_at`` is set for them only."""

    class Status(models.TextChoices):
        ENROLLED = "enrolled", "Enrolled"
        REMOVED = "removed", "Removed"

    class CrowdStatus(models.TextChoices):
        NONE = "", "Not a crowd participant"
        STARTED = "started", "Started"
        COMPLETED = "completed", "Completed"
        RETURNED = "returned", "Returned"

    # The unique constraint's index, led by the study, serves the study's foreign key and
    # the assignment's look-up by (study, annotator) (annotate.queries.ALLOWED_COLUMN).
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="enrollments", db_index=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ENROLLED)
    invitation = models.ForeignKey(
        Invitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="enrollments"
    )
    joined_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_reason = models.CharField(max_length=300, blank=True)
    platform_study_id = models.CharField(max_length=64, blank=True)
    platform_session_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="A crowd participant's arrival.")
    completed_at = models.DateTimeField(null=True, blank=True)
    crowd_status = models.CharField(max_length=10, choices=CrowdStatus.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "annotator"], name="enrollment_once_per_study_annotator"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} {self.status} in study {self.study_id}"
