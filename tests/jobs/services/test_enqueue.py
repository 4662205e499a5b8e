"""A new job reaches the GPU queue of the real broker once its row is committed, or not at all.

These tests commit for real (``transaction=True``), so that ``transaction.on_commit`` runs.
"""

import time

import pytest
from django.db import transaction

from jobs.models import Job, JobKind, JobState
from jobs.services import clients
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_generate_puts_the_job_on_the_gpu_queue(auth_client, gpu_queue):
    user = UserFactory()
    response = auth_client(user).post("/api/3d/generate", {"prompt": "a brass key"}, format="json")

    assert response.status_code == 200
    job_id = response.json()["jobId"]
    assert Job.objects.get(pk=job_id).state == JobState.PENDING
    [message] = gpu_queue.wait()
    # Its first stage, the prompt's image, with a waiting job's priority.
    assert message.headers["task"] == "generation.text_to_image"
    args, kwargs, _ = message.decode()
    assert (args, kwargs) == ([job_id], {})
    assert (message.delivery_info["routing_key"], message.properties["priority"]) == ("gpu", 0)
    time.sleep(0.05)
    assert gpu_queue.messages() == []  # sent once


def test_the_message_is_sent_only_when_the_transaction_commits(gpu_queue):
    user = UserFactory()
    with transaction.atomic():
        job = clients.create_job(
            api=clients.ApiHalf.JOB, kind=JobKind.TEXT_TO_3D, user=user, prompt="a brass key"
        )
        time.sleep(0.05)
        assert gpu_queue.messages() == []
    [message] = gpu_queue.wait()
    assert message.decode()[0] == [str(job.pk)]


def test_a_rolled_back_job_is_never_sent(gpu_queue):
    user = UserFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        clients.create_job(
            api=clients.ApiHalf.JOB, kind=JobKind.TEXT_TO_3D, user=user, prompt="a brass key"
        )
        raise RuntimeError("the request failed after the job was written")
    time.sleep(0.1)
    assert gpu_queue.messages() == []
    assert not Job.objects.exists()


def test_broker_outage_is_a_503_and_leaves_no_job(auth_client, broker_down):
    user = UserFactory()
    response = auth_client(user).post("/api/3d/generate", {"prompt": "a brass key"}, format="json")

    assert response.status_code == 503
    assert response.json() == {"error": "External service unavailable. Please try again later."}
    assert not Job.objects.exists()
    history = auth_client(user).get("/api/3d/history").json()
    assert history == {"jobs": []}
