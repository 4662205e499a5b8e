import uuid
from enum import StrEnum

from django.db import models

from jobs import options, plan


def _choices(words: type[StrEnum]) -> type[models.TextChoices]:
    """The model field choices of a Django-free set of words (``jobs.plan``, ``jobs.options``)."""
    return models.TextChoices(words.__name__, [(word.name, word.value) for word in words])


JobKind = _choices(plan.JobKind)
THREE_D_KINDS = (JobKind.TEXT_TO_3D, JobKind.IMAGE_TO_3D)
Stage = _choices(plan.Stage)
GenerateType = _choices(options.GenerateType)
PolygonType = _choices(options.PolygonType)


class JobState(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The job API's word for each state (the spec's ``BackendJob.status``): a cancelled job FAILed.
JOB_API_STATUS = {
    JobState.PENDING: "WAIT",
    JobState.PROCESSING: "RUN",
    JobState.COMPLETED: "DONE",
    JobState.FAILED: "FAIL",
    JobState.CANCELLED: "FAIL",
}

ACTIVE_STATES = (JobState.PENDING, JobState.PROCESSING)
FINAL_STATES = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


class Job(models.Model):
    """One unit of generation work, behind both API halves.

    ``state`` uses the generation API's words; the job API shows them through the spec's mapping
    (see ``jobs.selectors``). Files we produced are stored as storage names and turned into URLs
    when read, so signed URLs never go stale in the database; a preview URL registered by a client
    (``register-job``) is kept as given.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(max_length=16, choices=JobKind.choices)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.PENDING)
    name = models.CharField(max_length=255, blank=True, null=True)

    prompt = models.TextField(blank=True, null=True)
    image_url = models.URLField(max_length=2048, blank=True, null=True)
    # The storage name behind ``image_url`` when it points into our own storage: read directly.
    input_image = models.CharField(max_length=512, blank=True)
    generate_type = models.CharField(
        max_length=16, choices=GenerateType.choices, default=GenerateType.NORMAL
    )
    face_count = models.PositiveIntegerField(null=True, blank=True)
    enable_pbr = models.BooleanField(default=False)
    polygon_type = models.CharField(
        max_length=16, choices=PolygonType.choices, null=True, blank=True
    )
    seed = models.BigIntegerField(null=True, blank=True)
    # Anonymous jobs only: the address that submitted it, for the cap on each caller's waiting jobs.
    submitted_from = models.GenericIPAddressField(null=True, blank=True)

    result_glb = models.CharField(max_length=512, blank=True)
    # The full-resolution, coloured mesh every finish of this model starts from (remesh); a remesh
    # job shares its source's.
    source_mesh = models.CharField(max_length=512, blank=True)
    # The result in other formats, by format name, made on their first download.
    downloads = models.JSONField(default=dict, blank=True)
    preview_image = models.CharField(max_length=512, blank=True)
    processed_image = models.CharField(max_length=512, blank=True)
    registered_preview_url = models.URLField(max_length=2048, blank=True)
    # When a client's register-job put this preview in a history; a preview never registered
    # expires after RETAIN_UNREGISTERED_PREVIEWS_SECONDS.
    registered_at = models.DateTimeField(null=True, blank=True)
    # The job's own webhook receiver (its submit's ``webhookUrl``), and the events it gets (see
    # ``webhooks``): signed with the owner's secret. Only jobs with an owner have one.
    webhook_url = models.URLField(max_length=2048, blank=True)
    webhook_events = models.JSONField(default=list, blank=True)

    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=64, blank=True, null=True)
    error_message = models.TextField(blank=True, null=True)
    cancel_requested = models.BooleanField(default=False)

    # When the broker confirmed the latest message of a pending job; empty while one is due
    # (never sent, refused by the broker, or the job was reset to pending): the sweep sends it.
    queued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
    # The operating-system process running the attempt ("host/boot id/pid/start time"): a
    # redelivered message may take the job over at once when that process is gone.
    worker_process = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written by the running worker every few seconds: a running job whose heartbeat stopped has
    # lost its worker and may be taken over.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    elapsed_seconds = models.FloatField(null=True, blank=True)
    # Where the job is in its stages (jobs.plan), each run by a worker of its own queue. A stage is
    # held by one worker while ``heartbeat_at`` is set; between stages it is empty, and the stage
    # waits for its message (``queued_at`` once the broker confirmed it).
    stage = models.CharField(max_length=16, choices=Stage.choices, blank=True)
    # The raw mesh the image-to-3D stage hands to the finishing stage; deleted once finished.
    raw_mesh = models.CharField(max_length=512, blank=True)
    # Seconds the last attempt spent in each step (jobs.plan.Step) of its stages:
    # {"cut_out": 0.12, "image_to_3d": 4.2}.
    step_seconds = models.JSONField(default=dict, blank=True)
    # Each stage the last attempt ran: [{"stage", "worker", "started" (Unix time), "seconds"}].
    stage_runs = models.JSONField(default=list, blank=True)
    # The X-Request-ID of the request that made the job (hydrilla.request_id): every stage's log
    # lines carry it.
    request_id = models.CharField(max_length=128, blank=True)
    # Made with a test API key: every stage runs on the weight-free CPU path, never on a GPU.
    test_mode = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Queue position and lengths: jobs of a kind in a state, in arrival order.
            models.Index(fields=["state", "kind", "created_at"], name="job_queue_idx"),
            # Time estimates: the latest finished jobs of a kind.
            models.Index(fields=["kind", "state", "finished_at"], name="job_recent_done_idx"),
            models.Index(fields=["user", "created_at"], name="job_history_idx"),
            # Each caller's waiting jobs (MAX_WAITING_JOBS_PER_CALLER).
            models.Index(fields=["user", "state"], name="job_caller_user_idx"),
            models.Index(fields=["submitted_from", "state"], name="job_caller_address_idx"),
        ]

    def __str__(self):
        return f"{self.kind} {self.id} ({self.state})"


class Upload(models.Model):
    """An image a client uploaded (``upload-image``, ``image-to-3d``'s file), kept by storage name.

    A job that uses an upload refers to it by the same name (``Job.input_image``) and owns the file
    from then on; an upload that no job uses is deleted after ``UNUSED_UPLOAD_MAX_AGE_SECONDS``.
    """

    name = models.CharField(max_length=512, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return self.name
