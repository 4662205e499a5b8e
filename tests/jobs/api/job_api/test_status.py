"""GET /api/3d/status/:jobId: the job record, who may see it, and where it stands in its queue."""

import re
import time
import uuid
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import selectors
from jobs.models import JobKind, JobState
from tests.factories import JobFactory, UserFactory
from tests.helpers.clock import backdate
from tests.helpers.job_api import BACKEND_JOB_FIELDS

QUEUE_FIELDS = {
    "position",
    "jobs_ahead",
    "estimated_wait_seconds",
    "estimated_total_seconds",
    "queue_length",
    "currently_processing",
}
# As JavaScript's Date.prototype.toISOString writes it: UTC, milliseconds, "Z".
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def status(client, job_id):
    return client.get(f"/api/3d/status/{job_id}")


def to_milliseconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_iso(value: str) -> datetime:
    assert ISO_UTC.fullmatch(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_the_job_record_has_every_backend_job_field(auth_client, user):
    job = JobFactory(
        user=user,
        state=JobState.COMPLETED,
        prompt="A red sports car",
        generate_type="Geometry",
        face_count=20000,
        enable_pbr=True,
        polygon_type="triangle",
        name="My 3D Model",
        result_glb="results/car.glb",
        preview_image="previews/car.png",
    )

    response = status(auth_client(user), job.pk)

    assert response.status_code == 200
    body = response.json()
    # formats and printability: additions (tests/jobs/api/job_api/test_download.py, test_catalogue)
    assert set(body) == {"job", "queue", "formats", "printability"}
    assert body["printability"] is None  # not DONE
    record = body["job"]
    assert set(record) >= BACKEND_JOB_FIELDS
    urls_and_times = {"resultGlbUrl", "previewImageUrl", "createdAt", "updatedAt"}
    assert {key: record[key] for key in BACKEND_JOB_FIELDS - urls_and_times} == {
        "id": str(job.pk),
        "userId": user.pk,
        "status": "DONE",
        "prompt": "A red sports car",
        "imageUrl": None,
        "generateType": "Geometry",
        "faceCount": 20000,
        "enablePBR": True,
        "polygonType": "triangle",
        "errorCode": None,
        "errorMessage": None,
        "name": "My 3D Model",
    }
    assert record["resultGlbUrl"].startswith("http") and "results/car.glb" in record["resultGlbUrl"]
    assert (
        record["previewImageUrl"].startswith("http")
        and "previews/car.png" in record["previewImageUrl"]
    )
    job.refresh_from_db()
    assert parse_iso(record["createdAt"]) == to_milliseconds(job.created_at)
    assert parse_iso(record["updatedAt"]) == to_milliseconds(job.updated_at)


def test_a_job_without_files_has_null_urls(auth_client, user):
    record = status(auth_client(user), JobFactory(user=user).pk).json()["job"]
    assert (record["resultGlbUrl"], record["previewImageUrl"], record["name"]) == (None, None, None)


@pytest.mark.parametrize(
    "state, word",
    [
        (JobState.PENDING, "WAIT"),
        (JobState.PROCESSING, "RUN"),
        (JobState.COMPLETED, "DONE"),
        (JobState.FAILED, "FAIL"),
        (JobState.CANCELLED, "FAIL"),
    ],
)
def test_states_are_shown_with_the_spec_words(auth_client, user, state, word):
    job = JobFactory(user=user, state=state)
    assert status(auth_client(user), job.pk).json()["job"]["status"] == word


def test_a_failed_job_shows_its_error(auth_client, user):
    job = JobFactory(
        user=user,
        state=JobState.FAILED,
        error_code="GPU_OUT_OF_MEMORY",
        error_message="GPU ran out of memory",
    )
    record = status(auth_client(user), job.pk).json()["job"]
    assert (record["status"], record["errorCode"], record["errorMessage"]) == (
        "FAIL",
        "GPU_OUT_OF_MEMORY",
        "GPU ran out of memory",
    )


# --- Who may see a job -----------------------------------------------------------------------


def test_an_owned_job_is_hidden_from_other_users_and_anonymous_callers(
    auth_client, api_client, user
):
    job = JobFactory(user=user)
    for client in (auth_client(UserFactory()), api_client):
        response = status(client, job.pk)
        assert response.status_code == 403
        assert response.json() == {"error": "You don't have permission to view this job"}


def test_staff_see_any_job(auth_client, user):
    job = JobFactory(user=user)
    response = status(auth_client(UserFactory(is_staff=True)), job.pk)
    assert response.status_code == 200
    assert response.json()["job"]["id"] == str(job.pk)


def test_an_ownerless_job_is_visible_to_anyone(api_client, db):
    job = JobFactory(user=None)
    response = status(api_client, job.pk)
    assert response.status_code == 200
    assert response.json()["job"]["userId"] is None


@pytest.mark.parametrize(
    "job_id", [uuid.uuid4(), "not-a-uuid", "1234", "%00", "' OR 1=1 --", "a" * 300, "0" * 32 + "x"]
)
def test_unknown_and_malformed_ids_are_404(api_client, db, job_id):
    response = status(api_client, job_id)
    assert response.status_code == 404
    assert response.json() == {"error": "Job not found"}


# --- Queue figures ---------------------------------------------------------------------------


def queue_of(client, job):
    return status(client, job.pk).json()["queue"]


@pytest.fixture
def three_d_queue(db):
    """One 3D job running for 10 s and three waiting, oldest first; unrelated jobs beside them."""
    running = backdate(
        JobFactory(user=None, state=JobState.PROCESSING), created_at=timedelta(seconds=100)
    )
    backdate(running, started_at=timedelta(seconds=10))
    kinds = [JobKind.TEXT_TO_3D, JobKind.IMAGE_TO_3D, JobKind.TEXT_TO_3D]
    waiting = [
        backdate(JobFactory(user=None, kind=kind), created_at=timedelta(seconds=50 - i))
        for i, kind in enumerate(kinds)
    ]
    JobFactory(kind=JobKind.PREVIEW)  # the preview queue is another queue
    JobFactory(kind=JobKind.PREVIEW, state=JobState.PROCESSING)
    JobFactory(state=JobState.FAILED)
    JobFactory(state=JobState.CANCELLED)
    return running, waiting


def test_a_waiting_job_sees_its_position_and_the_jobs_ahead(api_client, three_d_queue):
    _, (first, second, third) = three_d_queue

    assert queue_of(api_client, second) == {
        "position": 2,
        "jobs_ahead": 2,  # the running job and the first waiting one
        "estimated_wait_seconds": 260,
        "estimated_total_seconds": 390,
        "queue_length": 3,
        "currently_processing": True,
    }
    assert queue_of(api_client, first)["position"] == 1
    assert queue_of(api_client, first)["jobs_ahead"] == 1
    assert queue_of(api_client, third)["estimated_wait_seconds"] == 390


def test_a_running_job_is_position_0_with_its_remaining_time(api_client, three_d_queue):
    running, _ = three_d_queue

    queue = queue_of(api_client, running)

    assert {key: queue[key] for key in QUEUE_FIELDS - {"estimated_total_seconds"}} == {
        "position": 0,
        "jobs_ahead": 0,
        "estimated_wait_seconds": 0,
        "queue_length": 3,
        "currently_processing": True,
    }
    assert 110 <= queue["estimated_total_seconds"] <= 120  # 130 s per job, 10 s already spent


@pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
def test_a_finished_job_waits_for_nothing(api_client, db, state):
    job = JobFactory(user=None, state=state)
    assert queue_of(api_client, job) == {
        "position": 0,
        "jobs_ahead": 0,
        "estimated_wait_seconds": 0,
        "estimated_total_seconds": 0,
        "queue_length": 0,
        "currently_processing": False,
    }


def finished(kind, elapsed, *, finished_ago=0):
    job = JobFactory(user=None, kind=kind, state=JobState.COMPLETED, elapsed_seconds=elapsed)
    return backdate(job, finished_at=timedelta(seconds=finished_ago))


def test_estimates_are_measured_from_recent_completed_jobs(api_client, db):
    finished(JobKind.TEXT_TO_3D, 100)
    finished(JobKind.IMAGE_TO_3D, 200)
    finished(JobKind.PREVIEW, 8)  # another queue's timings
    JobFactory(user=None, state=JobState.FAILED, elapsed_seconds=5000)  # not a completed run
    JobFactory(user=None, state=JobState.PROCESSING)
    waiting = JobFactory(user=None)

    assert queue_of(api_client, waiting)["estimated_wait_seconds"] == 150
    assert queue_of(api_client, waiting)["estimated_total_seconds"] == 300

    preview = JobFactory(user=None, kind=JobKind.PREVIEW)
    assert queue_of(api_client, preview)["estimated_total_seconds"] == 8


def test_only_the_latest_completed_jobs_count(api_client, db, settings):
    settings.ESTIMATE_SAMPLE_SIZE = 2
    finished(JobKind.TEXT_TO_3D, 1000, finished_ago=3000)
    finished(JobKind.TEXT_TO_3D, 100, finished_ago=20)
    finished(JobKind.TEXT_TO_3D, 200, finished_ago=10)

    assert queue_of(api_client, JobFactory(user=None))["estimated_total_seconds"] == 150


def test_without_measurements_the_spec_defaults_apply(api_client, db):
    assert queue_of(api_client, JobFactory(user=None))["estimated_total_seconds"] == 130
    assert (
        queue_of(api_client, JobFactory(user=None, kind=JobKind.PREVIEW))["estimated_total_seconds"]
        == 20
    )


def count_status_queries(client, job):
    with CaptureQueriesContext(connection) as queries:
        assert status(client, job.pk).status_code == 200
    return len(queries)


def count_version_checks(client, job) -> int:
    """Primary-key lookups of the job's version (on PostgreSQL through the process's own
    connection for them, which CaptureQueriesContext does not see)."""
    checks = []
    stored_versions = selectors.stored_versions
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            selectors,
            "stored_versions",
            lambda *args: checks.append(args) or stored_versions(*args),
        )
        assert status(client, job.pk).status_code == 200
    return len(checks)


