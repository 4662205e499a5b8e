"""Housekeeping tasks of the web side (default queue): no model, no torch."""

from celery import shared_task

from hydrilla.queues import DELETE_UNUSED_UPLOADS, EXPIRE_JOBS
from jobs.services import staff


@shared_task(name=DELETE_UNUSED_UPLOADS)
def delete_unused_uploads() -> None:
    staff.delete_unused_uploads()


@shared_task(name=EXPIRE_JOBS)
def expire_jobs() -> None:
    staff.expire_jobs()
