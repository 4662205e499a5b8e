"""The writes of webhooks: events written with the change of the job they tell of, in its
transaction (``emit``); their deliveries published, attempted, recorded, retried and given up;
receivers and secrets.

Delivery is at least once. The outbox (``Message``) is the truth, the broker only a wake-up call:
a message is published once its event is committed, and the sweep (``publish_due``, sent by the beat
every WEBHOOK_SWEEP_SECONDS) publishes every message due that the broker does not hold: a retry
whose time came, one whose worker died mid-attempt (its claim lapsed), one lost with the broker.
An attempt is claimed by a conditional UPDATE, so a message published twice is attempted once.
"""

import json
import logging
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder

from accounts.models import User
from accounts.serializers import IsoDateTimeField
from celery_app import app as celery
from hydrilla import metrics
from hydrilla.queues import DELIVER_WEBHOOK
from jobs import remote_images, selectors
from jobs.api.outputs import JobStatus
from jobs.models import Job
from webhooks import signing
from webhooks.models import (
    Delivery,
    DeliveryStatus,
    Endpoint,
    Event,
    EventType,
    Message,
    MessageState,
    SigningSecret,
)

logger = logging.getLogger(__name__)

# Messages the sweep publishes at most at once (the next sweep takes the rest).
SWEEP_BATCH = 1000


# --- Receivers' addresses --------------------------------------------------------------------


