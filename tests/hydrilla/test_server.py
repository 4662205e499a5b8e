"""The HTTP server as clients meet it: `scripts/serve.sh web` (gunicorn, uvicorn workers, two
processes) on PostgreSQL, RabbitMQ and Redis, driven from outside over loopback. No worker runs,
so submitted jobs stay waiting."""

import contextlib
import json
import os
import selectors
import shutil
import socket
import subprocess
import time

import pytest
import requests

from tests.helpers.network import free_port
from tests.helpers.processes import (
    ROOT,
    database_url,
    emptied_cache,
    log_text,
    reads_from_every_web_process,
    stop_process_group,
)

pytestmark = pytest.mark.django_db(transaction=True)

HEADER_TIMEOUT_SECONDS = 2
STREAMS_PER_CALLER = 256


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, token_minter, tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("web")
    log = open(folder / "server.log", "w+")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CACHE_URL": emptied_cache(os.environ["REDIS_URL"]),
        "PORT": str(port),
        "CLERK_JWT_KEY": token_minter.public_pem,
        "REQUEST_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
        "MAX_STREAMS_PER_CALLER": str(STREAMS_PER_CALLER),
        "SUBMIT_RATE_IP": "1000/min",
        "GENERATION_SUBMIT_RATE_ANON": "1000/min",
        "ACCESS_LOG": str(folder / "access.log"),
    }
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "serve.sh"), "web"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"the server exited:\n{log_text(log)}"
        try:
            if requests.get(f"{base}/health", timeout=5).ok:
                break
        except requests.RequestException:
            assert time.monotonic() < deadline, f"the server did not start:\n{log_text(log)}"
            time.sleep(0.3)
    try:
        yield {
            "base": base,
            "port": port,
            "access_log": folder / "access.log",
            "process_group": process.pid,
        }
    finally:
        stop_process_group(process, grace=30)


def waiting_job(base: str) -> str:
    response = requests.post(f"{base}/text-to-3d", data={"prompt": "a lamp that waits"}, timeout=10)
    assert response.ok, response.text
    return response.json()["job_id"]


