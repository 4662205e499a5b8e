"""The Celery app: its queues, routes and delivery guarantees, in one place.

One queue per kind of work (``CeleryQueue``), each consumed by its own kind of worker
(``WORKER_QUEUES``, which ``scripts/serve.sh`` and ``compose.yaml`` follow), so that a GPU only ever
runs model calls and a cheap preview never waits behind a long 3D job. A job's stages and the queue
of each are in ``jobs.stages``; every stage is one task, named after it (``stage_task``).
"""

import os
import sys
from enum import StrEnum

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")

from django.conf import settings  # noqa: E402  (needs DJANGO_SETTINGS_MODULE)


class CeleryQueue(StrEnum):
    GPU = "gpu"  # model calls of 3D jobs (text-to-image, image-to-3D), on workers that own a GPU
    PREVIEW = "preview"  # text-to-image previews, whole, on workers of their own
    CPU = "cpu"  # fetching, cutting out, finishing, exporting, uploading, remeshing: no model loaded
    DEFAULT = "default"  # housekeeping


# The queues each kind of worker consumes.
WORKER_QUEUES = {
    "gpu": (CeleryQueue.GPU,),
    "preview": (CeleryQueue.PREVIEW, CeleryQueue.DEFAULT),
    "cpu": (CeleryQueue.CPU,),
}
# Queues whose messages carry a priority: a job already running goes before one still waiting, so
# a job that comes back for its next stage does not queue again behind every job that arrived
# after it.
PRIORITY_QUEUES = (CeleryQueue.GPU, CeleryQueue.CPU)
RUNNING, WAITING = "running", "waiting"


def stage_task(stage: str) -> str:
    """The name of the task that runs ``stage`` of a job: a contract between the web service and
    the workers, which send and implement it by name with one argument, the job id as a string."""
    return f"generation.{stage}"


# Housekeeping, in jobs.tasks: sent by the beat scheduler that runs beside the default worker.
DELETE_UNUSED_UPLOADS = "jobs.delete_unused_uploads"
TASK_ROUTES = {DELETE_UNUSED_UPLOADS: {"queue": CeleryQueue.DEFAULT}}
BEAT_SCHEDULE = {
    "delete-unused-uploads": {"task": DELETE_UNUSED_UPLOADS, "schedule": 3600.0},
}


def message_priority(job_is: str) -> int:
    """The priority of a stage's message for a job that is RUNNING or WAITING: higher goes first,
    on RabbitMQ (``x-max-priority``) and on kombu's Redis transport (``priority_steps``) alike."""
    return 1 if job_is == RUNNING else 0


def _is_redis(broker_url: str) -> bool:
    return broker_url.startswith(("redis://", "rediss://"))


def _broker_transport_options(broker_url: str) -> dict:
    if broker_url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_DIR
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    if _is_redis(broker_url):
        # Redis redelivers an unacknowledged job after this long: keep it above the longest stage.
        # Its priorities are separate lists, served in order (see message_priority).
        return {
            "visibility_timeout": settings.BROKER_VISIBILITY_TIMEOUT_SECONDS,
            "max_retries": 2,
            "priority_steps": [0, 1],
            "queue_order_strategy": "priority",
        }
    # RabbitMQ: confirm every publish, so "sent" means the broker has it.
    return {"confirm_publish": True, "max_retries": 2}


app = Celery("hydrilla")
app.conf.update(
    broker_url=settings.CELERY_BROKER_URL,
    broker_transport_options=_broker_transport_options(settings.CELERY_BROKER_URL),
    broker_connection_timeout=3,
    broker_connection_retry_on_startup=True,
    task_default_queue=CeleryQueue.DEFAULT,
    task_queues=[
        Queue(queue, routing_key=queue, queue_arguments={"x-max-priority": 1} if queue in PRIORITY_QUEUES else None)
        for queue in CeleryQueue
    ],
    task_routes=TASK_ROUTES,
    # Fail fast when the broker is down, so the API can answer 503 instead of hanging.
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
    # A stage is acknowledged only when it ends, one at a time per process: a worker killed mid-job
    # leaves the message with the broker, which gives it to the next worker.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_time_limit=settings.JOB_HARD_TIME_LIMIT_SECONDS,
    task_soft_time_limit=settings.JOB_HARD_TIME_LIMIT_SECONDS - 30,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    beat_schedule=BEAT_SCHEDULE,
    beat_schedule_filename=str(settings.VAR_DIR / "celerybeat-schedule"),
)
if settings.GPU_DEVICES:
    # One pool child per GPU (generation.registry.pin_to_gpu); --concurrency still overrides it.
    app.conf.worker_concurrency = len(settings.GPU_DEVICES)
app.autodiscover_tasks(["generation", "jobs"])


if __name__ == "__main__":
    # `python celery_app.py gpu`: the -Q list of a kind of worker, for scripts/serve.sh.
    print(",".join(WORKER_QUEUES[sys.argv[1]]))
