"""Deliveries by a real webhooks worker over RabbitMQ, the test standing in for the beat (it sends
the sweep): retries reach the receiver under one webhook-id, and a worker killed mid-attempt loses
no event."""

import threading
import time

import pytest
from standardwebhooks import Webhook

from tests.factories import JobFactory, UserFactory
from tests.helpers.jobs import start
from tests.helpers.processes import WorkerProcess
from webhooks import services
from webhooks.models import Delivery, Message, MessageState

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def webhooks_worker(settings):
    if not settings.CELERY_BROKER_URL.startswith("amqp://"):
        pytest.skip("needs RabbitMQ (run through scripts/test-services.sh)")
    started = []

    def make(timeout_seconds: float = 5) -> WorkerProcess:
        worker = WorkerProcess(
            queues="webhooks",
            env={
                "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
                "WEBHOOK_RETRY_SCHEDULE_SECONDS": "0.2,0.2,0.2",
                "WEBHOOK_TIMEOUT_SECONDS": str(timeout_seconds),
                "PRELOAD_MODELS": "",
            },
        )
        started.append(worker)
        return worker.start()

    yield make
    for worker in started:
        worker.stop()


def sweep_until_delivered(message_id, timeout: float = 60) -> Message:
    """What the beat does every WEBHOOK_SWEEP_SECONDS, here every 0.2 s, until the message is
    delivered."""
    deadline = time.monotonic() + timeout
    while (message := Message.objects.get(pk=message_id)).state != MessageState.DELIVERED:
        assert time.monotonic() < deadline, f"not delivered: {message.state}, {message.attempts}"
        services.publish_due()
        time.sleep(0.2)
    return message


def started_job_message(account) -> Message:
    job = JobFactory(user=account.user)
    start(job.pk)  # committed: its job.started event is published to the worker
    return Message.objects.select_related("event").get(event__job_id=job.pk)


def test_a_receiver_that_fails_twice_then_succeeds_gets_the_event_three_times_with_one_id(
    webhooks_worker, endpoint, receiver
):
    webhooks_worker()
    hooks = receiver(statuses=[500, 503])
    account = endpoint(hooks.url)

    message = sweep_until_delivered(started_job_message(account).pk)

    requests = hooks.wait(3)
    assert len(requests) == 3
    assert {request.headers["webhook-id"] for request in requests} == {message.event.webhook_id}
    for request in requests:
        assert Webhook(account.secret).verify(request.body, request.headers)["type"] == (
            "job.started"
        )
    assert list(Delivery.objects.order_by("attempt").values_list("attempt", "response_status")) == [
        (1, 500),
        (2, 503),
        (3, 200),
    ]


def test_a_worker_killed_mid_delivery_loses_no_event(webhooks_worker, endpoint, receiver):
    answer = threading.Event()
    hooks = receiver(hold=answer)
    account = endpoint(hooks.url, user=UserFactory())
    first_worker = webhooks_worker(timeout_seconds=2)
    message = started_job_message(account)
    hooks.wait(1)  # the attempt is in flight: the receiver holds its answer

    first_worker.kill()
    answer.set()
    webhooks_worker(timeout_seconds=2)  # gets the message back from RabbitMQ: not due, dropped
    delivered = sweep_until_delivered(message.pk)  # due again once the dead attempt's claim lapses

    first, second = hooks.wait(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message.event.webhook_id
    assert first.body == second.body
    assert delivered.attempts == 2
    # The killed attempt left no record; the one that delivered did.
    assert list(Delivery.objects.values_list("attempt", "status")) == [(2, "succeeded")]
