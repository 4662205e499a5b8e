"""Riding out a database outage in a worker: a job's writes wait for the database (backing off)
rather than fail the job, and what cannot wait hands the job back (see generation.tasks)."""

import contextlib
import logging
import time

from django.conf import settings
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)


class DatabaseUnreachable(Exception):
    """The database did not answer for DATABASE_WAIT_SECONDS."""


def patiently(call, what: str):
    """``call()``, tried again through a database outage for up to DATABASE_WAIT_SECONDS."""
    deadline = time.monotonic() + settings.DATABASE_WAIT_SECONDS
    pause = 0.5
    while True:
        try:
            return call()
        except DatabaseError as exc:
            drop_connection()
            if time.monotonic() + pause > deadline:
                raise DatabaseUnreachable(f"{what}: {exc}") from exc
            logger.warning("Database unreachable (%s); trying again in %.1f s", what, pause)
            time.sleep(pause)
            pause = min(2 * pause, 8.0)


def drop_connection() -> None:
    """Forget a broken connection, so that the next query opens a new one."""
    with contextlib.suppress(DatabaseError):
        connection.close()
