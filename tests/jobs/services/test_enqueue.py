"""A new job reaches the GPU queue of the real broker once its row is committed, or not at all.

These tests commit for real (``transaction=True``), so that ``transaction.on_commit`` runs.
"""

import time

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from accounts import api_keys
from generation import runner
from generation.tasks import STAGE_TASKS
from hydrilla.queues import REQUEST_ID_HEADER
from hydrilla.request_id import current
from jobs import plan
from jobs.models import Job, JobKind, JobState, Stage
from jobs.services import clients, workers
from tests.factories import UserFactory
from tests.helpers.jobs import claim, end_stage

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


def test_every_stage_message_carries_the_id_of_the_request_that_made_the_job(
    auth_client, gpu_queue, cpu_queue
):
    user = UserFactory()
    response = auth_client(user).post(
        "/api/3d/generate",
        {"imageUrl": "https://images.example.com/chair.png"},
        format="json",
        headers={"X-Request-ID": "trace-7"},
    )
    job_id = response.json()["jobId"]
    [prepare] = cpu_queue.wait()
    end_stage(claim(job_id))  # the next stage's message, sent by a worker
    [image_to_3d] = gpu_queue.wait()

    assert Job.objects.get(pk=job_id).request_id == "trace-7"
    assert prepare.headers[REQUEST_ID_HEADER] == image_to_3d.headers[REQUEST_ID_HEADER] == "trace-7"


def test_a_stage_s_task_logs_under_the_request_id_its_message_carries(monkeypatch, caplog):
    seen = []
    monkeypatch.setattr(runner, "run_stage", lambda *args, **kwargs: seen.append(current()))

    STAGE_TASKS[Stage.FINISH].apply(args=["some-job"], headers={REQUEST_ID_HEADER: "trace-9"})
    STAGE_TASKS[Stage.FINISH].apply(args=["made-by-no-request"])

    assert seen == ["trace-9", ""]


def test_a_test_keys_job_never_reaches_the_gpu_queue(gpu_queue, cpu_queue):
    """Each stage of a text-to-3D job, two of them model calls, goes to the CPU queue, handed on
    by the worker of the stage before as in production."""
    user = UserFactory()
    _, key = api_keys.create_key(user, name="CI", mode="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    job_id = client.post("/api/3d/generate", {"prompt": "a brass key"}, format="json").json()[
        "jobId"
    ]
    sent = []
    for stage in plan.stages(JobKind.TEXT_TO_3D):
        [message] = cpu_queue.wait()
        sent.append(message.headers["task"])
        lease = claim(job_id)
        if plan.after(JobKind.TEXT_TO_3D, stage) is None:
            assert workers.complete_job(lease, result_glb=f"jobs/{job_id}/model.glb")
        else:
            assert end_stage(lease)
    time.sleep(0.1)

    assert sent == [plan.stage_task(stage) for stage in plan.stages(JobKind.TEXT_TO_3D)]
    assert gpu_queue.messages() == []
    assert Job.objects.get(pk=job_id).state == JobState.COMPLETED


def test_a_test_keys_preview_runs_on_the_cpu_queue_too(cpu_queue, monkeypatch, settings):
    user = UserFactory()
    _, key = api_keys.create_key(user, name="CI", mode="test")
    settings.PREVIEW_WAIT_SECONDS = 0
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    response = client.post("/text-to-image", {"prompt": "a brass key"}, format="json")

    [message] = cpu_queue.wait()
    assert message.headers["task"] == plan.stage_task(Stage.PREVIEW)
    assert message.decode()[0] == [response.json()["preview_id"]]
