"""An integrator's server against the whole service as `make run` starts it (scripts/serve.sh: two
web processes and every kind of worker, the webhooks' included) on PostgreSQL, RabbitMQ and Redis:
it makes a test API key, submits a job with it (retried under one Idempotency-Key), receives the
job's signed webhooks on a loopback receiver and verifies them with the Standard Webhooks library,
downloads the model, then revokes the key and is refused by every web process."""

import io
import os
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
import trimesh
from standardwebhooks import Webhook

from jobs.models import Job
from tests.helpers.processes import (
    Service,
    emptied_cache,
    log_text,
    reads_from_every_web_process,
    serving,
)
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT_SECONDS = 90
WEB_PROCESSES = 2
REQUEST_ID = "integrator-ci-1"


@pytest.fixture(scope="module")
def service(django_db_setup, token_minter, tmp_path_factory, tiny_models_dir):
    env = {
        "CLERK_JWT_KEY": token_minter.public_pem,
        "CLERK_AUTHORIZED_PARTIES": "http://localhost:3000",
        "CACHE_URL": emptied_cache(os.environ["REDIS_URL"]),
        "TINY_MODELS_DIR": str(tiny_models_dir),
        "MESH_GRID_SIZE": "32",
        "WEB_PROCESSES": str(WEB_PROCESSES),
        "WEB_THREADS": "8",
        "METRICS_TOKEN": "",
        # The receiver is on loopback; a failed attempt is retried within seconds.
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "5",
        "WEBHOOK_SWEEP_SECONDS": "1",
        "WEBHOOK_RETRY_SCHEDULE_SECONDS": "1,2,4",
        "SUBMIT_RATE_API_KEY": "60/min",
    }
    with serving(tmp_path_factory.mktemp("integrator"), env) as running:
        yield running


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


