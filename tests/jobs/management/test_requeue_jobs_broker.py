"""A requeue reaches the real broker: its first stage's task, on the ``gpu`` queue, with the job's
id.

Other suites may publish to ``gpu`` (or consume it) on the same broker at the same time, so the
queue is read without consuming what isn't ours: other messages stay unacknowledged until the
channel closes, and the broker then puts them back.
"""

import time
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from kombu import Queue

from celery_app import app as celery
from hydrilla.queues import CeleryQueue
from jobs.models import Job, JobState, Stage
from jobs.plan import stage_task
from tests.factories import JobFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("amqp"),
        reason="needs RabbitMQ (scripts/test-services.sh)",
    ),
]


def take_task_for(job_id: str, queue: str, timeout: float = 10.0) -> dict | None:
    """The headers of the message for ``job_id`` on ``queue``, taken off it; None if none came."""
    with celery.connection_for_write() as connection:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = Queue(queue, channel=channel).get(no_ack=False)
            if message is None:
                time.sleep(0.1)
                continue
            args, _kwargs, _embed = message.decode()
            if args == [job_id]:
                message.ack()
                return message.headers
    return None


def requeue(job) -> list[str]:
    out = StringIO()
    call_command("requeue_jobs", str(job.pk), stdout=out)
    return out.getvalue().splitlines()


def test_a_requeued_3d_job_is_on_the_gpu_queue():
    job = JobFactory(failed=True)

    assert requeue(job)[-1] == "1 requeued"

    headers = take_task_for(str(job.pk), CeleryQueue.GPU)
    assert headers is not None, "the job's message never reached the gpu queue"
    assert headers["task"] == stage_task(Stage.TEXT_TO_IMAGE)
    assert Job.objects.get(pk=job.pk).state == JobState.PENDING


def test_a_broker_that_refuses_leaves_the_job_waiting_and_says_so(monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(celery, "send_task", refuse)
    job = JobFactory(failed=True)

    assert requeue(job) == [
        f"{job.pk} text-to-3d FAIL (failed): reset to waiting but not queued: broker unavailable",
        "1 reset to waiting but not queued: broker unavailable",
    ]
    # Waiting with no message: ``requeue_jobs --stuck`` (or naming it again) queues it later.
    assert Job.objects.get(pk=job.pk).state == JobState.PENDING
