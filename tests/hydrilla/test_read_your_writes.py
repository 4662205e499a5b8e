"""A client that has the answer to its write sees that write on its next read, whichever web
process answers it: four processes (`scripts/serve.sh web`, WEB_PROCESSES=4), a thousand
write-then-read pairs, every request on a new connection so that they land on different
processes, every job read by several processes before it is written. On PostgreSQL with Redis
(changes pushed, jobs.changes) and on the embedded defaults (SQLite, changes polled)."""

import itertools
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from jobs.models import JobKind, JobState
from tests.factories import JobFactory, UserFactory
from tests.helpers.network import free_port
from tests.helpers.processes import ROOT, database_url, log_text, stop_process_group

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSES = 4
# rename, cancel, delete, register-job, remesh: 1,000 pairs in all.
RENAMES, CANCELS, DELETES, REGISTRATIONS, REMESHES = 400, 200, 200, 100, 100
READS_BEFORE = 2 * PROCESSES  # each job is followed by (most likely) every process first
CLIENTS = 8
OWNER = "user_ryw"


def start_web(env: dict, folder) -> tuple[str, subprocess.Popen, object]:
    port = free_port()
    log = open(folder / "web.log", "w+")
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "serve.sh"), "web"],
        cwd=ROOT,
        env={**env, "PORT": str(port), "WEB_PROCESSES": str(PROCESSES), "ACCESS_LOG": "/dev/null"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, f"the server exited:\n{log_text(log)}"
        try:
            if requests.get(f"{base}/health", timeout=5).ok:
                return base, process, log
        except requests.RequestException:
            assert time.monotonic() < deadline, f"the server did not start:\n{log_text(log)}"
            time.sleep(0.3)


class Client:
    """Every request on a connection of its own, closed after it."""

    def __init__(self, base: str, token: str):
        self.base, self.auth = base, {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Connection": "close", **self.auth, **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def follow(self, job_id, path: str = "/api/3d/status/") -> None:
        for _ in range(READS_BEFORE):
            assert self.request("GET", f"{path}{job_id}").status_code == 200


def rename_pairs(client: Client, jobs) -> list[str]:
    """Renames of jobs every process follows, each read back through the job API."""
    stale = []
    for n, job in zip(range(RENAMES // CLIENTS), itertools.cycle(jobs)):
        name = f"name {n}"
        answer = client.request("PATCH", f"/api/3d/jobs/{job.pk}/name", json={"name": name})
        assert answer.status_code == 200, answer.text
        read = client.request("GET", f"/api/3d/status/{job.pk}").json()["job"]["name"]
        if read != name:
            stale.append(f"rename {job.pk}: {read!r} after {name!r}")
    return stale


def cancel_pair(client: Client, job) -> list[str]:
    client.follow(job.pk, "/status/")
    assert client.request("POST", f"/cancel/{job.pk}").status_code == 200
    generation = client.request("GET", f"/status/{job.pk}").json()["status"]
    job_api = client.request("GET", f"/api/3d/status/{job.pk}").json()["job"]["status"]
    if (generation, job_api) != (JobState.CANCELLED, "FAIL"):
        return [f"cancel {job.pk}: {generation}, {job_api}"]
    return []


def delete_pair(client: Client, job) -> list[str]:
    client.follow(job.pk)
    assert client.request("DELETE", f"/api/3d/jobs/{job.pk}").status_code == 200
    reads = [
        client.request("GET", f"{path}{job.pk}").status_code
        for path in ("/api/3d/status/", "/status/")
    ]
    return [] if reads == [404, 404] else [f"delete {job.pk}: {reads}"]


def register_pair(client: Client, preview) -> list[str]:
    client.follow(preview.pk)
    answer = client.request(
        "POST",
        "/api/3d/register-job",
        json={"job_id": str(preview.pk), "previewImageUrl": "https://cdn.example.com/p.png"},
    )
    assert answer.status_code == 200, answer.text
    owner = client.request("GET", f"/api/3d/status/{preview.pk}").json()["job"]["userId"]
    return [] if owner == OWNER else [f"register {preview.pk}: owner {owner!r}"]


def remesh_pair(client: Client, source) -> list[str]:
    client.follow(source.pk)
    answer = client.request("POST", f"/api/3d/jobs/{source.pk}/remesh", json={"faceCount": 500})
    assert answer.status_code == 200, answer.text
    new = answer.json()["jobId"]
    reads = [
        client.request("GET", f"{path}{new}").status_code
        for path in ("/api/3d/status/", "/status/")
    ]
    return [] if reads == [200, 200] else [f"remesh {source.pk} → {new}: {reads}"]


def stale_reads(base: str, token: str) -> list[str]:
    owner = UserFactory(id=OWNER)
    renamed = JobFactory.create_batch(CLIENTS, user=owner)
    cancelled = JobFactory.create_batch(CANCELS, user=owner)
    deleted = JobFactory.create_batch(DELETES, user=owner)
    previews = JobFactory.create_batch(
        REGISTRATIONS, user=None, kind=JobKind.PREVIEW, state=JobState.COMPLETED
    )
    sources = JobFactory.create_batch(
        REMESHES,
        user=owner,
        state=JobState.COMPLETED,
        result_glb="jobs/ryw/model.glb",
        source_mesh="jobs/ryw/source.ply",
    )
    client = Client(base, token)
    for job in renamed:
        client.follow(job.pk)
    pairs = [(cancel_pair, job) for job in cancelled]
    pairs += [(delete_pair, job) for job in deleted]
    pairs += [(register_pair, job) for job in previews]
    pairs += [(remesh_pair, job) for job in sources]
    with ThreadPoolExecutor(CLIENTS) as pool:
        renames = [pool.submit(rename_pairs, client, renamed[n::CLIENTS]) for n in range(CLIENTS)]
        others = [pool.submit(pair, client, job) for pair, job in pairs]
        per_rename_client = [future.result() for future in renames]
        return sum(per_rename_client, []) + sum((future.result() for future in others), [])


LOOSE_LIMITS = {
    "SUBMIT_RATE_USER": "100000/min",
    "SUBMIT_RATE_IP": "100000/min",
    "MAX_WAITING_JOBS_PER_CALLER": "100000",
}


@pytest.fixture
def token(token_minter):
    return token_minter.token(OWNER, exp=int(time.time()) + 3600)


def test_a_thousand_writes_are_each_seen_by_the_next_read_on_postgresql_and_redis(
    django_db_setup, token_minter, token, tmp_path
):
    env = {
        **os.environ,
        **LOOSE_LIMITS,
        "DATABASE_URL": database_url(),
        "CACHE_URL": os.environ["REDIS_URL"],  # scripts/test-services.sh
        "CLERK_JWT_KEY": token_minter.public_pem,
    }
    base, process, log = start_web(env, tmp_path)
    try:
        assert stale_reads(base, token) == []
    finally:
        stop_process_group(process, grace=30)


@pytest.mark.embedded
def test_a_thousand_writes_are_each_seen_by_the_next_read_on_the_embedded_defaults(
    django_db_setup, token_minter, token, tmp_path
):
    env = {
        **os.environ,
        **LOOSE_LIMITS,
        "DATABASE_URL": database_url(),
        "CLERK_JWT_KEY": token_minter.public_pem,
    }
    base, process, log = start_web(env, tmp_path)
    try:
        assert stale_reads(base, token) == []
    finally:
        stop_process_group(process, grace=30)
