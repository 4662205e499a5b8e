"""Fault run: the whole service (scripts/serve.sh, as ``make run`` starts it) on a PostgreSQL and a
RabbitMQ of its own, with the tiny models; text-to-3D jobs submitted over HTTP and, each while a
job is in its 3D stage, these faults: the gpu pool child killed three times, the gpu worker's main
process killed once, RabbitMQ restarted, PostgreSQL stopped for 5 s. Prints how the jobs ended
(none may be left waiting or running), how long each killed pool child's job took to be taken
over, and how many API answers were 5xx while it all happened.

    .venv/bin/python benchmarks/fault_run.py [--jobs 16] [--json out.json]

Runs as root with PostgreSQL's and RabbitMQ's server binaries (as on the development machine;
PostgreSQL runs as the ``postgres`` user, RabbitMQ as ``rabbitmq``). Everything listens on
loopback, on ports of its own; nothing of the shared services is touched.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
import requests

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


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(0.2)


class PostgreSQL:
    def __init__(self, folder: Path):
        self.data, self.sockets = folder / "pg", folder / "pg-run"
        for path in (self.data, self.sockets):
            path.mkdir()
            shutil.chown(path, "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {PG_PORT} -h 127.0.0.1 -k {self.sockets}"
        self._as_postgres("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.sockets / "log"), "-w", "start")

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
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, capture_output=True)
        wait_until(lambda: listening(AMQP_PORT), 90, "RabbitMQ's start")

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", RABBIT_NODE, "stop"], env=self.env, capture_output=True)
        wait_until(lambda: not listening(AMQP_PORT), 60, "RabbitMQ's stop")


class Database:
    """The script's own reads of the jobs, surviving the outage it causes."""

    def __init__(self, url: str):
        self.url = url

    def jobs(self, ids) -> dict[str, dict]:
        try:
            with psycopg2.connect(self.url, connect_timeout=2) as connection, connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id::text, state, progress, attempts, worker_process, started_at, error_code "
                    "FROM jobs_job WHERE id::text = ANY(%s)", (list(ids),),
                )
                columns = ("id", "state", "progress", "attempts", "worker_process", "started_at", "error_code")
                return {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}
        except psycopg2.OperationalError:
            return {}


class ApiWatcher(threading.Thread):
    """Asks /health and a job's /status twice a second; counts what came back."""

    def __init__(self, base: str, job_id: str):
        super().__init__(daemon=True)
        self.base, self.job_id = base, job_id
        self.answers: dict[str, int] = {}
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.5):
            for path in ("/health", f"/status/{self.job_id}"):
                try:
                    outcome = str(requests.get(self.base + path, timeout=10).status_code)
                except requests.RequestException as exc:
                    outcome = type(exc).__name__
                self.answers[outcome] = self.answers.get(outcome, 0) + 1


def gpu_worker_main(service: subprocess.Popen) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            parent_command = Path(f"/proc/{parent}/cmdline").read_bytes()
            in_service = os.getpgid(int(entry.name)) == service.pid
        except (OSError, ProcessLookupError, ValueError):
            continue
        if in_service and b"gpu@%h" in command and b"celery" not in parent_command:
            return int(entry.name)
    raise RuntimeError("no gpu worker main process")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="hydrilla-fault-"))
    os.chmod(folder, 0o755)
    postgres, rabbitmq = PostgreSQL(folder), RabbitMQ(folder)
    postgres.start()
    rabbitmq.start()
    service = None
    try:
        subprocess.run(["runuser", "-u", "postgres", "--", "createdb", "-h", "127.0.0.1", "-p", str(PG_PORT), "hydrilla"], check=True)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": postgres.url("hydrilla"),
            "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}//",
            "S3_BUCKET": "", "MEDIA_ROOT": str(folder / "media"), "PORT": str(port),
            "TINY_MODELS_DIR": str(ROOT / "var" / "tiny-models"), "MESH_GRID_SIZE": "32",
            "IMAGE_TO_3D_STEPS": "400", "WEB_PROCESSES": "1", "WEB_THREADS": "8",
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        log = open(folder / "service.log", "w+")
        service = subprocess.Popen([str(ROOT / "scripts" / "serve.sh")], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: (folder / "service.log").read_text().count(" ready.") >= 2, 180, "the workers' start")
        return _run_faults(args, base, service, Database(postgres.url("hydrilla")), postgres, rabbitmq, folder)
    finally:
        if service is not None:
            os.killpg(service.pid, signal.SIGTERM)
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)
        rabbitmq.stop()
        postgres.stop()


def _run_faults(args, base, service, database, postgres, rabbitmq, folder) -> dict:
    ids = []
    for number in range(args.jobs):
        response = requests.post(f"{base}/text-to-3d", data={"prompt": f"a fault-run lantern {number}"}, timeout=30)
        response.raise_for_status()
        ids.append(response.json()["job_id"])
    watcher = ApiWatcher(base, ids[-1])
    watcher.start()
    takeovers = []

    def job_in_its_3d_stage(exclude=()) -> dict:
        found = {}

        def look():
            for job in database.jobs(ids).values():
                if job["state"] == "processing" and job["progress"] > 36 and job["id"] not in exclude:
                    found.update(job)
                    return True
            return False

        wait_until(look, 300, "a job in its 3D stage")
        return found

    faults = []
    hit = set()
    for _ in range(3):
        job = job_in_its_3d_stage(hit)
        hit.add(job["id"])
        killed_at = time.time()
        os.kill(int(job["worker_process"].split("/")[2]), signal.SIGKILL)
        takeovers.append((job["id"], job["attempts"], killed_at))
        faults.append(f"pool child killed during job {job['id'][:8]}")
    job = job_in_its_3d_stage(hit)
    hit.add(job["id"])
    os.kill(gpu_worker_main(service), signal.SIGKILL)
    faults.append(f"gpu worker main process killed during job {job['id'][:8]}")
    job = job_in_its_3d_stage(hit)
    hit.add(job["id"])
    rabbitmq.stop()
    rabbitmq.start()
    faults.append(f"RabbitMQ restarted during job {job['id'][:8]}")
    job = job_in_its_3d_stage(hit)
    postgres.stop()
    time.sleep(5)
    postgres.start()
    faults.append(f"PostgreSQL down for 5 s during job {job['id'][:8]}")

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        jobs = database.jobs(ids)
        if len(jobs) == len(ids) and all(job["state"] in FINAL for job in jobs.values()):
            break
        time.sleep(1)
    watcher.stopped.set()
    jobs = database.jobs(ids)
    report = {
        "jobs": len(ids),
        "faults": faults,
        "ended": {state: sum(job["state"] == state for job in jobs.values()) for state in FINAL},
        "failure_codes": sorted(job["error_code"] for job in jobs.values() if job["state"] == "failed"),
        "stranded": sorted(job_id for job_id in ids if jobs.get(job_id, {}).get("state") not in FINAL),
        "attempts": sorted(job["attempts"] for job in jobs.values()),
        # From the kill to the start of the attempt that took the job over.
        "takeover_seconds": [
            round(jobs[job_id]["started_at"].timestamp() - killed_at, 2)
            for job_id, attempts, killed_at in takeovers
            if jobs[job_id]["attempts"] > attempts
        ],
        "api_answers": watcher.answers,
        "log": str(folder / "service.log"),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