def test_the_spec_polling_loop_on_nodes_fetch_polls_50_times_over_one_connection(
    server, token_minter
):
    node = shutil.which("node")
    assert node, "Node.js is needed (the frontend's runtime); .ci/run installs it"
    base = server["base"]
    token = token_minter.token("user_poller", exp=int(time.time()) + 600)
    job_id = requests.post(
        f"{base}/api/3d/generate",
        json={"prompt": "a lamp"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["jobId"]

    run = subprocess.run(
        [node, str(ROOT / "tests" / "hydrilla" / "poll_status.mjs"), base, job_id, token, "50"],
        capture_output=True,
        text=True,
        timeout=200,
    )

    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert [result.get("error") for result in results if "error" in result] == []
    assert [(result["code"], result["status"]) for result in results] == [(200, "WAIT")] * 50
    # Node kept one connection for all 50 polls: every one came from the same client port.
    polls = [
        line
        for line in server["access_log"].read_text().splitlines()
        if f"/api/3d/status/{job_id}" in line
    ]
    assert len(polls) == 50
    assert len({line.split(" ")[0] for line in polls}) == 1, polls[:3]


def raw_request(port: int, request: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_an_overlong_request_line_or_header_gets_the_json_error(server):
    port = server["port"]
    line = raw_request(port, b"GET /health?" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    header = raw_request(
        port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40_000 + b"\r\n\r\n"
    )
    garbage = raw_request(port, b"NOT HTTP AT ALL\r\n\r\n")

    assert line == (414, {"error": "Request line too long"})
    assert header == (431, {"error": "Request headers too large"})
    assert garbage == (400, {"error": "Invalid HTTP request"})


def test_500_slow_header_clients_do_not_stop_health_and_are_timed_out(server):
    port = server["port"]
    slow = []
    for _ in range(500):
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        connection.setblocking(False)
        slow.append(connection)
    health = []
    started = time.monotonic()
    answers = {}
    watch = selectors.DefaultSelector()
    for connection in slow:
        watch.register(connection, selectors.EVENT_READ)
    while time.monotonic() - started < HEADER_TIMEOUT_SECONDS + 8 and len(answers) < len(slow):
        for connection in slow:  # a byte of another header now and then, never the blank line
            if connection not in answers:
                with contextlib.suppress(OSError):
                    connection.send(b"X")
        health.append(requests.get(f"{server['base']}/health", timeout=5).status_code)
        for key, _ in watch.select(timeout=0.3):
            try:
                answers[key.fileobj] = key.fileobj.recv(4096)
            except OSError:
                answers[key.fileobj] = b""
            watch.unregister(key.fileobj)
    for connection in slow:
        connection.close()

    assert health and set(health) == {200}
    assert len(answers) == len(slow), (
        f"{len(slow) - len(answers)} slow clients were never timed out"
    )
    timed_out = [answer for answer in answers.values() if answer.startswith(b"HTTP/1.1 408")]
    assert len(timed_out) == len(slow)
    assert timed_out[0].endswith(b'{"error": "Request headers not received in time"}')


def open_stream(
    port: int, job_id: str, source: str = "127.0.0.1"
) -> tuple[socket.socket, int, bytes]:
    """A stream's connection, its status code, and what came first: the first event, or the body
    of a refusal."""
    connection = socket.create_connection(
        ("127.0.0.1", port), timeout=15, source_address=(source, 0)
    )
    connection.sendall(
        f"GET /stream/{job_id} HTTP/1.1\r\nHost: "
        f"127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    code = int(head.split(b" ")[1])
    headers = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
    if code == 200:
        while b"\n\n" not in body:
            body += connection.recv(65536)
    else:
        while len(body) < int(headers[b"content-length"]):
            body += connection.recv(65536)
        assert int(headers[b"retry-after"]) > 0
    return connection, code, body


def test_many_open_streams_leave_health_and_polls_answering_and_a_closed_one_frees_its_slot(server):
    base, port = server["base"], server["port"]
    job_id = waiting_job(base)
    streams = [open_stream(port, job_id) for _ in range(STREAMS_PER_CALLER)]

    assert all(code == 200 and b'"status": "pending"' in first for _, code, first in streams)
    assert requests.get(f"{base}/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{base}/status/{job_id}", timeout=5).json()["status"] == "pending"
    # This caller holds as many streams as it may; another caller does not.
    refused, code, body = open_stream(port, job_id)
    assert (code, json.loads(body)) == (
        429,
        {
            "error": f"Too many event streams at once (at most "
            f"{STREAMS_PER_CALLER}). Expected available in 15 seconds."
        },
    )
    refused.close()
    other, code, _ = open_stream(port, job_id, source="127.0.0.2")
    assert code == 200

    streams.pop()[0].close()  # a client goes away: its slot is free at once
    deadline = time.monotonic() + 3
    while True:
        again, code, _ = open_stream(port, job_id)
        if code == 200:
            break
        again.close()
        assert time.monotonic() < deadline, "the closed stream's slot was never given back"
        time.sleep(0.1)
    for connection in [again, other, *(connection for connection, _, _ in streams)]:
        connection.close()


@pytest.fixture
def nginx(server, tmp_path):
    """compose.yaml's nginx (deploy/nginx.conf) in front of the server, on another loopback port."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(binary), "nginx is needed (compose.yaml's proxy); .ci/run installs it"
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        (ROOT / "deploy" / "nginx.conf")
        .read_text()
        .replace("server web:4000;", f"server 127.0.0.1:{server['port']};")
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
        .replace("/tmp/nginx", str(tmp_path / "nginx"))
    )
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-e", str(tmp_path / "error.log"), "-g", "daemon off;"]
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                break
        except requests.RequestException:
            assert process.poll() is None and time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_behind_nginx_refusals_are_json_and_events_pass_through_as_they_come(server, nginx):
    assert raw_request(
        nginx, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40_000 + b"\r\n\r\n"
    ) == (431, {"error": "Request headers too large"})
    assert raw_request(
        nginx, b"POST /text-to-3d HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n"
    ) == (413, {"error": "Request body too large (maximum 10 MB)"})

    job_id = waiting_job(f"http://127.0.0.1:{nginx}")
    connection, code, first = open_stream(nginx, job_id)
    connection.close()
    assert code == 200 and b'data: {"job_id"' in first and b'"status": "pending"' in first


def reads_from_every_process(server, path: str, headers=None) -> list:
    """GETs on fresh connections until each of the two web processes has answered some."""
    answers = reads_from_every_web_process(
        server["process_group"], server["port"], path, headers or {}, processes=2
    )
    return [answer for of_one in answers.values() for answer in of_one]


def test_a_write_is_seen_by_every_process_at_once(server, token_minter):
    from jobs.services import workers
    from tests.helpers.jobs import start

    base = server["base"]
    owner = {
        "Authorization": f"Bearer {token_minter.token('user_writer', exp=int(time.time()) + 600)}"
    }
    job_id = requests.post(
        f"{base}/api/3d/generate", json={"prompt": "a kettle"}, headers=owner, timeout=10
    ).json()["jobId"]
    assert {
        r.json()["job"]["status"]
        for r in reads_from_every_process(server, f"/api/3d/status/{job_id}", owner)
    } == {"WAIT"}

    def seen_everywhere():  # the next reads, with no pause (read-your-writes)
        return [
            r.json() if r.status == 200 else r.status
            for r in reads_from_every_process(server, f"/api/3d/status/{job_id}", owner)
        ]

    requests.patch(
        f"{base}/api/3d/jobs/{job_id}/name", json={"name": "Kettle"}, headers=owner, timeout=10
    )
    assert {body["job"]["name"] for body in seen_everywhere()} == {"Kettle"}

    lease = start(job_id)  # a worker, in a process of its own
    workers.report_progress(lease, 40, "Generating 3D mesh…")
    assert {(body["job"]["status"], body["job"]["progress"]) for body in seen_everywhere()} == {
        ("RUN", 40)
    }

    requests.post(f"{base}/cancel/{job_id}", headers=owner, timeout=10)
    workers.end_job_unsuccessfully(lease, code="CANCELLED", message="Cancelled")
    assert {body["job"]["status"] for body in seen_everywhere()} == {"FAIL"}

    requests.delete(f"{base}/api/3d/jobs/{job_id}", headers=owner, timeout=10)
    assert set(seen_everywhere()) == {404}


def test_a_revoked_api_key_is_refused_by_every_process_at_once(server):
    from accounts import api_keys
    from accounts.models import User

    api_key, key = api_keys.create_key(User.objects.create(id="user_keyholder"), name="server")
    path, headers = "/api/3d/history", {"Authorization": f"Bearer {key}"}
    assert {r.status for r in reads_from_every_process(server, path, headers)} == {200}

    api_keys.revoke(api_key)  # as the DELETE in any one process does

    refused = reads_from_every_process(server, path, headers)
    assert {r.status for r in refused} == {401}
    assert {r.json()["error"] for r in refused} == {"Invalid or revoked API key"}


def test_the_access_log_names_each_requests_id(server):
    answer = requests.get(
        f"{server['base']}/api/3d/queue/info", headers={"X-Request-ID": "trace-access-1"}, timeout=5
    )
    made = requests.get(f"{server['base']}/health", timeout=5).headers["X-Request-ID"]

    assert answer.headers["X-Request-ID"] == "trace-access-1"
    time.sleep(0.2)  # the log is written as the answer goes
    lines = server["access_log"].read_text().splitlines()
    assert any("/api/3d/queue/info" in line and line.endswith("[trace-access-1]") for line in lines)
    assert any("/health" in line and line.endswith(f"[{made}]") for line in lines)


@pytest.fixture
def key_headers():
    from accounts import api_keys
    from accounts.models import User

    user, _ = User.objects.get_or_create(id="user_integrator")
    _, key = api_keys.create_key(user, name="pipeline")
    return user, {"Authorization": f"Bearer {key}"}


def test_50_racing_submits_with_one_idempotency_key_make_one_job(server, key_headers):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from jobs.models import Job

    user, headers = key_headers
    headers = {**headers, "Idempotency-Key": "race-over-http", "Connection": "close"}
    start_line = Barrier(50)

    def submit(_):
        start_line.wait()
        response = requests.post(
            f"{server['base']}/api/3d/generate",
            json={"prompt": "a racing kettle"},
            headers=headers,
            timeout=30,
        )
        return response.status_code, response.json()

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(submit, range(50)))

    [job] = Job.objects.filter(user=user)
    assert answers == [(200, {"jobId": str(job.pk)})] * 50


def test_pages_of_history_are_complete_and_disjoint(server, key_headers):
    from tests.factories import JobFactory

    user, headers = key_headers
    made = {str(job.pk) for job in JobFactory.create_batch(23, user=user)}
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        body = requests.get(
            f"{server['base']}/api/3d/history", params=query, headers=headers, timeout=10
        ).json()
        seen += [job["id"] for job in body["jobs"]]
        pages += 1
        if pages == 2:
            JobFactory(user=user)  # a job made between two pages shifts nothing
        cursor = body["nextCursor"]
        if cursor is None:
            break

    assert pages == 5 and len(seen) == len(set(seen)) == 23 and set(seen) == made
