"""The whole service on a PostgreSQL and a RabbitMQ of its own, for the benchmarks that drive it
from outside as ``make run`` runs it (scripts/serve.sh) and break or load it: ``fault_run.py``,
``gpu_busy_share.py``.

Runs as root with PostgreSQL's and RabbitMQ's server binaries (as on the development machine;
PostgreSQL runs as the ``postgres`` user, RabbitMQ as ``rabbitmq``). Everything listens on
loopback, on ports of its own; nothing of the shared services is touched.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_PORT, AMQP_PORT, DIST_PORT = 55411, 56711, 56712
RABBIT_NODE = "hydrilla-fault@localhost"
FINAL = ("completed", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(interval)


class PostgreSQL:
    def __init__(self, folder: Path):
        self.data, self.sockets = folder / "pg", folder / "pg-run"
        for path in (self.data, self.sockets):
            path.mkdir()
            shutil.chown(path, "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True
        )

    def start(self) -> None:
        options = f"-p {PG_PORT} -h 127.0.0.1 -k {self.sockets}"
        self._as_postgres(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.sockets / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database="postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{PG_PORT}/{database}"


class RabbitMQ:
    def __init__(self, folder: Path):
        base = folder / "rabbitmq"
        (base / "mnesia").mkdir(parents=True)
        (base / "log").mkdir()
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{AMQP_PORT}\n")
        subprocess.run(["chown", "-R", "rabbitmq", str(base)], check=True)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": RABBIT_NODE,
            "RABBITMQ_NODE_PORT": str(AMQP_PORT),
            "RABBITMQ_DIST_PORT": str(DIST_PORT),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
        }

    def start(self) -> None:
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=self.env, check=True, capture_output=True
        )
        wait_until(lambda: listening(AMQP_PORT), 90, "RabbitMQ's start")

    def stop(self) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", RABBIT_NODE, "stop"], env=self.env, capture_output=True
        )
        wait_until(lambda: not listening(AMQP_PORT), 60, "RabbitMQ's stop")


@dataclass
class Service:
    base: str  # the HTTP API's address
    database_url: str
    process: subprocess.Popen  # scripts/serve.sh, leader of its process group
    postgres: PostgreSQL
    rabbitmq: RabbitMQ
    folder: Path


@contextlib.contextmanager
def running_service(prefix: str, **settings: str):
    """scripts/serve.sh with the tiny models, its own PostgreSQL, RabbitMQ and media folder, and
    ``settings`` on top; yields once its three workers are ready, stops it all afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(folder, 0o755)
    postgres, rabbitmq = PostgreSQL(folder), RabbitMQ(folder)
    postgres.start()
    rabbitmq.start()
    process = None
    try:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(PG_PORT),
                "hydrilla",
            ],
            check=True,
        )
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": postgres.url("hydrilla"),
            "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}//",
            "S3_BUCKET": "",
            "MEDIA_ROOT": str(folder / "media"),
            "PORT": str(port),
            "TINY_MODELS_DIR": str(ROOT / "var" / "tiny-models"),
            "MESH_GRID_SIZE": "32",
            "WEB_PROCESSES": "1",
            # The benchmarks submit their bursts from one address, anonymously.
            "SUBMIT_RATE_IP": "10000/min",
            "GENERATION_SUBMIT_RATE_ANON": "10000/min",
            "MAX_WAITING_JOBS_PER_CALLER": "10000",
            **settings,
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        log = open(folder / "service.log", "w+")
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "serve.sh")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: (folder / "service.log").read_text().count(" ready.") >= 3,
            180,
            "the workers' start",
        )
        yield Service(
            f"http://127.0.0.1:{port}",
            postgres.url("hydrilla"),
            process,
            postgres,
            rabbitmq,
            folder,
        )
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        rabbitmq.stop()
        postgres.stop()
