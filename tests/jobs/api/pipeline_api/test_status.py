"""GET /status/:jobId and the one job behind both halves: whichever half created a job, both show
it in every state, each in its own words (WAIT=pending, RUN=processing, DONE=completed,
FAIL=failed or cancelled)."""

import time
import uuid

import pytest

from jobs.models import Job, JobKind, JobState
from jobs.services import clients, workers
from tests.factories import JobFactory
from tests.helpers.jobs import fail, finish_3d, finish_preview, start
from tests.helpers.schema import assert_matches_schema

pytestmark = pytest.mark.django_db

NODE_WORD = {
    "pending": "WAIT",
    "processing": "RUN",
    "completed": "DONE",
    "failed": "FAIL",
    "cancelled": "FAIL",
}


def generation_status(client, job_id) -> dict:
    response = client.get(f"/status/{job_id}")
    assert response.status_code == 200, response.content
    return assert_matches_schema(response, "/status/{job_id}")


def job_api_status(client, job_id) -> dict:
    response = client.get(f"/api/3d/status/{job_id}")
    assert response.status_code == 200, response.content
    return assert_matches_schema(response, "/api/3d/status/{job_id}")


def drive(job_id, state: str) -> None:
    """Take a pending job to ``state`` as a worker (or a cancelling user) would."""
    if state == "pending":
        return
    if state == "cancelled":
        clients.request_cancel(Job.objects.get(pk=job_id))
        return
    lease = start(job_id)
    if state == "processing":
        assert workers.report_progress(lease, 42, "Generating 3D mesh…")
    elif state == "completed":
        finish_3d(job_id, lease)
    elif state == "failed":
        fail(job_id, lease)


STATES = ["pending", "processing", "completed", "failed", "cancelled"]


@pytest.mark.parametrize("state", STATES)
def test_a_job_made_by_text_to_3d_reads_the_same_through_the_job_api(auth_client, user, state):
    client = auth_client(user)
    job_id = client.post("/text-to-3d", {"prompt": "A red sports car"}).json()["job_id"]
    drive(job_id, state)

    python_half = generation_status(client, job_id)
    node_half = job_api_status(client, job_id)

    record = node_half["job"]
    assert python_half["status"] == state
    assert record["status"] == NODE_WORD[state]
    assert record["id"] == python_half["job_id"] == job_id
    assert record["userId"] == python_half["user_id"] == user.pk
    assert record["prompt"] == "A red sports car"
    assert record["progress"] == python_half["progress"]
    assert record["message"] == python_half["message"]
    assert node_half["queue"] == python_half["queue"]
    if state == "completed":
        assert record["resultGlbUrl"] == python_half["result"]["mesh_url"]
    else:
        assert record["resultGlbUrl"] is None and "result" not in python_half
    if state in ("failed", "cancelled"):
        assert record["errorMessage"] == python_half["error"]
        assert record["errorCode"] == python_half["error_code"]
    else:
        assert record["errorMessage"] is None and "error" not in python_half


@pytest.mark.parametrize("state", STATES)
def test_a_job_made_by_the_job_api_reads_the_same_through_status(auth_client, user, state):
    client = auth_client(user)
    job_id = client.post("/api/3d/generate", {"prompt": "a brass lamp"}, format="json").json()[
        "jobId"
    ]
    drive(job_id, state)

    assert job_api_status(client, job_id)["job"]["status"] == NODE_WORD[state]
    python_half = generation_status(client, job_id)
    assert (python_half["job_id"], python_half["status"], python_half["user_id"]) == (
        job_id,
        state,
        user.pk,
    )


def test_a_pending_job_shows_its_place_in_the_queue(api_client):
    running = JobFactory(state=JobState.PROCESSING, started_at=None)
    first = api_client.post("/text-to-3d", {"prompt": "first"}).json()["job_id"]
    second = api_client.post("/text-to-3d", {"prompt": "second"}).json()["job_id"]

    body = generation_status(api_client, second)

    assert body["queue"] == {
        "position": 2,
        "jobs_ahead": 2,  # the first waiting job and the running one
        "estimated_wait_seconds": 260,
        "estimated_total_seconds": 390,
        "queue_length": 2,
        "currently_processing": True,
    }
    assert generation_status(api_client, first)["queue"]["position"] == 1
    assert running.state == JobState.PROCESSING


def test_status_has_unix_seconds_and_the_running_jobs_progress(api_client):
    before = int(time.time())
    job_id = api_client.post("/text-to-3d", {"prompt": "a drum"}).json()["job_id"]
    lease = start(job_id)
    workers.report_progress(lease, 50, "Generating 3D mesh…")

    body = generation_status(api_client, job_id)

    assert (body["status"], body["progress"], body["message"]) == (
        "processing",
        50,
        "Generating 3D mesh…",
    )
    assert before <= body["created_at"] <= body["updated_at"] <= int(time.time())
    assert body["queue"]["position"] == 0 and body["queue"]["currently_processing"] is True


def test_a_completed_3d_job_has_its_result(api_client):
    job_id = api_client.post("/text-to-3d", {"prompt": "a chair"}).json()["job_id"]
    finish_3d(job_id, start(job_id))

    result = generation_status(api_client, job_id)["result"]

    assert result["job_id"] == job_id
    assert (result["mode"], result["prompt"]) == ("text-to-3d", "a chair")
    assert result["mesh_url"].startswith("http") and result["mesh_url"].split("?")[0].endswith(
        "/model.glb"
    )
    assert result["processed_image_url"].split("?")[0].endswith("/processed.png")
    assert isinstance(result["elapsed_seconds"], float) and result["elapsed_seconds"] >= 0


def test_a_completed_image_to_3d_job_has_no_generated_image(api_client):
    job_id = api_client.post(
        "/image-to-3d", {"image_url": "https://images.example.com/a.png"}
    ).json()["job_id"]
    finish_3d(job_id, start(job_id))

    result = generation_status(api_client, job_id)["result"]

    assert result["mode"] == "image-to-3d" and result["prompt"] is None
    assert "generated_image_url" not in result and "mesh_url" in result


def test_a_completed_preview_has_its_image(api_client):
    job = JobFactory(kind=JobKind.PREVIEW, user=None)
    finish_preview(job.pk, start(job.pk))

    result = generation_status(api_client, job.pk)["result"]

    assert result["mode"] == "text-to-image"
    assert result["generated_image_url"].split("?")[0].endswith("/preview.png")


def test_a_failed_job_says_why(api_client):
    job_id = api_client.post("/text-to-3d", {"prompt": "a tree"}).json()["job_id"]
    fail(job_id, start(job_id), code="GPU_OUT_OF_MEMORY", message="The GPU ran out of memory")

    body = generation_status(api_client, job_id)

    assert (body["status"], body["error"], body["error_code"]) == (
        "failed",
        "The GPU ran out of memory",
        "GPU_OUT_OF_MEMORY",
    )


@pytest.mark.parametrize("job_id", [uuid.uuid4(), "not-a-uuid", "1"])
def test_an_unknown_job_is_a_404(api_client, job_id):
    response = api_client.get(f"/status/{job_id}")

    assert response.status_code == 404
    assert assert_matches_schema(response, "/status/{job_id}") == {"error": "Job not found"}


def test_status_ignores_tokens_even_stale_ones(api_client, user):
    """The id is the capability; a client with an expired session can still follow its job."""
    job = JobFactory(user=user)
    api_client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")

    response = api_client.get(f"/status/{job.pk}")

    assert response.status_code == 200 and response.json()["user_id"] == user.pk
    assert api_client.get(f"/api/3d/status/{job.pk}").status_code == 401  # the job API checks
