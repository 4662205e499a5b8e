"""The queues of the Celery task farm and the names of its tasks, without Django or Celery: read
by the settings (Celery's options), by the services that publish, by the workers, and by
``scripts/serve.sh``.

One queue per kind of work, each consumed by its own kind of worker, so that a GPU only ever runs
model calls and a cheap preview never waits behind a long 3D job. A job's stages, the queue of
each and the task that runs it are in ``jobs.plan``.

    python -m hydrilla.queues gpu     # the -Q list of a kind of worker (scripts/serve.sh)
"""

import sys
from enum import StrEnum


class CeleryQueue(StrEnum):
    GPU = "gpu"  # model calls of 3D jobs (text-to-image, image-to-3D), on workers that own a GPU
    PREVIEW = "preview"  # text-to-image previews, whole, on workers of their own
    CPU = (
        "cpu"  # fetching, cutting out, finishing, exporting, uploading, remeshing: no model loaded
    )
    DEFAULT = "default"  # housekeeping
    # Webhook deliveries and their sweep (webhooks.tasks): a slow or dead receiver only ever holds
    # a worker of its own, never one that runs jobs.
    WEBHOOKS = "webhooks"


# The queues each kind of worker consumes (scripts/serve.sh asks; tests hold compose.yaml to it).
WORKER_QUEUES = {
    "gpu": (CeleryQueue.GPU,),
    "preview": (CeleryQueue.PREVIEW, CeleryQueue.DEFAULT),
    "cpu": (CeleryQueue.CPU,),
    "webhooks": (CeleryQueue.WEBHOOKS,),
}
# Queues whose messages carry a priority: a job already running goes before one still waiting, so
# a job that comes back for its next stage does not queue again behind every job that arrived
# after it.
PRIORITY_QUEUES = (CeleryQueue.GPU, CeleryQueue.CPU)
RUNNING, WAITING = "running", "waiting"

# Housekeeping, in jobs.tasks: sent by the beat scheduler that runs beside the default worker.
DELETE_UNUSED_UPLOADS = "jobs.delete_unused_uploads"
DELETE_EXPIRED_IDEMPOTENCY_KEYS = "idempotency.delete_expired"
# Retention (jobs.tasks): deletes the jobs kept past their RETAIN_* setting, on the default queue.
EXPIRE_JOBS = "jobs.expire_jobs"
# Webhooks (webhooks.tasks), on the webhooks queue: one attempt at one delivery, and the sweep
# that sends the deliveries due (a retry's time has come, a message was lost with a worker or the
# broker).
DELIVER_WEBHOOK = "webhooks.deliver"
SWEEP_WEBHOOKS = "webhooks.sweep"
# Hourly, on the webhooks queue: events whose deliveries are all over, past WEBHOOK_HISTORY_SECONDS.
FORGET_WEBHOOK_EVENTS = "webhooks.forget_old_events"

# The header of a stage's message that carries the X-Request-ID of the request that made the job.
REQUEST_ID_HEADER = "hydrilla_request_id"
# A finished job's formats that take seconds (FBX through Blender), made on the cpu queue.
MAKE_HEAVY_DOWNLOADS = "jobs.make_heavy_downloads"


def message_priority(job_is: str, broker_url: str) -> int:
    """The priority of a stage's message for a job that is RUNNING or WAITING, so that a running
    job's goes first: RabbitMQ (``x-max-priority``) serves the higher number first, kombu's Redis
    transport (``priority_steps``) the lower."""
    running_first = job_is == RUNNING
    if broker_url.startswith(("redis://", "rediss://")):
        return 0 if running_first else 1
    return 1 if running_first else 0


if __name__ == "__main__":
    print(",".join(WORKER_QUEUES[sys.argv[1]]))
