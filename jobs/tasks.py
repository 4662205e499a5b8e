"""Housekeeping tasks of the web side (default queue), and the heavy downloads a cpu-queue worker
makes: no model, no torch."""

from celery import shared_task

from hydrilla.queues import DELETE_UNUSED_UPLOADS, EXPIRE_JOBS, MAKE_HEAVY_DOWNLOADS
from jobs.services import clients, staff


@shared_task(name=DELETE_UNUSED_UPLOADS)
def delete_unused_uploads() -> None:
    staff.delete_unused_uploads()


@shared_task(name=EXPIRE_JOBS)
def expire_jobs() -> None:
    staff.expire_jobs()


@shared_task(name=MAKE_HEAVY_DOWNLOADS)
def make_heavy_downloads(job_id: str) -> None:
    clients.make_heavy_downloads(job_id)
