"""Housekeeping (default queue): keys past IDEMPOTENCY_KEY_TTL_SECONDS are forgotten."""

from celery import shared_task

from hydrilla.queues import DELETE_EXPIRED_IDEMPOTENCY_KEYS
from idempotency import services


@shared_task(name=DELETE_EXPIRED_IDEMPOTENCY_KEYS)
def delete_expired_idempotency_keys() -> None:
    services.delete_expired()
