"""GPU busy share under a backlog: the whole service (scripts/serve.sh, as ``make run`` starts it)
on a PostgreSQL and a RabbitMQ of its own, with the tiny models; a burst of image-to-3D jobs sent
over HTTP at once, so that the gpu worker always has work waiting. From each job's stage runs and
step times (what admin shows), it prints the share of the gpu worker's wall time, from the start of
its first model-call stage to the end of its last, spent inside model calls (target: 95 %), where
the rest went (the stage's own storage work, claims and handoffs, waits between stages), and, from
the same figures, what the share would be if every stage of a job ran on the gpu worker, as before
stages had workers of their own.

    .venv/bin/python benchmarks/gpu_busy_share.py [--jobs 24] [--steps 64] [--json out.json]

Runs as root with PostgreSQL's and RabbitMQ's server binaries (see ``stack.py``); everything
listens on loopback.
"""

import argparse
import io
import json
import sys
from pathlib import Path

import psycopg2
import requests
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.stack import running_service, wait_until
from hydrilla.queues import CeleryQueue
from jobs.plan import MODEL_STEPS, QUEUES, Step

TARGET_SHARE = 0.95
GPU_STAGES = tuple(stage for stage, queue in QUEUES.items() if queue == CeleryQueue.GPU)


def photo() -> bytes:
    image = Image.new("RGB", (256, 256), (240, 240, 236))
    ImageDraw.Draw(image).ellipse((60, 50, 200, 210), fill=(30, 90, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def submit(base: str, count: int) -> list[str]:
    data, ids = photo(), []
    for _ in range(count):
        response = requests.post(
            f"{base}/image-to-3d", files={"image_file": ("photo.png", data)}, timeout=30
        )
        response.raise_for_status()
        ids.append(response.json()["job_id"])
    return ids


def finished_jobs(url: str, ids: list[str]) -> list[dict] | None:
    """The jobs' states, stage runs and step times once all have ended; None before."""
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, state, stage_runs, step_seconds, "
            "error_message FROM jobs_job WHERE id::text = ANY(%s)",
            (ids,),
        )
        rows = [
            dict(zip(("id", "state", "stage_runs", "step_seconds", "error"), row, strict=False))
            for row in cursor.fetchall()
        ]
    ended = len(rows) == len(ids) and all(
        row["state"] in ("completed", "failed", "cancelled") for row in rows
    )
    return rows if ended else None


def busy_share(jobs: list[dict]) -> dict:
    gpu_runs = [run for job in jobs for run in job["stage_runs"] if run["stage"] in GPU_STAGES]
    began = min(run["started"] for run in gpu_runs)
    ended = max(run["started"] + run["seconds"] for run in gpu_runs)
    wall = ended - began
    model = sum(job["step_seconds"].get(step, 0.0) for job in jobs for step in MODEL_STEPS)
    in_gpu_stages = sum(run["seconds"] for run in gpu_runs)
    handoff = sum(job["step_seconds"].get(Step.HANDOFF, 0.0) for job in jobs)
    every_stage = sum(run["seconds"] for job in jobs for run in job["stage_runs"])
    return {
        "gpu_wall_seconds": round(wall, 3),
        "model_call_seconds": round(model, 3),
        "busy_share": round(model / wall, 4),
        "storage_handoff_seconds": round(handoff, 3),
        "claims_and_handoffs_seconds": round(in_gpu_stages - model - handoff, 3),
        "idle_between_stages_seconds": round(wall - in_gpu_stages, 3),
        "share_if_every_stage_ran_on_the_gpu_worker": round(model / every_stage, 4),
        "mean_model_call_seconds": round(model / len(jobs), 3),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument(
        "--steps", type=int, default=64, help="Shap-E steps per model call (tiny model)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    settings = {
        "IMAGE_TO_3D_BACKEND": "shap-e",
        "IMAGE_TO_3D_STEPS": str(args.steps),
        "PRELOAD_MODELS": "image_to_3d",
        "CPU_WORKER_CONCURRENCY": "2",
    }
    with running_service("hydrilla-busy-", **settings) as service:
        base, database = service.base, service.database_url
        warm_up = submit(base, 1)  # the first model call of a process pays for its first use
        wait_until(lambda: finished_jobs(database, warm_up), 300, "the warm-up job")
        ids = submit(base, args.jobs)
        wait_until(lambda: finished_jobs(database, ids), 1200, "the backlog's end")
        jobs = finished_jobs(database, ids)
        failed = [job["error"] for job in jobs if job["state"] != "completed"]
        report = {
            "jobs": args.jobs,
            "shap_e_steps": args.steps,
            "failed": failed,
            **busy_share(jobs),
        }
        print(json.dumps(report, indent=2))
        print(f"busy share {report['busy_share']:.1%} (target {TARGET_SHARE:.0%})")
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return report


if __name__ == "__main__":
    main()
