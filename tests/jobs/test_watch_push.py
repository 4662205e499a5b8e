"""The web process's watcher on PostgreSQL: changes reach its copies by push, with no read and no
poll, waiting coroutines wake on them, and a process whose push connection dropped catches up
once it listens again (jobs.watch, jobs.changes)."""

import asyncio
import threading
import time

import psycopg2
import pytest
from django.db import connection
from django.utils import timezone

from jobs import selectors
from jobs.models import Job
from jobs.watch import watcher
from tests.factories import JobFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's LISTEN/NOTIFY"),
]

PUSH_SECONDS = 10  # a push normally lands within milliseconds; a busy machine is slower


def eventually(condition, what: str) -> None:
    deadline = time.monotonic() + PUSH_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def followed_and_listening(job):
    """The job followed here, and the process listening for changes."""
    assert watcher.job(job.pk) is not None
    eventually(
        lambda: watcher.listener is not None and watcher.listener.listening.is_set(),
        "the watcher never listened",
    )
    return watcher.listener


def held_copy(job):
    """What the watcher holds for the job, without a read (which would check it)."""
    return watcher.snapshot(job).job


def change(job, message: str) -> None:
    Job.objects.filter(pk=job.pk).update(message=message, updated_at=timezone.now())


def test_another_process_s_change_reaches_the_copy_without_a_read():
    job = JobFactory()
    followed_and_listening(job)
    change(job, "Generating the image")
    eventually(
        lambda: held_copy(job).message == "Generating the image", "the change was not pushed"
    )


def test_a_waiting_coroutine_wakes_on_the_push():
    job = JobFactory()
    followed_and_listening(job)
    snapshot = watcher.snapshot(job)
    threading.Timer(0.2, change, [job, "Building the mesh"]).start()

    async def wait():
        return await watcher.next_change(job.pk, snapshot.version, timeout=PUSH_SECONDS)

    woken = asyncio.run(wait())
    assert woken.job.message == "Building the mesh"


def test_a_dropped_push_connection_is_listened_on_again_and_what_it_missed_is_read():
    job = JobFactory()
    listener = followed_and_listening(job)
    dropped = listener.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [dropped])
    eventually(lambda: not listener.listening.is_set(), "the listener never saw the drop")
    change(job, "Changed while nobody listened")  # its push is lost

    eventually(
        lambda: listener.listening.is_set() and listener.backend_pid != dropped,
        "the listener did not reconnect",
    )
    eventually(
        lambda: held_copy(job).message == "Changed while nobody listened",
        "the missed change was never read",
    )


def test_a_deleted_job_is_pushed_as_gone():
    job = JobFactory()
    followed_and_listening(job)
    Job.objects.filter(pk=job.pk).delete()
    eventually(lambda: held_copy(job) is None, "the delete was not pushed")


def test_while_the_database_is_unreachable_a_followed_job_is_served_as_last_read(monkeypatch):
    job = JobFactory()
    followed_and_listening(job)

    def unreachable(*args):
        raise psycopg2.OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(selectors, "stored_versions", unreachable)
    assert watcher.job(job.pk).message == job.message
