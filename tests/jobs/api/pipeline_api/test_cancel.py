"""POST /cancel/:jobId: a waiting job never starts, a running one stops at its next step, only
its owner (or staff) may cancel an owned job, and an ended job cannot be cancelled."""

import uuid

import pytest

from generation import processes
from jobs.models import Job, JobState, Stage
from jobs.services import workers
from tests.factories import JobFactory, UserFactory
from tests.helpers.jobs import fail, finish_3d, start
from tests.helpers.schema import assert_matches_schema

pytestmark = pytest.mark.django_db

CANCELLED_BODY = {
    "status": "cancelled",
    "message": "Job cancellation requested. It will stop at the next checkpoint.",
}


def cancel(client, job_id):
    return client.post(f"/cancel/{job_id}")


def assert_cancel_accepted(response, job_id):
    assert response.status_code == 200, response.content
    assert assert_matches_schema(response, "/cancel/{job_id}", "POST") == {
        "job_id": str(job_id),
        **CANCELLED_BODY,
    }


def test_a_pending_job_is_cancelled_and_never_starts(api_client):
    job_id = api_client.post("/text-to-3d", {"prompt": "a boat"}).json()["job_id"]

    assert_cancel_accepted(cancel(api_client, job_id), job_id)

    # the worker's delivery is dropped
    assert (
        workers.claim_stage(
            job_id, Stage.TEXT_TO_IMAGE, worker="gpu@test", process=processes.current()
        )
        is None
    )
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.attempts, job.started_at) == (JobState.CANCELLED, 0, None)
    status = api_client.get(f"/status/{job_id}").json()
    assert (status["status"], status["error"], status["error_code"]) == (
        "cancelled",
        "Job was cancelled",
        "CANCELLED",
    )


def test_a_running_job_is_asked_to_stop_at_its_next_step(api_client):
    job_id = api_client.post("/text-to-3d", {"prompt": "a boat"}).json()["job_id"]
    lease = start(job_id)

    assert_cancel_accepted(cancel(api_client, job_id), job_id)

    job = Job.objects.get(pk=job_id)
    assert (job.state, job.cancel_requested) == (JobState.PROCESSING, True)
    assert workers.report_progress(lease, 60, "Generating 3D mesh…") is False
    assert workers.complete_job(lease, result_glb="x.glb") is False
    assert (
        workers.end_job_unsuccessfully(lease, code="CANCELLED", message="stopped")
        == JobState.CANCELLED
    )
    assert api_client.get(f"/status/{job_id}").json()["status"] == "cancelled"
    assert api_client.get(f"/api/3d/status/{job_id}").json()["job"]["status"] == "FAIL"


def test_cancelling_twice_while_it_stops_is_accepted(api_client):
    job_id = api_client.post("/text-to-3d", {"prompt": "a boat"}).json()["job_id"]
    start(job_id)

    assert_cancel_accepted(cancel(api_client, job_id), job_id)
    assert_cancel_accepted(cancel(api_client, job_id), job_id)


@pytest.mark.parametrize("end", ["completed", "failed", "cancelled"])
def test_an_ended_job_cannot_be_cancelled(api_client, end):
    job_id = api_client.post("/text-to-3d", {"prompt": "a boat"}).json()["job_id"]
    if end == "cancelled":
        cancel(api_client, job_id)
    else:
        lease = start(job_id)
        finish_3d(job_id, lease) if end == "completed" else fail(job_id, lease)

    response = cancel(api_client, job_id)

    assert response.status_code == 409
    assert assert_matches_schema(response, "/cancel/{job_id}", "POST") == {
        "error": f"Job has already finished ({end}) and cannot be cancelled"
    }
    assert Job.objects.get(pk=job_id).state == end


def test_an_owned_job_is_cancelled_by_its_owner_only(api_client, auth_client, user):
    job = JobFactory(user=user)

    for stranger in (api_client, auth_client(UserFactory())):
        response = cancel(stranger, job.pk)
        assert response.status_code == 403
        assert assert_matches_schema(response, "/cancel/{job_id}", "POST") == {
            "error": "You don't have permission to cancel this job"
        }
        assert Job.objects.get(pk=job.pk).state == JobState.PENDING

    assert_cancel_accepted(cancel(auth_client(user), job.pk), job.pk)
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED


def test_staff_may_cancel_anyones_job(auth_client, user):
    job = JobFactory(user=user)

    assert_cancel_accepted(cancel(auth_client(UserFactory(is_staff=True)), job.pk), job.pk)


@pytest.mark.parametrize("job_id", [uuid.uuid4(), "nope"])
def test_cancelling_an_unknown_job_is_a_404(api_client, job_id):
    response = cancel(api_client, job_id)

    assert response.status_code == 404
    assert assert_matches_schema(response, "/cancel/{job_id}", "POST") == {"error": "Job not found"}


def test_cancel_is_post_only(api_client):
    job = JobFactory(user=None)

    assert api_client.get(f"/cancel/{job.pk}").status_code == 405
    assert Job.objects.get(pk=job.pk).state == JobState.PENDING
