"""Readiness: can this service take and run jobs right now?"""

import logging

from django.core.files.storage import default_storage
from django.db import connection

from celery_app import app as celery
from hydrilla.queues import CeleryQueue

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _broker() -> str:
    with celery.connection_for_write() as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=PROBE_TIMEOUT_SECONDS
        )
    return "ok"


def _storage() -> str:
    default_storage.exists("health-probe")
    return "ok"


def gpu_workers() -> int | None:
    """How many workers consume the GPU queue; None where the broker cannot tell (embedded).

    RabbitMQ counts a queue's consumers itself: one passive declare, no waiting. Other brokers
    are asked by broadcast, which waits for the replies."""
    if celery.conf.broker_url.startswith("filesystem://"):
        return None
    with celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
        if conn.transport.driver_type == "amqp":
            try:
                return conn.default_channel.queue_declare(
                    queue=CeleryQueue.GPU, passive=True
                ).consumer_count
            except conn.channel_errors:  # the queue was never declared: nobody consumes it
                return 0
    replies = celery.control.inspect(timeout=PROBE_TIMEOUT_SECONDS).active_queues() or {}
    return sum(
        any(queue["name"] == CeleryQueue.GPU for queue in queues) for queues in replies.values()
    )


def readiness() -> dict:
    """Each dependency's state; ``status`` is ``ok`` when the service can accept jobs. GPU workers
    are reported, not required: jobs wait in the queue for them."""
    checks = {}
    for name, probe in (("database", _database), ("broker", _broker), ("storage", _storage)):
        try:
            checks[name] = probe()
        except Exception as exc:
            logger.warning("Readiness check %s failed: %s", name, exc)
            checks[name] = f"error: {type(exc).__name__}"
    workers = None
    if checks["broker"] == "ok":  # without a broker there is nobody to count, only a wait
        try:
            workers = gpu_workers()
        except Exception as exc:
            logger.warning("Could not count GPU workers: %s", exc)
    ready = all(value == "ok" for value in checks.values())
    return {"status": "ok" if ready else "unavailable", **checks, "gpu_workers": workers}