class WebhookRefused(Exception):
    """A webhook URL or subscription that cannot be accepted; ``message`` says why, for the
    caller."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _development() -> bool:
    return settings.DEBUG or settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES


def _address_rule():
    """Which resolved addresses a receiver may have (see ``remote_images.resolve_public``)."""
    return (lambda address: True) if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES else None


def check_url(url: str) -> None:
    """Raise WebhookRefused unless ``url`` may receive webhooks now: https (http too in
    development) on public addresses only (any, with WEBHOOK_ALLOW_PRIVATE_ADDRESSES). Every
    attempt checks it again, the address it connects to included."""
    if urlsplit(url).scheme.lower() != "https" and not _development():
        raise WebhookRefused("The webhook URL must be https")
    try:
        remote_images.resolve_public(url, is_allowed=_address_rule())
    except remote_images.UnsafeUrl as exc:
        raise WebhookRefused(f"The webhook URL is not allowed: {exc.reason}") from None


def job_webhook(user: User | None, url: str, events) -> dict:
    """The fields of a new job with its own receiver (a submit's ``webhookUrl``, ``webhookEvents``:
    by default every event but progress), or WebhookRefused. Only a signed-in caller may name
    one: an anonymous job has no owner whose secret could sign it."""
    if not url:
        return {}
    if user is None:
        raise WebhookRefused(
            "webhookUrl needs a signed-in caller: the webhook is signed with the user's secret"
        )
    check_url(url)
    signing_secret(user)  # made now, so that the caller can read it before the first event
    return {"webhook_url": url, "webhook_events": list(events or default_events())}


def default_events() -> list[str]:
    return [event for event in EventType.values if event != EventType.PROGRESS]


# --- Events ----------------------------------------------------------------------------------


def emit(job_id, event_type: str) -> Event | None:
    """Inside the transaction that just changed the job: write the event, with the job as
    ``/api/3d/status`` shows it now, and a message for each receiver subscribed to it (the job's
    own, the owner's endpoints); they are published once the transaction commits. Nothing when
    no receiver wants it, or when it is a job's progress told less than WEBHOOK_PROGRESS_SECONDS
    ago."""
    row = Job.objects.filter(pk=job_id).values("user_id", "webhook_url", "webhook_events").first()
    if row is None or row["user_id"] is None:
        return None
    targets = []
    if row["webhook_url"] and event_type in row["webhook_events"]:
        targets.append((None, row["webhook_url"]))
    targets += [
        (endpoint, endpoint.url)
        for endpoint in Endpoint.objects.filter(user_id=row["user_id"], disabled_at=None).only(
            "id", "url", "events"
        )
        if event_type in endpoint.events
    ]
    if not targets:
        return None
    now = timezone.now()
    if (
        event_type == EventType.PROGRESS
        and Event.objects.filter(
            job_id=job_id,
            type=EventType.PROGRESS,
            created_at__gt=now - timedelta(seconds=settings.WEBHOOK_PROGRESS_SECONDS),
        ).exists()
    ):
        return None
    job = Job.objects.get(pk=job_id)
    try:
        body = _body(job, event_type, now)
    except DatabaseError:
        raise  # the change itself cannot be written either: its caller retries or gives up
    except Exception:
        # A bug in rendering must never stop a job: the change goes on without its event.
        logger.exception(
            "No %s event for job %s: its body could not be rendered", event_type, job_id
        )
        return None
    event = Event.objects.create(
        id=uuid.uuid4(),
        user_id=row["user_id"],
        job_id=job_id,
        type=event_type,
        body=body,
        created_at=now,
    )
    messages = Message.objects.bulk_create(
        Message(event=event, endpoint=endpoint, url=url, next_attempt_at=now)
        for endpoint, url in targets
    )
    ids = [message.pk for message in messages]
    transaction.on_commit(lambda: publish(ids))
    return event


def _body(job: Job, event_type: str, now) -> str:
    """``{"type", "timestamp", "data"}``, ``data`` the body of ``/api/3d/status`` for the job."""
    data = JobStatus.render(
        job, site=settings.SITE_URL or None, queue=selectors.queue_standings().for_job(job)
    )
    payload = {
        "type": event_type,
        "timestamp": IsoDateTimeField().to_representation(now),
        "data": data,
    }
    return json.dumps(payload, cls=JSONEncoder, separators=(",", ":"), ensure_ascii=False)


# --- Publishing ------------------------------------------------------------------------------


def publish(message_ids) -> None:
    """Send each message's attempt to the webhooks queue and mark it sent. While the broker is
    down the rest wait for the sweep."""
    for message_id in message_ids:
        try:
            celery.send_task(DELIVER_WEBHOOK, args=[message_id])
        except Exception as exc:  # kombu raises a zoo of connection errors; all mean "not sent"
            logger.warning("Webhook message %s waits for the sweep: %s", message_id, exc)
            return
        Message.objects.filter(pk=message_id).update(published_at=timezone.now())


def publish_due() -> int:
    """Publish the messages due that the broker does not hold (see the module's docstring);
    returns how many."""
    now = timezone.now()
    not_held = (
        Q(published_at__isnull=True)
        | Q(published_at__lt=F("next_attempt_at"))
        | Q(published_at__lt=now - timedelta(seconds=settings.WEBHOOK_REPUBLISH_SECONDS))
    )
    due = list(
        Message.objects.filter(not_held, state=MessageState.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    publish(due)
    return len(due)


# --- Delivering ------------------------------------------------------------------------------


def deliver(message_id) -> Delivery | None:
    """One attempt at a message that is due: claimed, sent, recorded, and either done or due again
    after the next wait of WEBHOOK_RETRY_SCHEDULE_SECONDS. None when it is not due (delivered,
    given up, its attempt claimed by another worker, or not its time yet)."""
    now = timezone.now()
    # A claim lapses after twice the attempt's time limit: its worker died, and it is due again.
    lease = timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS)
    claimed = Message.objects.filter(
        pk=message_id, state=MessageState.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + lease, attempts=F("attempts") + 1)
    if not claimed:
        return None
    message = Message.objects.select_related("event", "endpoint").get(pk=message_id)
    if message.endpoint is not None and message.endpoint.disabled_at is not None:
        _give_up(message)
        return None
    began = time.monotonic()
    response_status, error = None, ""
    try:
        response_status = _send(message)
    except WebhookRefused as exc:
        error = exc.message
    except remote_images.RemoteImageError as exc:
        error = exc.reason
    return _record(message, response_status, error, round((time.monotonic() - began) * 1000))


def _send(message: Message) -> int:
    if urlsplit(message.url).scheme.lower() != "https" and not _development():
        raise WebhookRefused("The webhook URL must be https")
    event = message.event
    if message.endpoint is not None:
        keys = [message.endpoint.secret]
    else:
        keys = _signing_keys(signing_secret(event.user))
    headers = signing.headers(event.webhook_id, timezone.now(), event.body, keys)
    return remote_images.send(
        message.url,
        event.body.encode(),
        headers,
        time_limit=settings.WEBHOOK_TIMEOUT_SECONDS,
        is_allowed=_address_rule(),
    )


def _record(message: Message, response_status, error: str, duration_ms: int) -> Delivery | None:
    now = timezone.now()
    succeeded = response_status is not None and 200 <= response_status < 300
    if response_status is not None and not succeeded:
        error = f"The receiver answered HTTP {response_status}"
    attempt = message.attempts
    with transaction.atomic():
        if not Message.objects.select_for_update().filter(pk=message.pk).exists():
            return None  # its endpoint was deleted meanwhile: nothing to record it on
        delivery = Delivery.objects.create(
            message=message,
            attempt=attempt,
            status=DeliveryStatus.SUCCEEDED if succeeded else DeliveryStatus.FAILED,
            response_status=response_status,
            error=error[:255],
            duration_ms=duration_ms,
        )
        this_claim = Message.objects.filter(pk=message.pk, attempts=attempt)
        endpoint = Endpoint.objects.filter(pk=message.endpoint_id)
        if succeeded:
            this_claim.update(state=MessageState.DELIVERED, next_attempt_at=None)
            endpoint.update(failing_since=None)
            transaction.on_commit(lambda: metrics.webhook_delivered("delivered"))
            return delivery
        schedule = settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
        if response_status == 410 or attempt > len(schedule):
            this_claim.update(state=MessageState.FAILED, next_attempt_at=None)
            transaction.on_commit(lambda: metrics.webhook_delivered("failed"))
        else:
            wait = timedelta(seconds=schedule[attempt - 1])
            this_claim.update(next_attempt_at=now + wait)
            transaction.on_commit(lambda: metrics.webhook_delivered("retrying"))
        endpoint.filter(failing_since=None).update(failing_since=now)
        if response_status == 410:
            _disable(message.endpoint_id, "It answered 410 Gone")
        elif endpoint.filter(
            failing_since__lt=now - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
        ).exists():
            days = settings.WEBHOOK_DISABLE_AFTER_SECONDS / 86400
            _disable(message.endpoint_id, f"No delivery succeeded for {days:g} days ({error})")
    return delivery


def _give_up(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(state=MessageState.FAILED, next_attempt_at=None)


def _disable(endpoint_id, reason: str) -> None:
    """No more events for the endpoint, and none of those waiting (a job's own receiver is never
    disabled: its 410 ends that message only)."""
    if endpoint_id is None:
        return
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint_id, disabled_at=None).update(
        disabled_at=now, disabled_reason=reason[:255]
    )
    Message.objects.filter(endpoint_id=endpoint_id, state=MessageState.PENDING).update(
        state=MessageState.FAILED, next_attempt_at=None
    )
    logger.warning("Webhook endpoint %s disabled: %s", endpoint_id, reason)


class EndpointDisabled(Exception):
    """The delivery's endpoint is disabled: nothing is sent to it."""


def resend(delivery: Delivery) -> Message:
    """Deliver the delivery's event to its receiver again, now, under the same ``webhook-id``: one
    more attempt, then the retries the schedule has left."""
    message = delivery.message
    if message.endpoint is not None and message.endpoint.disabled_at is not None:
        raise EndpointDisabled(message.endpoint_id)
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(
            state=MessageState.PENDING, next_attempt_at=timezone.now()
        )
        transaction.on_commit(lambda: publish([message.pk]))
    return message


def forget_old_events() -> int:
    """Delete the events older than WEBHOOK_HISTORY_SECONDS whose every delivery is over, with
    their messages and attempts, a batch at a time (each its own short transaction); returns how
    many went."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_HISTORY_SECONDS)
    old = Event.objects.filter(created_at__lt=cutoff).exclude(messages__state=MessageState.PENDING)
    forgotten = 0
    while ids := list(old.values_list("pk", flat=True)[:SWEEP_BATCH]):
        forgotten += Event.objects.filter(pk__in=ids).delete()[1].get(Event._meta.label, 0)
    return forgotten


# --- Secrets and endpoints -------------------------------------------------------------------


def signing_secret(user: User) -> SigningSecret:
    """The user's signing secret, made on first use."""
    secret, _ = SigningSecret.objects.get_or_create(
        user=user, defaults={"secret": signing.new_secret()}
    )
    return secret


def rotate_secret(user: User) -> SigningSecret:
    """A new signing secret; the one it replaces signs too for WEBHOOK_SECRET_ROTATION_SECONDS."""
    with transaction.atomic():
        current = SigningSecret.objects.select_for_update().filter(user=user).first()
        if current is None:
            return signing_secret(user)
        current.previous_secret, current.secret = current.secret, signing.new_secret()
        current.rotated_at = timezone.now()
        current.save()
    return current


def _signing_keys(secret: SigningSecret) -> list[str]:
    rotation = timedelta(seconds=settings.WEBHOOK_SECRET_ROTATION_SECONDS)
    if secret.previous_secret and secret.rotated_at > timezone.now() - rotation:
        return [secret.secret, secret.previous_secret]
    return [secret.secret]


def create_endpoint(user: User, url: str, events=None) -> Endpoint:
    """An account receiver of ``events`` (by default every event but progress) of every job of
    the user's, with a secret of its own; WebhookRefused for a URL that may not receive."""
    check_url(url)
    return Endpoint.objects.create(
        user=user, url=url, events=list(events or default_events()), secret=signing.new_secret()
    )


def delete_endpoint(endpoint: Endpoint) -> None:
    """The endpoint, its messages and their deliveries go: nothing more is sent to it."""
    endpoint.delete()
