"""Real processes of the service for tests: a Celery worker configured like production but with
tiny models, and what starting a server needs (the database it shares, its log, its end)."""

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis
import requests
from django.db import connection

from tests.helpers.network import free_port

ROOT = Path(__file__).resolve().parents[2]


def fresh_python(script: str, *, timeout: float = 120, **env: str) -> str:
    """The last line ``script`` prints, run by a fresh interpreter at the repository's root with
    only ``env`` and a PATH in its environment; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def stop_process_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the process and its children; SIGKILL past ``grace`` seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def log_text(log, tail: int | None = 5000) -> str:
    """A process's log file (its last ``tail`` characters: for an assertion's message)."""
    log.flush()
    log.seek(0)
    return log.read()[-tail if tail else 0 :]


def emptied_cache(url: str) -> str:
    """``url``, a Redis database that a served process will use as its cache, emptied first: its
    throttle counters are keyed by ids (users', API keys') that the next run's fresh test database
    gives out again, and an earlier run's counts must not be taken for this run's."""
    redis.Redis.from_url(url).flushdb()
    return url


def database_url() -> str:
    """The URL of the test database this process uses, for the worker to share it."""
    params = connection.settings_dict
    if params["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{params['NAME']}"
    return f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"


class WorkerProcess:
    started = 0

    def __init__(self, *, queues: str, env: dict[str, str], concurrency: int | None = 1):
        """``concurrency`` None: the worker's own choice (one child per GPU with GPU_DEVICES)."""
        WorkerProcess.started += 1
        # Node names must be unique: each has its own control mailbox on the broker.
        self.name = f"test-{os.getpid()}-{WorkerProcess.started}"
        self.queues = queues
        self.concurrency = concurrency
        self.env = {**os.environ, "DATABASE_URL": database_url(), **env}
        self.log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "WorkerProcess":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "celery_app",
                "worker",
                "-Q",
                self.queues,
                "--pool",
                "prefork",
                "--hostname",
                f"{self.name}@%h",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                *(["--concurrency", str(self.concurrency)] if self.concurrency else []),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited at start:\n{self.output()}")
            if " ready." in self.output():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        """kill -9 of the worker and its pool, as a crash or an OOM killer would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


# --- The whole service, as `make run` starts it ---------------------------------------------


@dataclass
class Service:
    base: str
    process: subprocess.Popen
    log: object


@contextlib.contextmanager
def serving(log_dir: Path, env: dict[str, str]):
    """scripts/serve.sh (gunicorn and the Celery workers) on a free loopback port with ``env``
    over this process's environment and its test database, until the block ends."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(log_dir / "service.log", "w+")
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "serve.sh")],
        cwd=ROOT,
        # Its own address is where its webhooks' links point (SITE_URL), as in a deployment.
        env={
            **os.environ,
            "DATABASE_URL": database_url(),
            "PORT": str(port),
            "SITE_URL": base,
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_serving(base, process, log)
        yield Service(base, process, log)
    finally:
        # A graceful stop waits for gunicorn's and Celery's own shutdowns; past a minute, force it.
        stop_process_group(process, grace=60)


def wait_until_serving(base: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"service exited:\n{log_text(log)}"
        try:
            ready = requests.get(f"{base}/health", timeout=10).ok
        except requests.RequestException:  # not listening yet, or busy loading the app
            ready = False
        if ready and "ready." in log_text(log):  # the workers, too
            return
        time.sleep(0.5)
    raise AssertionError(f"service not up:\n{log_text(log)}")


# --- Which web process answered ------------------------------------------------------------------

# Connections made together to reach every web process, and how many times. Made one after
# another, every connection goes to the process that last waited for one; made together, they
# reach the others while it is busy.
CONNECTIONS_AT_ONCE = 8
ROUNDS = 25


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


def web_processes(group: int) -> set[int]:
    """The pids of gunicorn's worker processes (not its master) in the process group ``group``."""
    commands, parents = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            commands[int(entry.name)] = (entry / "cmdline").read_bytes()
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rpartition(")")[2].split()[1]
            )
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile
    gunicorn = {pid for pid, command in commands.items() if b"gunicorn" in command}
    return {pid for pid in gunicorn if parents[pid] in gunicorn}


def _socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of the loopback connection from ``client_port``."""
    wanted = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == wanted:
            return fields[9]
    return None


def _holder(inode: str, pids: set[int]) -> int | None:
    for pid in pids:
        try:
            links = {link.readlink().name for link in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
        if f"socket:[{inode}]" in links:
            return pid
    return None


def _answer_on_a_new_connection(port: int, path: str, headers: dict, pids: set[int]):
    """(the web process that answered, None when it cannot be told; its ``Answer``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        answer = Answer(response.status, response.read())
        # The connection is still open: the process that holds its server end answered.
        inode = _socket_inode(port, connection.sock.getsockname()[1])
        return (_holder(inode, pids) if inode else None), answer
    finally:
        connection.close()


def reads_from_every_web_process(
    group: int, port: int, path: str, headers: dict, processes: int
) -> dict[int, list[Answer]]:
    """{web process pid: its answers}: GET ``path`` with ``headers`` from the server on loopback
    ``port`` whose processes are in the process group ``group``, each on a new connection, until
    each of its ``processes`` web processes has answered at least once."""
    pids = web_processes(group)
    assert len(pids) == processes, pids
    answers: dict[int, list[Answer]] = {}
    with ThreadPoolExecutor(CONNECTIONS_AT_ONCE) as pool:
        for _ in range(ROUNDS):
            together = [
                pool.submit(_answer_on_a_new_connection, port, path, headers, pids)
                for _ in range(CONNECTIONS_AT_ONCE)
            ]
            for pid, answer in (future.result() for future in together):
                if pid is not None:
                    answers.setdefault(pid, []).append(answer)
            if set(answers) == pids:
                return answers
    raise AssertionError(f"{ROUNDS} rounds of connections reached only {sorted(answers)}")