def without_signatures(value):
    """``value`` with every URL's query (an S3 link's signature, made afresh at each rendering)
    left out."""
    if isinstance(value, dict):
        return {key: without_signatures(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_signatures(item) for item in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return urlsplit(value)._replace(query="").geturl()
    return value


def wait_until_done(base: str, key: str, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        response = requests.get(
            f"{base}/api/3d/status/{job_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        if response.json()["job"]["status"] in ("DONE", "FAIL"):
            return response.json()
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end in {JOB_TIMEOUT_SECONDS} s")


def answers_of_every_web_process(service: Service, path: str, key: str) -> dict:
    """{web process pid: [(status, error or None)]}: GET ``path`` with ``key`` on new connections
    until every web process has answered."""
    answers = reads_from_every_web_process(
        service.process.pid,
        urlsplit(service.base).port,
        path,
        {"Authorization": f"Bearer {key}"},
        processes=WEB_PROCESSES,
    )
    return {
        pid: [(answer.status, answer.json().get("error")) for answer in of_one]
        for pid, of_one in answers.items()
    }


# --- The workflow ---------------------------------------------------------------------------


def test_a_server_with_a_test_key_submits_gets_signed_webhooks_downloads_then_is_refused(
    service, receiver, token_minter
):
    base = service.base
    person = {"Authorization": f"Bearer {token_minter.token('user_integrator')}"}

    # 1. The key, made by the signed-in person for their server; the secret that verifies.
    made = requests.post(
        f"{base}/api/3d/api-keys", json={"name": "ci", "mode": "test"}, headers=person, timeout=10
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("hyd_test_")
    server = {"Authorization": f"Bearer {key}"}
    secret = requests.get(f"{base}/api/3d/webhooks/secret", headers=server, timeout=10)
    assert secret.status_code == 200, secret.text
    secret = secret.json()["secret"]
    assert secret.startswith("whsec_")

    # 2. The submit, and its retry under the same Idempotency-Key: one job.
    body = {"prompt": "a red ceramic mug", "faceCount": 500, "webhookUrl": receiver.url}
    retried = {**server, "Idempotency-Key": str(uuid.uuid4()), "X-Request-ID": REQUEST_ID}
    first = requests.post(f"{base}/api/3d/generate", json=body, headers=retried, timeout=10)
    again = requests.post(f"{base}/api/3d/generate", json=body, headers=retried, timeout=10)
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert first.headers["X-Request-ID"] == REQUEST_ID
    # The key's own submission limit binds (SUBMIT_RATE_API_KEY), one used.
    assert first.headers["RateLimit-Limit"] == "60"
    assert first.headers["RateLimit-Remaining"] == "59"
    assert (again.status_code, again.json()) == (200, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    job_id = first.json()["jobId"]
    history = requests.get(f"{base}/api/3d/history", headers=server, timeout=10).json()["jobs"]
    assert [job["id"] for job in history] == [job_id]

    # 3. job.started and job.completed, signed with the user's secret, each the job as
    #    /api/3d/status shows it.
    status = wait_until_done(base, key, job_id)
    assert status["job"]["status"] == "DONE", (status["job"]["errorMessage"], log_text(service.log))
    received = receiver.wait(2, timeout=30)
    time.sleep(2)  # nothing more comes (job.progress is not asked for)
    assert len(receiver.received) == 2, [request.body for request in receiver.received]
    events = [Webhook(secret).verify(request.body, request.headers) for request in received]
    assert [event["type"] for event in events] == ["job.started", "job.completed"]
    assert len({request.headers["webhook-id"] for request in received}) == 2
    started, completed = (event["data"] for event in events)
    assert started["job"]["id"] == job_id and started["job"]["status"] == "RUN"
    assert started["job"]["prompt"] == status["job"]["prompt"]
    # The job and its formats as the status shows them now; the queue's figures are of the
    # moment each was rendered.
    for part in ("job", "formats"):
        assert without_signatures(completed[part]) == without_signatures(status[part]), part
    assert completed["queue"].keys() == status["queue"].keys()
    assert completed["queue"]["position"] == status["queue"]["position"] == 0
    # Every stage's log line names the request that made the job.
    log = log_text(service.log, tail=None)
    for stage in ("text_to_image", "prepare", "image_to_3d", "finish"):
        assert f"[{REQUEST_ID}] generation.runner: Stage {stage} of job {job_id} done" in log, stage
    # A test key's job ran on the cpu workers only, never the gpu queue's.
    stage_runs = Job.objects.get(pk=job_id).stage_runs
    assert stage_runs and {run["worker"].split("@")[0] for run in stage_runs} == {"cpu"}

    # 4. The model: the completed event's link, and the download endpoint with the key.
    linked = requests.get(completed["job"]["resultGlbUrl"], timeout=30)
    assert linked.status_code == 200
    downloaded = requests.get(
        f"{base}/api/3d/jobs/{job_id}/download", headers=server, timeout=30, allow_redirects=True
    )
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.content == linked.content
    mesh = trimesh.load(io.BytesIO(downloaded.content), file_type="glb", force="mesh")
    assert 0 < len(mesh.faces) <= 500

    # 5. Revoked: every web process refuses the key from the next request on, and writes nothing.
    status_path = f"/api/3d/status/{job_id}"
    before = answers_of_every_web_process(service, status_path, key)
    assert {answer for answers in before.values() for answer in answers} == {(200, None)}
    key_id = made.json()["id"]
    revoked = requests.delete(f"{base}/api/3d/api-keys/{key_id}", headers=person, timeout=10)
    assert revoked.status_code == 200, revoked.text
    after = answers_of_every_web_process(service, status_path, key)
    refusals = {answer for answers in after.values() for answer in answers}
    assert refusals == {(401, "Invalid or revoked API key")}, refusals
    # A new submit, and a retry of the first under its Idempotency-Key: refused, not replayed.
    jobs = Job.objects.count()
    for headers in (server, retried):
        refused = requests.post(f"{base}/api/3d/generate", json=body, headers=headers, timeout=10)
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"error": "Invalid or revoked API key"}
        assert "Idempotent-Replayed" not in refused.headers
    assert Job.objects.count() == jobs
