"""A real job on real workers tells its receivers as it goes: a loopback receiver gets
job.started, then job.completed, each verified with the Standard Webhooks library, and the
completed one carries the model's URL."""

import json
import time

import pytest
from standardwebhooks import Webhook

from jobs.models import JobKind, JobState
from jobs.services import clients
from tests.generation.test_worker import finished, wait_for, worker_settings
from tests.helpers.processes import WorkerProcess
from tests.webhooks.receiver import Receiver
from webhooks import services

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def workers(tiny_models_dir, settings):
    """Every queue's worker, the webhooks' included, on loopback receivers (and this process's
    check of the job's receiver too)."""
    if not settings.CELERY_BROKER_URL.startswith("amqp://"):
        pytest.skip("needs RabbitMQ (run through scripts/test-services.sh)")
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    process = WorkerProcess(
        queues="gpu,preview,cpu,webhooks",
        env=worker_settings(tiny_models_dir, WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true"),
    )
    yield process.start()
    process.stop()


def test_a_job_s_receiver_gets_started_and_completed_signed_with_its_owner_s_secret(
    workers, receiver, user
):
    account = services.create_endpoint(user, receiver.url + "/account", ["job.completed"])
    job = clients.create_job(
        api=clients.ApiHalf.JOB,
        kind=JobKind.TEXT_TO_3D,
        user=user,
        prompt="a red ceramic mug",
        options=clients.JobOptions(face_count=500),
        webhook_url=receiver.url,
    )

    job = wait_for(job, finished, worker=workers)
    assert job.state == JobState.COMPLETED, job.error_message
    received = receiver.wait(3)
    time.sleep(1)  # nothing more comes
    assert len(receiver.received) == 3

    own = [request for request in received if request.path == "/hooks"]
    secret = services.signing_secret(user).secret
    payloads = [Webhook(secret).verify(request.body, request.headers) for request in own]
    assert [payload["type"] for payload in payloads] == ["job.started", "job.completed"]
    assert [payload["data"]["job"]["status"] for payload in payloads] == ["RUN", "DONE"]
    assert payloads[1]["data"]["job"]["resultGlbUrl"]
    assert {payload["data"]["job"]["id"] for payload in payloads} == {str(job.pk)}

    [to_account] = [request for request in received if request.path == "/hooks/account"]
    completed = Webhook(account.secret).verify(to_account.body, to_account.headers)
    assert completed == json.loads(own[1].body)
    assert to_account.headers["webhook-id"] == own[1].headers["webhook-id"]
