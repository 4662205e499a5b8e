"""What the services of every caller share: sending a job's current stage to its queue, and the
fields of a cancelled job."""

import logging

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from celery_app import app as celery
from hydrilla.queues import (
    MAKE_HEAVY_DOWNLOADS,
    REQUEST_ID_HEADER,
    RUNNING,
    WAITING,
    CeleryQueue,
    message_priority,
)
from jobs import plan, selectors
from jobs.error_codes import ErrorCode
from jobs.models import Job, JobState

logger = logging.getLogger(__name__)


# The fields of a job that ``enqueue`` reads (a caller that loads only some loads these).
ENQUEUE_READS = ("pk", "state", "stage", "heartbeat_at", "request_id", "test_mode")


class QueueUnavailable(Exception):
    """The broker did not take the message (a new job is then withdrawn, any other waits for the
    sweep)."""


def send_heavy_downloads(job: Job) -> None:
    """Ask a cpu-queue worker to make the finished job's heavy formats ahead of their first
    download; when the broker is down, that first download makes them instead."""
    try:
        celery.send_task(MAKE_HEAVY_DOWNLOADS, args=[str(job.pk)], queue=CeleryQueue.CPU)
    except Exception as exc:  # kombu's many connection errors: the download converts instead
        logger.warning("Could not queue the heavy downloads of job %s: %s", job.pk, exc)


def enqueue(job: Job) -> None:
    """Send the message of the job's current stage to that stage's queue and, once the broker has
    confirmed it, record so on the job (``queued_at``): a stage that no worker holds and that has
    no such mark gets its message from the sweep, as does an orphaned one
    (``workers.recover_orphaned_jobs``). A running job's stage goes before the stages of jobs
    still waiting (``hydrilla.queues.message_priority``). The message carries the id of the
    request that made the job, for the stage's logs."""
    job_is = RUNNING if job.state == JobState.PROCESSING else WAITING
    try:
        celery.send_task(
            plan.stage_task(job.stage),
            args=[str(job.pk)],
            queue=plan.queue_of(job.stage, test_mode=job.test_mode),
            priority=message_priority(job_is, settings.CELERY_BROKER_URL),
            headers={REQUEST_ID_HEADER: job.request_id},
        )
    except Exception as exc:  # kombu raises a zoo of connection errors; all mean "not queued"
        logger.error("Could not queue job %s: %s", job.pk, exc)
        raise QueueUnavailable(str(exc)) from exc
    # Marked only as it was sent: not if a worker has claimed the stage since, nor on a newer
    # holder.
    try:
        Job.objects.filter(
            selectors.held_as_read(job.heartbeat_at), pk=job.pk, stage=job.stage
        ).update(queued_at=timezone.now())
    except DatabaseError:
        # The job is queued; unmarked, the sweep only sends a duplicate, which claiming drops.
        logger.warning("Job %s is queued but could not be marked so", job.pk, exc_info=True)


def cancelled_fields(now) -> dict:
    """The fields of a job that ends cancelled."""
    return {
        "state": JobState.CANCELLED,
        "message": "Cancelled",
        "error_code": ErrorCode.CANCELLED,
        "error_message": "Job was cancelled",
        "heartbeat_at": None,
        "finished_at": now,
        "updated_at": now,
    }


def unshared_file(job_id, field: str) -> str:
    """The job's file in ``field`` when no other job holds it too, else ""."""
    name = Job.objects.filter(pk=job_id).values_list(field, flat=True).first()
    if not name or Job.objects.filter(**{field: name}).exclude(pk=job_id).exists():
        return ""
    return name
