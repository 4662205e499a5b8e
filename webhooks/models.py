"""Webhooks in the Standard Webhooks format: who receives which events of a user's jobs, the events
themselves (an outbox, written in the transaction that changes the job), each event's delivery to
each receiver, and every attempt at it.

A job's own receiver (its submit's ``webhookUrl``) is on the job (``Job.webhook_url``) and signs
with its user's secret (``SigningSecret``); an account's receivers (``Endpoint``) get the events
they subscribed to of every job of the user's, each signed with its own secret.
"""

import uuid

from django.db import models
from django.utils import timezone


class EventType(models.TextChoices):
    STARTED = "job.started"
    PROGRESS = "job.progress"
    COMPLETED = "job.completed"
    FAILED = "job.failed"
    CANCELLED = "job.cancelled"


# What a receiver gets when it names no events: every one but the frequent progress.
DEFAULT_EVENTS = [event for event in EventType.values if event != EventType.PROGRESS]


class SigningSecret(models.Model):
    """A user's secret for the webhooks of their jobs' own receivers. After a rotation the
    previous one signs too, until WEBHOOK_SECRET_ROTATION_SECONDS after it."""

    user = models.OneToOneField(
        "accounts.User", primary_key=True, on_delete=models.CASCADE, related_name="webhook_secret"
    )
    secret = models.CharField(max_length=64)
    previous_secret = models.CharField(max_length=64, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"signing secret of {self.user_id}"


class Endpoint(models.Model):
    """A receiver of the user's account: the events it subscribed to, of every job of the user's."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when it answered 410 Gone, or failed every attempt for WEBHOOK_DISABLE_AFTER_SECONDS; it
    # then gets no more events, and its owner reads why.
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    # The first failed attempt since its last success (None while it succeeds).
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "disabled_at"], name="webhook_endpoint_user_idx")]

    def __str__(self):
        return self.url


class Event(models.Model):
    """Something that happened to a job, as its receivers get it: the body is written once, with
    the job as it was then, so every attempt sends (and signs) the same bytes. Its id is the
    ``webhook-id`` of every delivery of it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="webhook_events"
    )
    # Not a foreign key: an event outlives its job (a cancelled job deleted at once still tells).
    job_id = models.UUIDField()
    type = models.CharField(max_length=32, choices=EventType.choices)
    body = models.TextField()
    # The body's timestamp too.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The latest progress event of a job (WEBHOOK_PROGRESS_SECONDS).
            models.Index(fields=["job_id", "type", "created_at"], name="webhook_event_job_idx")
        ]

    def __str__(self):
        return f"{self.type} of job {self.job_id}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


class MessageState(models.TextChoices):
    PENDING = "pending"  # an attempt is due at ``next_attempt_at``
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: retries spent, address refused for good, or endpoint disabled


class Message(models.Model):
    """The outbox: one event for one receiver (an endpoint, or the job's own URL), until it is
    delivered or given up. A pending one is due at ``next_attempt_at``: a worker claims an attempt
    by moving that time on (a conditional UPDATE), so an attempt runs once however often its
    message was published, and one whose worker died is due again when its claim lapses."""

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="messages")
    # None: the job's own receiver, signed with the user's secret.
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    url = models.URLField(max_length=2048)
    state = models.CharField(
        max_length=16, choices=MessageState.choices, default=MessageState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When its task was last handed to the broker; the sweep publishes a due message again only
    # once it became due after that (or the broker held it WEBHOOK_REPUBLISH_SECONDS).
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state=MessageState.PENDING),
                name="webhook_message_due_idx",
            )
        ]

    def __str__(self):
        return f"{self.event} to {self.url}"


class DeliveryStatus(models.TextChoices):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Delivery(models.Model):
    """One attempt at delivering a message: how it went."""

    id = models.BigAutoField(primary_key=True)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
    # The receiver's HTTP status; None when no answer came (refused address, timeout, no route).
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self):
        return f"attempt {self.attempt} of {self.message}: {self.status}"
