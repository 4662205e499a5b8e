"""Changes to jobs, pushed to each web process as they commit (PostgreSQL's LISTEN/NOTIFY).

The trigger of migration 0010 sends a job's id on ``CHANNEL`` from inside every transaction that
inserts or deletes a job or moves its ``updated_at``, whoever writes it (services, workers, the
admin, a bulk UPDATE, plain SQL); PostgreSQL delivers it to every listening connection when, and
only if, that transaction commits, in commit order. One thread per web process holds one such
connection and hands the ids to a callback.

Why PostgreSQL rather than Redis pub/sub (benchmarks/push_transport.py,
docs/push-transport-2026-12-02.json):
the notice leaves from inside the writing transaction, so no write, however it is made, can
commit without it and none is announced that did not commit; a publish to Redis would be a second
step after the commit that a bulk UPDATE or a crash between the two skips. Measured on the
development machine, a write's notice reaches the listener as fast either way (medians within
5 %), and a process checks its copy of a job faster by a primary-key lookup (8 µs of its CPU)
than by a Redis GET (24 µs).

A notice sent while the connection was down is lost: on every (re)connection, once it listens,
the thread calls ``on_listening`` before anything else, so that the process re-reads everything
it follows instead of serving what it last saw.

A push arrives asynchronously, so reads do not wait on it: ``VersionChecks`` answers each read's
check of its copy (read-your-writes, jobs.watch) through one more connection per process.
"""

import logging
import select
import threading
from collections.abc import Callable

import psycopg2
from django.db import connection

from jobs import selectors

logger = logging.getLogger(__name__)

CHANNEL = "hydrilla_job_changes"
RECONNECT_SECONDS = 1.0
# How long the thread sleeps in select() before checking whether it should stop.
WAKE_SECONDS = 1.0
CONNECTION_OPTIONS = {
    "connect_timeout": 5,
    # A connection that dies without a word (a lost network) is found out by TCP keepalives.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def connect():
    """A connection to the database outside Django's (which keeps one per thread), in
    autocommit."""
    opened = psycopg2.connect(**(CONNECTION_OPTIONS | connection.get_connection_params()))
    opened.autocommit = True
    return opened


def available() -> bool:
    """Whether the database pushes changes (PostgreSQL); elsewhere the watcher polls."""
    return connection.vendor == "postgresql"


class ChangeListener:
    """One thread listening on ``CHANNEL`` with a connection of its own.

    ``on_changes(ids)`` gets the ids (strings) of the jobs changed by each batch of committed
    transactions; ``on_listening()`` is called each time the connection is (re)established and
    listening, before any change is handed on: what changed while nobody listened must be
    re-read there. Both run in the listener's thread, whose Django database connection closes
    when it stops.
    """

    def __init__(
        self, on_changes: Callable[[set[str]], None], on_listening: Callable[[], None]
    ) -> None:
        self.on_changes = on_changes
        self.on_listening = on_listening
        self.listening = threading.Event()
        self.backend_pid: int | None = None  # the listening connection's server process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="job-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            listener = None
            try:
                listener = connect()
                with listener.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANNEL}")
                    cursor.execute("SELECT pg_backend_pid()")
                    self.backend_pid = cursor.fetchone()[0]
                self.on_listening()
                self.listening.set()
                self._listen(listener)
            except (psycopg2.Error, OSError) as exc:
                logger.warning("Job change listener lost its connection (%s); reconnecting", exc)
            except Exception:
                logger.exception("Job change listener failed; reconnecting")
            finally:
                self.listening.clear()
                if listener is not None:
                    listener.close()
            self._stop.wait(RECONNECT_SECONDS)
        connection.close()  # the one ``on_changes`` read with, in this thread

    def _listen(self, listener) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([listener], [], [], WAKE_SECONDS)
            if not readable:
                continue
            listener.poll()  # raises once the server has closed the connection
            changed = {notice.payload for notice in listener.notifies}
            listener.notifies.clear()
            if changed:
                self.on_changes(changed)


class VersionChecks:
    """The version checks of every read in the process (``selectors.stored_versions``), through
    one connection of its own: the checks that arrive while one query is out wait and are answered
    together by the next. A burst of polls costs one round trip, not one each, and holds one
    connection, however many threads serve it; a check is always answered by a query that began
    after it arrived, so it sees every write committed before it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Check] = []
        self._querying = False
        self._connection = None

    def version(self, job_id: str):
        """The job's stored version (None: no such job). Raises psycopg2.Error when the
        database cannot answer."""
        check = _Check(job_id)
        with self._lock:
            self._waiting.append(check)
            leads, self._querying = not self._querying, True
        if leads:
            self._answer_waiting()
        check.answered.wait()
        if check.error is not None:
            raise check.error
        return check.version

    def close(self) -> None:
        with self._lock:
            self._close()

    def _answer_waiting(self) -> None:
        """Query for every waiting check, again and again, until none waits."""
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._querying = False
                    return
            try:
                if self._connection is None:
                    self._connection = connect()
                with self._connection.cursor() as cursor:
                    versions = selectors.stored_versions([check.job_id for check in batch], cursor)
            except psycopg2.Error as exc:
                with self._lock:
                    self._close()
                versions = exc
            for check in batch:
                if isinstance(versions, Exception):
                    check.error = versions
                else:
                    check.version = versions.get(check.job_id)
                check.answered.set()

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _Check:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.version = None
        self.error: Exception | None = None
        self.answered = threading.Event()
