"""Fault run: the whole service (scripts/serve.sh, as ``make run`` starts it) on a PostgreSQL and a
RabbitMQ of its own, with the tiny models; text-to-3D jobs submitted over HTTP and, each while a
job is in its 3D stage, these faults: the gpu pool child killed three times, the gpu worker's main
process killed once, RabbitMQ restarted, PostgreSQL stopped for 5 s. Prints how the jobs ended
(none may be left waiting or running), how long each killed pool child's job took to be taken
over, and how many API answers were 5xx while it all happened.

    .venv/bin/python benchmarks/fault_run.py [--jobs 16] [--json out.json]

Runs as root with PostgreSQL's and RabbitMQ's server binaries (see ``stack.py``); everything
listens on loopback, on ports of its own.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.stack import FINAL, running_service, wait_until
from jobs import plan
from jobs.plan import JobKind, Stage, Step

# Where a text-to-3D job's image-to-3D model call begins, in percent of the job.
MODEL_CALL_STARTS = next(
    share.start
    for share in plan.steps(JobKind.TEXT_TO_3D, Stage.IMAGE_TO_3D)
    if share.step == Step.IMAGE_TO_3D
)


class Database:
    """The script's own reads of the jobs, surviving the outage it causes."""

    def __init__(self, url: str):
        self.url = url

    def jobs(self, ids) -> dict[str, dict]:
        try:
            with (
                psycopg2.connect(self.url, connect_timeout=2) as connection,
                connection.cursor() as cursor,
            ):
                cursor.execute(
                    "SELECT id::text, state, stage, progress, attempts, worker_process, error_code "
                    "FROM jobs_job WHERE id::text = ANY(%s)",
                    (list(ids),),
                )
                columns = (
                    "id",
                    "state",
                    "stage",
                    "progress",
                    "attempts",
                    "worker_process",
                    "error_code",
                )
                return {row[0]: dict(zip(columns, row, strict=False)) for row in cursor.fetchall()}
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
    # The tiny Shap-E at 400 steps: a model call of some seconds, long enough to be caught in.
    settings = {"IMAGE_TO_3D_BACKEND": "shap-e", "IMAGE_TO_3D_STEPS": "400", "WEB_THREADS": "8"}
    with running_service("hydrilla-fault-", **settings) as service:
        return _run_faults(args, service)


def _run_faults(args, service) -> dict:
    base, postgres, rabbitmq = service.base, service.postgres, service.rabbitmq
    database = Database(service.database_url)
    ids = []
    for number in range(args.jobs):
        response = requests.post(
            f"{base}/text-to-3d", data={"prompt": f"a fault-run lantern {number}"}, timeout=30
        )
        response.raise_for_status()
        ids.append(response.json()["job_id"])
    watcher = ApiWatcher(base, ids[-1])
    watcher.start()
    takeovers = []

    def job_in_its_3d_stage(exclude=()) -> dict:
        found = {}

        def look():
            for job in database.jobs(ids).values():
                in_model_call = (
                    job["stage"] == Stage.IMAGE_TO_3D
                    and job["progress"] > MODEL_CALL_STARTS + 1
                    and job["worker_process"]
                )
                if in_model_call and job["id"] not in exclude:
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
        killed_at = time.monotonic()
        os.kill(int(job["worker_process"].split("/")[2]), signal.SIGKILL)
        # Taken over: a new attempt claimed its stage (measured by polling, every 0.1 s).
        wait_until(
            lambda job=job: (
                database.jobs([job["id"]]).get(job["id"], {}).get("attempts", 0) > job["attempts"]
            ),
            120,
            "the takeover",
            interval=0.1,
        )
        takeovers.append(round(time.monotonic() - killed_at, 2))
        faults.append(f"pool child killed during job {job['id'][:8]}")
    job = job_in_its_3d_stage(hit)
    hit.add(job["id"])
    os.kill(gpu_worker_main(service.process), signal.SIGKILL)
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
        "failure_codes": sorted(
            job["error_code"] for job in jobs.values() if job["state"] == "failed"
        ),
        "stranded": sorted(
            job_id for job_id in ids if jobs.get(job_id, {}).get("state") not in FINAL
        ),
        "attempts": sorted(job["attempts"] for job in jobs.values()),
        # From the kill to the claim of the attempt that took the job over.
        "takeover_seconds": takeovers,
        "api_answers": watcher.answers,
        "log": str(service.folder / "service.log"),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