@pytest.mark.django_db(transaction=True)  # the watcher's thread reads what the test commits
def test_a_poll_costs_one_primary_key_lookup_whatever_the_queue_length(auth_client, user):
    client = auth_client(user)
    finished(JobKind.TEXT_TO_3D, 120)
    short_queue_job = JobFactory(user=user)
    first_poll = count_status_queries(client, short_queue_job)  # reads and follows the job

    others = UserFactory()
    JobFactory.create_batch(29, user=others)
    JobFactory.create_batch(3, user=others, state=JobState.PROCESSING)
    long_queue_job = JobFactory(user=user)
    deadline = time.monotonic() + 5
    while queue_of(client, long_queue_job)["position"] != 31:  # at the watcher's next queue tick
        assert time.monotonic() < deadline, "the queue figures were never refreshed"
        time.sleep(0.05)

    assert queue_of(client, short_queue_job)["position"] == 1
    # Only the job's version is checked, so that a write committed by any process is seen
    # (read-your-writes): on PostgreSQL through the process's own connection for it.
    own_connection = int(connection.vendor == "sqlite")
    for job in (short_queue_job, long_queue_job):
        assert count_status_queries(client, job) == own_connection
        assert count_version_checks(client, job) == 1
    assert first_poll <= 7  # the job, the user, and the queue figures computed once (five)
