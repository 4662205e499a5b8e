"""GET /stream/:jobId: Server-Sent Events from submission to the end of the job.

A worker is played from a background thread through jobs.services while the test reads the
stream, through the test client and through a real HTTP server on loopback.
"""

import threading
import time

import pytest
import requests
from django.conf import settings
from django.db import connection

from jobs.models import Job
from jobs.services import clients, workers
from jobs.watch import POLL_SECONDS, WAITING_VIEWS_THREADS, JobWatcher
from tests.factories import JobFactory
from tests.helpers.events import chunks_of, sse_events
from tests.helpers.jobs import Background, fail, finish_3d, start
from tests.helpers.schema import assert_matches_schema, response_schema

pytestmark = pytest.mark.django_db(transaction=True)
needs_postgres = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="counts PostgreSQL connections",
)


class Stream:
    """An event stream being read, with a deadline on every wait."""

    def __init__(self, chunks, status_response_stub):
        self.events = sse_events(chunks)
        self.stub = status_response_stub
        self.comments = 0

    def next(self, timeout=10):
        deadline = time.monotonic() + timeout
        for name, body in self.events:
            if name != "comment":
                if name in ("message", "end"):
                    assert_matches_schema(self.stub, "/status/{job_id}", body=body)
                return name, body
            self.comments += 1
            assert time.monotonic() < deadline, "no event came in time"
        return None  # the stream closed


class _Ok:
    status_code = 200


