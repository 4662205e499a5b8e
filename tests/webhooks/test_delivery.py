"""Attempts at a delivery, in this process, against loopback receivers: signed so that the
Standard Webhooks library verifies them, retried on the schedule under one webhook-id, recorded,
given up, disabling the endpoint that is gone; the sweep publishes what is due to the real
broker."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

import celery_app
from hydrilla.queues import DELIVER_WEBHOOK, CeleryQueue
from jobs.models import Job, JobState
from tests.factories import JobFactory
from tests.helpers.jobs import start
from tests.jobs.conftest import BrokerSwitch, _read_queue
from webhooks import services
from webhooks.models import (
    Delivery,
    DeliveryStatus,
    Endpoint,
    Event,
    EventType,
    Message,
    MessageState,
)

pytestmark = pytest.mark.django_db


def started(owner, **job_fields) -> Message:
    """A job of ``owner``'s started: the message of its job.started event (one receiver)."""
    job = JobFactory(user=owner, **job_fields)
    start(job.pk)
    return Message.objects.select_related("event").get(event__job_id=job.pk)


def verify(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


@pytest.fixture
def webhooks_queue():
    yield from _read_queue(CeleryQueue.WEBHOOKS)


def test_an_endpoint_s_delivery_is_verified_by_the_standard_webhooks_library(endpoint, receiver):
    hooks = receiver()
    account = endpoint(hooks.url)
    message = started(account.user)

    delivery = services.deliver(message.pk)

    [request] = hooks.wait(1)
    assert request.path == "/hooks"
    payload = verify(account.secret, request)
    assert payload["type"] == "job.started"
    assert payload["data"]["job"]["id"] == str(message.event.job_id)
    assert request.headers["webhook-id"] == message.event.webhook_id
    assert request.headers["Content-Type"] == "application/json"
    assert account.secret.startswith("whsec_")
    assert (delivery.status, delivery.response_status, delivery.attempt) == ("succeeded", 200, 1)
    assert Message.objects.get(pk=message.pk).state == MessageState.DELIVERED
    with pytest.raises(WebhookVerificationError):
        verify(services.signing.new_secret(), request)


def test_a_message_delivered_is_not_attempted_again(endpoint, receiver):
    hooks = receiver()
    message = started(endpoint(hooks.url).user)
    services.deliver(message.pk)

    assert services.deliver(message.pk) is None
    assert len(hooks.received) == 1 and Delivery.objects.count() == 1


def test_a_job_s_own_receiver_is_signed_with_its_owner_s_secret_and_both_during_a_rotation(
    private_receivers, receiver, user, settings
):
    hooks = receiver()
    old = services.signing_secret(user).secret
    new = services.rotate_secret(user).secret
    message = started(user, webhook_url=hooks.url, webhook_events=[EventType.STARTED])

    services.deliver(message.pk)

    [request] = hooks.wait(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(old, request) == verify(new, request)

    settings.WEBHOOK_SECRET_ROTATION_SECONDS = 0  # the rotation is over: the new secret alone
    services.resend(Delivery.objects.get())
    services.deliver(message.pk)
    second = hooks.wait(2)[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    assert verify(new, second)["type"] == "job.started"
    with pytest.raises(WebhookVerificationError):
        verify(old, second)


def test_a_receiver_that_fails_twice_then_succeeds_gets_the_event_three_times_with_one_id(
    endpoint, receiver, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [0, 0, 0]
    hooks = receiver(statuses=[500, 503])
    message = started(endpoint(hooks.url).user)

    for _ in range(3):
        services.deliver(message.pk)

    requests = hooks.wait(3)
    assert len(requests) == 3
    assert {request.headers["webhook-id"] for request in requests} == {message.event.webhook_id}
    assert len({request.body for request in requests}) == 1
    assert list(
        Delivery.objects.order_by("attempt").values_list("attempt", "status", "response_status")
    ) == [(1, "failed", 500), (2, "failed", 503), (3, "succeeded", 200)]
    assert Message.objects.get(pk=message.pk).state == MessageState.DELIVERED


def test_a_failed_attempt_is_due_again_after_the_schedule_s_wait_and_given_up_after_the_last(
    endpoint, receiver, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [300, 0]
    hooks = receiver(statuses=[500, 500, 500])
    message = started(endpoint(hooks.url).user)

    services.deliver(message.pk)
    due = Message.objects.get(pk=message.pk).next_attempt_at
    assert timedelta(seconds=299) < due - timezone.now() <= timedelta(seconds=300)
    assert services.deliver(message.pk) is None  # not yet

    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    services.deliver(message.pk)
    services.deliver(message.pk)

    given_up = Message.objects.get(pk=message.pk)
    assert (given_up.state, given_up.attempts, given_up.next_attempt_at) == ("failed", 3, None)
    assert services.deliver(message.pk) is None
    assert len(hooks.received) == 3


def test_a_410_disables_the_endpoint_with_its_reason_and_ends_what_waited_for_it(
    endpoint, receiver
):
    hooks = receiver(statuses=[410])
    account = endpoint(hooks.url)
    first, second = started(account.user), started(account.user)

    services.deliver(first.pk)

    account.refresh_from_db()
    assert account.disabled_at is not None
    assert account.disabled_reason == "It answered 410 Gone"
    assert set(Message.objects.values_list("state", flat=True)) == {MessageState.FAILED}
    assert services.deliver(second.pk) is None
    start(JobFactory(user=account.user).pk)
    assert Message.objects.count() == 2  # nothing more for a disabled endpoint
    assert len(hooks.received) == 1
    with pytest.raises(services.EndpointDisabled):
        services.resend(Delivery.objects.get())


def test_an_endpoint_failing_for_days_is_disabled_and_a_success_clears_its_failures(
    endpoint, receiver, settings
):
    hooks = receiver(statuses=[500, 500])
    account = endpoint(hooks.url)
    healthy = endpoint(receiver().url)
    Endpoint.objects.filter(pk=healthy.pk).update(failing_since=timezone.now() - timedelta(days=9))
    services.deliver(started(healthy.user).pk)
    assert Endpoint.objects.get(pk=healthy.pk).failing_since is None

    services.deliver(started(account.user).pk)
    account.refresh_from_db()
    assert account.disabled_at is None and account.failing_since is not None

    Endpoint.objects.filter(pk=account.pk).update(failing_since=timezone.now() - timedelta(days=6))
    services.deliver(started(account.user).pk)
    account.refresh_from_db()
    assert account.disabled_at is not None
    assert account.disabled_reason == (
        "No delivery succeeded for 5 days (The receiver answered HTTP 500)"
    )


def test_a_redirect_is_not_followed(endpoint, receiver):
    hooks = receiver(statuses=[302])
    delivery = services.deliver(started(endpoint(hooks.url).user).pk)

    assert len(hooks.wait(1)) == 1
    assert (delivery.status, delivery.response_status) == ("failed", 302)
    assert delivery.error == "The receiver answered HTTP 302"


def test_a_receiver_that_does_not_answer_in_time_fails_the_attempt(endpoint, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    hold = threading.Event()
    hooks = receiver(hold=hold)
    message = started(endpoint(hooks.url).user)

    delivery = services.deliver(message.pk)
    hold.set()

    assert (delivery.status, delivery.response_status) == ("failed", None)
    assert delivery.error == "the transfer took too long"
    assert delivery.duration_ms < 2000
    assert Message.objects.get(pk=message.pk).state == MessageState.PENDING


def test_a_resend_delivers_the_event_again_under_the_same_webhook_id(endpoint, receiver):
    hooks = receiver()
    message = started(endpoint(hooks.url).user)
    services.deliver(message.pk)

    services.resend(Delivery.objects.get())
    services.deliver(message.pk)

    first, second = hooks.wait(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert list(Delivery.objects.values_list("attempt", flat=True).order_by("attempt")) == [1, 2]


# --- Addresses -------------------------------------------------------------------------------


@pytest.fixture
def hook_names(names):
    names["hooks.example.com"] = ["93.184.215.34"]
    names["hooks.internal.example.com"] = ["10.1.2.3"]
    return names


def test_a_public_https_receiver_is_accepted_and_private_or_plain_http_ones_are_not(hook_names):
    services.check_url("https://hooks.example.com/in")
    refusals = {
        "http://hooks.example.com/in": "The webhook URL must be https",
        "https://hooks.internal.example.com/in": "The webhook URL is not allowed: "
        "hooks.internal.example.com is not a public host",
        "https://127.0.0.1/in": "The webhook URL is not allowed: 127.0.0.1 is not a public host",
        "https://nowhere.example.com/in": "The webhook URL is not allowed: "
        "nowhere.example.com is not a public host",
        "ftp://hooks.example.com/in": "The webhook URL must be https",
    }
    for url, reason in refusals.items():
        with pytest.raises(services.WebhookRefused) as refused:
            services.check_url(url)
        assert refused.value.message == reason, url


def test_loopback_and_http_receivers_are_accepted_in_development_only(hook_names, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    services.check_url("http://127.0.0.1:8000/in")
    services.check_url("http://hooks.internal.example.com/in")

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    settings.DEBUG = True  # development: http, but still public addresses only
    services.check_url("http://hooks.example.com/in")
    with pytest.raises(services.WebhookRefused):
        services.check_url("http://127.0.0.1:8000/in")


def test_every_attempt_checks_the_address_again_and_connects_to_none_refused(
    hook_names, receiver, user
):
    hooks = receiver()
    port = hooks.url.split(":")[2].split("/")[0]
    message = started(
        user, webhook_url="https://hooks.example.com/in", webhook_events=["job.started"]
    )
    # The name now resolves to a private address (a rebinding), then to loopback.
    hook_names["hooks.example.com"] = ["10.9.8.7"]
    first = services.deliver(message.pk)
    Message.objects.filter(pk=message.pk).update(
        url=f"https://hooks.example.com:{port}/in", next_attempt_at=timezone.now()
    )
    hook_names["hooks.example.com"] = ["127.0.0.1"]
    second = services.deliver(message.pk)

    for delivery in (first, second):
        assert (delivery.status, delivery.response_status) == ("failed", None)
        assert delivery.error == "hooks.example.com is not a public host"
    assert hooks.received == []  # and the guard saw no connection beyond loopback


def test_a_receiver_s_name_is_resolved_once_and_its_address_is_the_one_connected_to(
    private_receivers, hook_names, receiver, user
):
    hooks = receiver()
    port = hooks.url.split(":")[2].split("/")[0]
    hook_names["receiver.test"] = ["127.0.0.1"]
    url = f"http://receiver.test:{port}/in"
    message = started(user, webhook_url=url, webhook_events=["job.started"])

    assert services.deliver(message.pk).status == DeliveryStatus.SUCCEEDED
    [request] = hooks.wait(1)
    assert request.headers["Host"] == f"receiver.test:{port}"


def test_a_plain_http_receiver_is_refused_at_the_attempt_outside_development(user, hook_names):
    message = started(
        user, webhook_url="http://hooks.example.com/in", webhook_events=["job.started"]
    )

    delivery = services.deliver(message.pk)

    assert (delivery.status, delivery.error) == ("failed", "The webhook URL must be https")


# --- The sweep -------------------------------------------------------------------------------


def test_the_sweep_publishes_what_is_due_and_not_held_by_the_broker(
    endpoint, receiver, webhooks_queue, settings, django_capture_on_commit_callbacks
):
    account = endpoint(receiver().url)
    with django_capture_on_commit_callbacks(execute=True):
        fresh = started(account.user)  # published once committed
    assert [m.decode()[0] for m in webhooks_queue.wait(1)] == [[fresh.pk]]
    assert webhooks_queue.messages() == []

    now = timezone.now()
    never_sent = started(account.user)
    lapsed = started(account.user)  # its worker died: claimed, then the claim lapsed
    Message.objects.filter(pk=lapsed.pk).update(
        attempts=1, published_at=now - timedelta(minutes=1), next_attempt_at=now
    )
    lost = started(account.user)  # sent, never taken: lost with the broker
    Message.objects.filter(pk=lost.pk).update(
        published_at=now - timedelta(seconds=settings.WEBHOOK_REPUBLISH_SECONDS + 1),
        next_attempt_at=now - timedelta(hours=1),
    )
    held = started(account.user)  # sent after it became due: the broker has it
    Message.objects.filter(pk=held.pk).update(
        published_at=now, next_attempt_at=now - timedelta(seconds=1)
    )
    later = started(account.user)
    Message.objects.filter(pk=later.pk).update(next_attempt_at=now + timedelta(minutes=5))

    assert services.publish_due() == 3
    published = {m.decode()[0][0] for m in webhooks_queue.wait(3)}
    assert published == {never_sent.pk, lapsed.pk, lost.pk}
    assert services.publish_due() == 0  # each published once
    assert webhooks_queue.messages() == []
    assert Message.objects.get(pk=never_sent.pk).published_at is not None


def test_deliveries_and_the_sweep_go_to_the_webhooks_queue_every_few_seconds(settings):
    assert settings.CELERY_TASK_ROUTES[DELIVER_WEBHOOK] == {"queue": CeleryQueue.WEBHOOKS}
    sweep = settings.CELERY_BEAT_SCHEDULE["sweep-webhooks"]
    assert settings.CELERY_TASK_ROUTES[sweep["task"]] == {"queue": CeleryQueue.WEBHOOKS}
    assert sweep["schedule"] == settings.WEBHOOK_SWEEP_SECONDS == 5.0


@pytest.mark.embedded
def test_an_event_is_written_and_delivered_on_the_embedded_defaults_too(endpoint, receiver):
    hooks = receiver()
    account = endpoint(hooks.url)
    message = started(account.user)  # SQLite returns the messages' ids from their bulk insert

    assert services.deliver(message.pk).status == DeliveryStatus.SUCCEEDED
    assert verify(account.secret, hooks.wait(1)[0])["type"] == "job.started"


def test_events_whose_deliveries_are_over_are_forgotten_after_the_history_s_time(
    endpoint, receiver, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [0]
    account = endpoint(receiver().url)
    delivered, waiting, recent = (started(account.user) for _ in range(3))
    services.deliver(delivered.pk)
    services.deliver(recent.pk)
    month_ago = timezone.now() - timedelta(days=31)
    Event.objects.exclude(pk=recent.event_id).update(created_at=month_ago)

    assert services.forget_old_events() == 1

    assert set(Event.objects.values_list("pk", flat=True)) == {waiting.event_id, recent.event_id}
    assert not Delivery.objects.filter(message=delivered.pk).exists()


def test_an_event_committed_while_the_broker_is_down_is_published_once_it_is_back(
    endpoint, receiver, webhooks_queue, monkeypatch, django_capture_on_commit_callbacks
):
    broker = BrokerSwitch(monkeypatch)
    monkeypatch.setattr(services, "celery", broker.outage)
    account = endpoint(receiver().url)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            message = started(account.user)  # the job's change commits; the publish fails
    finally:
        broker.close()

    assert Job.objects.get(pk=message.event.job_id).state == JobState.PROCESSING
    assert Message.objects.get(pk=message.pk).published_at is None
    monkeypatch.setattr(services, "celery", celery_app.app)
    assert services.publish_due() == 1
    assert [m.decode()[0] for m in webhooks_queue.wait(1)] == [[message.pk]]
