"""POST /text-to-image: the request waits for its preview (without holding a database connection
or blocking other requests), answers with the image, or a 503 after PREVIEW_WAIT_SECONDS that
loses nothing."""

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

from jobs import storage
from jobs.models import Job, JobKind, JobState
from jobs.services import clients
from jobs.watch import WAITING_VIEWS_THREADS
from tests.factories import JobFactory
from tests.helpers.jobs import Background, fail, finish_preview, start
from tests.helpers.schema import assert_matches_schema

pytestmark = pytest.mark.django_db(transaction=True)
needs_postgres = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="counts PostgreSQL connections",
)


def wait_for_preview(prompt, timeout=30) -> Job:
    """The preview job the waiting request created (as a worker receives it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.filter(kind=JobKind.PREVIEW, prompt=prompt).first()
        if job is not None:
            return job
        time.sleep(0.05)
    raise AssertionError(f"no preview job for {prompt!r}")


def make_preview(prompt, then=finish_preview):
    job = wait_for_preview(prompt)
    lease = start(job.pk)
    then(job.pk, lease)
    return str(job.pk)


def test_the_answer_comes_when_the_preview_is_ready(api_client, enqueued):
    JobFactory(kind=JobKind.PREVIEW, state=JobState.PENDING, user=None)  # one ahead in the queue
    worker = Background(make_preview, "A red sports car")

    response = api_client.post(
        "/text-to-image",
        "prompt=A+red+sports+car",
        content_type="application/x-www-form-urlencoded",
    )

    preview_id = worker.join()
    assert response.status_code == 200, response.content
    body = assert_matches_schema(response, "/text-to-image", "POST")
    assert {key: body[key] for key in ("success", "preview_id", "prompt", "message")} == {
        "success": True,
        "preview_id": preview_id,
        "prompt": "A red sports car",
        "message": "Preview image generated successfully",
    }
    assert (
        body["image_url"].startswith("http")
        and f"{storage.job_folder(preview_id)}/preview" in body["image_url"]
    )
    assert preview_id not in body["image_url"]  # a shared picture does not give the job's id away
    assert body["queue"] == {  # where it stood on arrival: behind one waiting preview
        "position": 2,
        "previews_ahead": 1,
        "estimated_wait_seconds": 20,
        "estimated_total_seconds": 40,
        "queue_length": 2,
        "currently_generating": False,
    }
    assert preview_id in enqueued
    assert api_client.get(f"/status/{preview_id}").json()["status"] == "completed"


def test_a_preview_that_takes_too_long_is_a_503_and_is_not_lost(
    api_client, auth_client, user, settings
):
    settings.PREVIEW_WAIT_SECONDS = 1
    started = time.monotonic()

    response = api_client.post("/text-to-image", {"prompt": "a slow dragon"})

    waited = time.monotonic() - started
    assert response.status_code == 503
    body = assert_matches_schema(response, "/text-to-image", "POST")
    preview_id = body["preview_id"]
    assert body == {
        "error": f"The preview is taking longer than expected. It will "
        f"still be finished: check /status/{preview_id}.",
        "preview_id": preview_id,
        "status_url": f"/status/{preview_id}",
    }
    assert response["Retry-After"] == "5"
    assert 1 <= waited < 5
    assert Job.objects.get(pk=preview_id).state == JobState.PENDING  # still queued

    finish_preview(preview_id, start(preview_id))  # the worker gets to it later
    # (served as "localhost": URL validation wants a dotted host or localhost, not "testserver")
    status = api_client.get(f"/status/{preview_id}", SERVER_NAME="localhost").json()
    image_url = status["result"]["generated_image_url"]
    registered = auth_client(user).post(
        "/api/3d/register-job",
        {"job_id": preview_id, "prompt": "a slow dragon", "previewImageUrl": image_url},
        format="json",
        SERVER_NAME="localhost",
    )
    assert registered.status_code == 200 and registered.json() == {
        "success": True,
        "job_id": preview_id,
    }
    history = auth_client(user).get("/api/3d/history").json()["jobs"]
    assert [(job["id"], job["status"]) for job in history] == [(preview_id, "DONE")]
    assert urlsplit(history[0]["previewImageUrl"]).path == urlsplit(image_url).path


def test_a_failed_preview_is_a_500_with_the_reason(api_client):
    worker = Background(
        make_preview,
        "a cursed vase",
        lambda job_id, lease: fail(job_id, lease, message="The model crashed"),
    )

    response = api_client.post("/text-to-image", {"prompt": "a cursed vase"})

    worker.join()
    assert response.status_code == 500
    assert assert_matches_schema(response, "/text-to-image", "POST") == {
        "error": "The model crashed"
    }


def test_a_preview_cancelled_while_waiting_is_a_409(api_client):
    def cancel_it():
        job = wait_for_preview("a cancelled cup")
        clients.request_cancel(job)

    worker = Background(cancel_it)

    response = api_client.post("/text-to-image", {"prompt": "a cancelled cup"})

    worker.join()
    assert response.status_code == 409
    assert assert_matches_schema(response, "/text-to-image", "POST") == {
        "error": "Job was cancelled"
    }


def test_a_bad_prompt_is_refused_at_once(api_client):
    response = api_client.post("/text-to-image", {"prompt": ""})

    assert response.status_code == 400
    assert assert_matches_schema(response, "/text-to-image", "POST") == {
        "error": "prompt: This field may not be blank."
    }
    assert not Job.objects.exists()


def test_a_preview_for_a_user_is_theirs(auth_client, user):
    worker = Background(make_preview, "my own lamp")

    response = auth_client(user).post(
        "/text-to-image", {"prompt": "my own lamp", "user_id": user.pk}
    )

    preview_id = worker.join()
    assert response.status_code == 200
    assert Job.objects.get(pk=preview_id).user_id == user.pk


def database_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@needs_postgres
def test_many_waiting_previews_hold_no_connection_and_block_no_one(asgi_server, no_limits):
    previews = 12
    prompts = [f"a waiting teapot {n}" for n in range(previews)]
    pool = ThreadPoolExecutor(max_workers=previews)
    answers = [
        pool.submit(
            requests.post, f"{asgi_server.url}/text-to-image", data={"prompt": prompt}, timeout=30
        )
        for prompt in prompts
    ]
    waiting = [wait_for_preview(prompt) for prompt in prompts]
    time.sleep(0.5)  # every request is now waiting on its preview

    connections = database_connections()  # this test's, the watcher's and the pool's, no request's
    polls = []
    for job in waiting[:4]:
        started = time.monotonic()
        status = requests.get(f"{asgi_server.url}/status/{job.pk}", timeout=5)
        info = requests.get(f"{asgi_server.url}/queue/info", timeout=5)
        polls.append(time.monotonic() - started)
        assert status.status_code == info.status_code == 200
        assert status.json()["status"] == "pending"
    deadline = time.monotonic() + 3  # the queue figures are a queue tick old at most
    while (
        requests.get(f"{asgi_server.url}/queue/info", timeout=5).json()["preview_waiting"]
        != previews
    ):
        assert time.monotonic() < deadline, "the queue figures never counted every waiting preview"
        time.sleep(0.1)
    assert not any(answer.done() for answer in answers)

    for job in waiting:
        finish_preview(job.pk, start(job.pk))
    results = [answer.result(timeout=15) for answer in answers]
    pool.shutdown()

    assert connections <= 2 + WAITING_VIEWS_THREADS, (
        f"{connections} database connections while {previews} previews waited"
    )
    assert max(polls) < 2, f"status polls took {polls}"
    assert [result.status_code for result in results] == [200] * previews
    assert [result.json()["preview_id"] for result in results] == [str(job.pk) for job in waiting]
    assert all(
        result.json()["image_url"].split("?")[0].endswith("/preview.png") for result in results
    )


def test_a_client_that_goes_away_frees_its_wait_at_once(asgi_server):
    import socket

    from jobs.watch import watcher

    body = b"prompt=a+teapot+nobody+waits+for"
    client = socket.create_connection(("127.0.0.1", asgi_server.port), timeout=5)
    client.sendall(
        b"POST /text-to-image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        b"application/x-www-form-urlencoded\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    deadline = time.monotonic() + 10
    while watcher.waiting() != 1:
        assert time.monotonic() < deadline, "the request never started waiting"
        time.sleep(0.02)

    client.close()

    deadline = time.monotonic() + 1
    while watcher.waiting():
        assert time.monotonic() < deadline, "the wait outlived its client"
        time.sleep(0.02)
    assert (
        Job.objects.get(prompt="a teapot nobody waits for").state == JobState.PENDING
    )  # the preview goes on
