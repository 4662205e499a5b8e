"""Housekeeping tasks of the web side (default queue): no model, no torch."""

from celery import shared_task

from hydrilla.queues import DELETE_UNUSED_UPLOADS
from jobs import services


@shared_task(name=DELETE_UNUSED_UPLOADS)
def delete_unused_uploads() -> None:
    services.delete_unused_uploads()