def open_stream(client, job_id) -> Stream:
    response = client.get(f"/stream/{job_id}", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    return Stream(chunks_of(response), _Ok())


def seen(body):
    return body["status"], body["progress"], body["message"]


def test_the_stream_follows_a_job_from_submission_to_completion(api_client, monkeypatch):
    monkeypatch.setattr("jobs.api.pipeline_api.events.STREAM_KEEPALIVE_SECONDS", 1)
    job_id = api_client.post("/text-to-3d", {"prompt": "a red car"}).json()["job_id"]
    steps = [threading.Event() for _ in range(4)]

    def worker():
        steps[0].wait(10)
        lease = start(job_id)
        steps[1].wait(10)
        workers.report_progress(lease, 30, "Removing background…")
        steps[2].wait(10)
        workers.report_progress(lease, 70, "Generating 3D mesh…")
        steps[3].wait(10)
        finish_3d(job_id, lease)

    driver = Background(worker)
    stream = open_stream(api_client, job_id)
    received = []
    for step in steps:
        name, body = stream.next()
        received.append((name, seen(body)))
        step.set()  # the worker's next move, once this one was seen
    received += [(name, seen(body)) for name, body in iter(stream.next, None)]
    driver.join()

    assert received == [
        ("message", ("pending", 0, "Queued")),
        ("message", ("processing", 0, "Starting…")),
        ("message", ("processing", 30, "Removing background…")),
        ("message", ("processing", 70, "Generating 3D mesh…")),
        ("message", ("completed", 100, "Completed")),
        ("end", ("completed", 100, "Completed")),
    ]


def test_the_last_event_is_the_status_body_of_the_ended_job(api_client):
    job_id = api_client.post("/text-to-3d", {"prompt": "a red car"}).json()["job_id"]
    finish_3d(job_id, start(job_id))

    stream = open_stream(api_client, job_id)
    first, last = stream.next(), stream.next()

    assert first == ("message", last[1]) and last[0] == "end"
    assert last[1] == api_client.get(f"/status/{job_id}").json()
    assert last[1]["result"]["mesh_url"].split("?")[0].endswith("model.glb")
    assert stream.next() is None  # and the stream closes


def test_a_failed_job_ends_its_stream_with_the_error(api_client):
    job_id = api_client.post("/text-to-3d", {"prompt": "a red car"}).json()["job_id"]
    stream = open_stream(api_client, job_id)
    assert seen(stream.next()[1]) == ("pending", 0, "Queued")

    fail(job_id, start(job_id), code="GPU_OUT_OF_MEMORY", message="The GPU ran out of memory")
    name, body = stream.next()
    if body["status"] == "processing":  # the claim may or may not be seen on its own
        name, body = stream.next()

    assert (name, body["status"], body["error"], body["error_code"]) == (
        "message",
        "failed",
        "The GPU ran out of memory",
        "GPU_OUT_OF_MEMORY",
    )
    assert stream.next()[0] == "end" and stream.next() is None


def test_heartbeats_keep_an_idle_stream_open_until_the_job_is_cancelled(api_client, monkeypatch):
    monkeypatch.setattr("jobs.api.pipeline_api.events.STREAM_KEEPALIVE_SECONDS", 0.2)
    job = JobFactory(user=None)
    stream = open_stream(api_client, job.pk)
    assert stream.next()[1]["status"] == "pending"

    canceller = threading.Timer(
        1.0, lambda: (api_client.post(f"/cancel/{job.pk}"), connection.close())
    )
    canceller.start()
    name, body = stream.next()
    canceller.join()

    assert stream.comments >= 2  # ": keepalive" while nothing happened
    assert (name, body["status"]) == ("message", "cancelled")
    assert stream.next()[0] == "end" and stream.next() is None


def test_a_job_deleted_while_streaming_ends_the_stream_with_an_error_event(api_client):
    job = JobFactory(user=None)
    stream = open_stream(api_client, job.pk)
    stream.next()

    clients.delete_job(Job.objects.get(pk=job.pk))

    assert stream.next() == ("error", {"error": "Job not found"})
    assert stream.next() is None


@pytest.mark.parametrize("accept", ["text/event-stream", "application/json", "*/*"])
def test_streaming_an_unknown_job_is_a_404(api_client, accept):
    response = api_client.get("/stream/00000000-0000-0000-0000-000000000000", HTTP_ACCEPT=accept)

    assert response.status_code == 404
    assert assert_matches_schema(response, "/stream/{job_id}") == {"error": "Job not found"}


def test_the_schema_documents_the_stream_as_an_event_stream():
    assert response_schema("/stream/{job_id}", "GET", 200, "text/event-stream") == {
        "type": "string"
    }


# --- Over a real HTTP server, many at once ------------------------------------------------------


def other_connections() -> int:
    """Database connections open to the test database, besides this thread's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname "
            "= current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def read_events(response, into: list):
    """Events as they arrive (``read1``: whatever bytes are there, without waiting for more)."""
    for name, body in sse_events(iter(lambda: response.raw.read1(65536), b"")):
        if name != "comment":
            into.append((name, body))


@needs_postgres
def test_many_open_streams_share_one_watcher_and_hold_no_database_connection(
    asgi_server, monkeypatch, no_limits
):
    streams = 16
    reads = []  # how many followed jobs each of the watcher's reads asked for
    read_again = JobWatcher._read_again

    def counted(self, keys):
        reads.append(len([key for key in keys if key in self._followed]))
        return read_again(self, keys)

    monkeypatch.setattr(JobWatcher, "_read_again", counted)
    jobs = [
        requests.post(
            f"{asgi_server.url}/text-to-3d", data={"prompt": f"a chair {n}"}, timeout=10
        ).json()["job_id"]
        for n in range(streams)
    ]
    responses = [
        requests.get(
            f"{asgi_server.url}/stream/{job_id}",
            headers={"Accept": "text/event-stream"},
            stream=True,
            timeout=10,
        )
        for job_id in jobs
    ]
    received = [[] for _ in jobs]
    readers = [
        threading.Thread(target=read_events, args=pair, daemon=True)
        for pair in zip(responses, received, strict=False)
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 10
    while not all(received) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(received), "every stream sends the job's state at once"

    reads_before_waiting = len(reads)
    time.sleep(POLL_SECONDS * 4)  # all of them open and waiting
    open_connections = other_connections()
    reads_while_waiting = len(reads) - reads_before_waiting

    for job_id in jobs:
        finish_3d(job_id, start(job_id))
    for reader in readers:
        reader.join(10)

    # The watcher's (its thread, the listener's connection and the thread that reads what it
    # hears, the version checks') and the waiting views' pool: bounded, however many wait.
    assert open_connections <= 4 + WAITING_VIEWS_THREADS, (
        f"{open_connections} connections for {streams} waiting streams"
    )
    assert reads_while_waiting == 0  # nothing changed: no read, no poll ...
    assert sum(reads) >= streams  # ... and each change was read when it was pushed
    for job_id, events in zip(jobs, received, strict=False):
        assert [name for name, _ in events][-2:] == ["message", "end"], events
        assert events[-1][1]["job_id"] == job_id and events[-1][1]["status"] == "completed"
        assert events[0][1]["status"] == "pending"
    for response in responses:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        response.close()


def test_a_stream_over_http_from_submission_to_completion(asgi_server):
    job_id = requests.post(
        f"{asgi_server.url}/text-to-3d", data={"prompt": "a lamp"}, timeout=10
    ).json()["job_id"]

    def worker():
        time.sleep(0.5)
        lease = start(job_id)
        for progress in (10, 40, 80):
            time.sleep(0.4)
            workers.report_progress(lease, progress, f"Step {progress}")
        time.sleep(0.4)
        finish_3d(job_id, lease)

    driver = Background(worker)
    events = []
    with requests.get(f"{asgi_server.url}/stream/{job_id}", stream=True, timeout=10) as response:
        read_events(response, events)  # returns when the server closes the stream
    driver.join()

    statuses = [body["status"] for _, body in events]
    progress = [body["progress"] for _, body in events]
    assert statuses[0] == "pending" and statuses[-2:] == ["completed", "completed"]
    assert [name for name, _ in events][-1] == "end"
    assert progress == sorted(progress) and progress[-1] == 100
    assert {10, 40, 80} <= set(progress)
    assert all(
        seen(a) != seen(b) for (_, a), (_, b) in zip(events[:-2], events[1:-1], strict=False)
    ), "an event repeated"
