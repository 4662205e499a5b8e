"""The Celery app: its queues, routes and delivery guarantees, in one place.

One queue per kind of work, so that a cheap preview never waits behind a long 3D job:
- ``gpu``: 3D jobs (text-to-3D, image-to-3D), on workers that own a GPU;
- ``preview``: text-to-image previews;
- ``cpu``: remeshing a finished model from its stored mesh, with no model loaded;
- ``default``: housekeeping.
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")

from django.conf import settings  # noqa: E402  (needs DJANGO_SETTINGS_MODULE)

GPU_QUEUE = "gpu"
PREVIEW_QUEUE = "preview"
DEFAULT_QUEUE = "default"
CPU_QUEUE = "cpu"

# The task names and their one argument (the job id as a string) are a contract between the web
# service, which sends them by name, and the workers, which implement them in generation.tasks.
RUN_3D_JOB = "generation.run_3d_job"
RUN_PREVIEW_JOB = "generation.run_preview_job"
# Housekeeping, in jobs.tasks: sent by the beat scheduler that runs beside the default worker.
DELETE_UNUSED_UPLOADS = "jobs.delete_unused_uploads"
RUN_REMESH_JOB = "generation.run_remesh_job"

TASK_ROUTES = {
    RUN_3D_JOB: {"queue": GPU_QUEUE},
    RUN_PREVIEW_JOB: {"queue": PREVIEW_QUEUE},
    RUN_REMESH_JOB: {"queue": CPU_QUEUE},
    DELETE_UNUSED_UPLOADS: {"queue": DEFAULT_QUEUE},
}
BEAT_SCHEDULE = {
    "delete-unused-uploads": {"task": DELETE_UNUSED_UPLOADS, "schedule": 3600.0},
}


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
    if broker_url.startswith(("redis://", "rediss://")):
        # Redis redelivers an unacknowledged job after this long: keep it above the longest job.
        return {"visibility_timeout": settings.BROKER_VISIBILITY_TIMEOUT_SECONDS, "max_retries": 2}
    # RabbitMQ: confirm every publish, so "sent" means the broker has it.
    return {"confirm_publish": True, "max_retries": 2}


app = Celery("hydrilla")
app.conf.update(
    broker_url=settings.CELERY_BROKER_URL,
    broker_transport_options=_broker_transport_options(settings.CELERY_BROKER_URL),
    broker_connection_timeout=3,
    broker_connection_retry_on_startup=True,
    task_default_queue=DEFAULT_QUEUE,
    task_queues=[Queue(name, routing_key=name) for name in (GPU_QUEUE, PREVIEW_QUEUE, DEFAULT_QUEUE, CPU_QUEUE)],
    task_routes=TASK_ROUTES,
    # Fail fast when the broker is down, so the API can answer 503 instead of hanging.
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
    # A job is acknowledged only when it ends, one at a time per process: a worker killed mid-job
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
