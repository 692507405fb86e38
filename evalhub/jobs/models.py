from django.conf import settings
from django.db import models


class Job(models.Model):
    """One run on a worker, from the launch to its end: a training or a generation (the
    ``gpu`` queue), or an image import or a judgments export (the ``cpu`` queue,
    evalhub.jobs.queueing).

    ``config`` is the exact configuration the worker runs (for training, the complete
    ``TrainConfig`` once the worker has resolved it). ``state`` only moves forward:
    queued → running → succeeded / failed / cancelled (queued → cancelled directly), each
    move a conditional update, so a job runs once even if its message is delivered twice.
    """

    class Kind(models.TextChoices):
        TRAINING = "training", "Training"
        GENERATION = "generation", "Generation"
        IMPORT = "import", "Image import"
        EXPORT = "export", "Judgments export"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    kind = models.CharField(max_length=12, choices=Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    config = models.JSONField(default=dict)
    model_version = models.ForeignKey(
        "catalog.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        help_text="Training: the version to start from. Generation: the version that generates. "
        "Imports and exports: none.",
    )
    prompt_set = models.ForeignKey("catalog.PromptSet", null=True, blank=True, on_delete=models.PROTECT)
    source_study = models.ForeignKey(
        "annotate.Study", null=True, blank=True, on_delete=models.PROTECT, related_name="training_jobs"
    )
    data_hash = models.CharField(max_length=64, blank=True)
    produced_version = models.ForeignKey(
        "catalog.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_by"
    )
    result = models.JSONField(default=dict, blank=True)
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    worker = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job #{self.pk}"

    def earlier_runs(self):
        """The jobs this one repeats, newest first: its ``retry_of``, that job's, and so on
        (a retry always names an older job, so the chain ends)."""
        earlier = self.retry_of
        while earlier is not None:
            yield earlier
            earlier = earlier.retry_of

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED

    @property
    def progress_percent(self) -> float:
        return 100.0 * self.progress_step / self.progress_total if self.progress_total else 0.0
