"""What a web process knows about the jobs its clients follow, kept fresh by one thread.

Status polls, event streams and waiting previews read jobs from here, not from the database. One
thread per process, every ``POLL_SECONDS`` (a tick), asks the database which of the followed jobs
changed (one query on their ids and ``updated_at``) and reads only those; every write to a job
moves its ``updated_at``, so a write made by any process is seen by every process within a tick.
Every ``QUEUE_SECONDS`` it also computes the queue figures (counts, estimates, the position of
every followed waiting job) in a fixed handful of queries, so a poll costs the same at 10 and at
100,000 waiting jobs. Requests that wait (coroutines) are woken when their job changes; they hold
no thread and no database connection while they wait.

A job is followed from its first read until nobody has read or waited on it for
``FOLLOW_SECONDS``.
"""

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from jobs import selectors
from jobs.models import FINAL_STATES, Job, JobState

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
QUEUE_SECONDS = 1.0
FOLLOW_SECONDS = 30.0
IDS_PER_QUERY = 2000  # well inside every database's limit on query parameters


@dataclass(frozen=True)
class Snapshot:
    """A job as last read; ``job`` is None once it was deleted."""

    job: Job | None
    version: tuple


def _version(job: Job | None) -> tuple:
    """What waiting clients are told about: the job's state, progress and message, or its end."""
    return ("deleted",) if job is None else (job.state, job.progress, job.message)


@dataclass
class _Followed:
    snapshot: Snapshot
    updated_at: object
    read_at: float
    waiters: set = field(default_factory=set)  # (event loop, asyncio.Event) of waiting coroutines
    stale: bool = False  # changed by this process: read again before it is answered


class JobWatcher:
    def __init__(self):
        self._lock = threading.Lock()
        self._followed: dict[str, _Followed] = {}
        self._standings: selectors.QueueStandings | None = None
        self._standings_at = 0.0
        self._standings_read_at = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- Reads (any thread) ------------------------------------------------------------------

    def job(self, job_id) -> Job | None:
        """The job with this id (None if unknown), read from the database only the first time."""
        key = str(job_id)
        with self._lock:
            followed = self._followed.get(key)
            if followed is not None and not followed.stale:
                followed.read_at = time.monotonic()
                return followed.snapshot.job
        job = selectors.get_job(job_id)
        if followed is not None:
            self._update({key: job})
        elif job is not None:
            self._follow(job)
        return job

    def queue(self, job: Job) -> dict:
        """The job's queue figures, as of the last queue tick (a waiting job followed since is
        counted once, then at every tick)."""
        standings = self.standings()
        if job.state == JobState.PENDING and not standings.knows(job):
            standings.ahead[str(job.pk)] = selectors.waiting_ahead(job)
        return standings.for_job(job)

    def queue_info(self) -> dict:
        return self.standings().info()

    def standings(self) -> "selectors.QueueStandings":
        with self._lock:
            standings = self._standings
            self._standings_read_at = time.monotonic()
        if standings is None:  # before the first tick: read now, once
            standings = self._compute_standings()
            with self._lock:
                self._standings, self._standings_at = standings, time.monotonic()
        self._ensure_thread()
        return standings

    def forget(self, job_id) -> None:
        """This process has just changed the job: its next read here comes from the database
        (other processes see the change at their next tick)."""
        with self._lock:
            followed = self._followed.get(str(job_id))
            if followed is not None:
                followed.stale = True

    # --- Waiting (coroutines) ------------------------------------------------------------------

    def snapshot(self, job: Job) -> Snapshot:
        """The shared snapshot of a job the caller has just read, followed from now on."""
        return self._follow(job)

    async def next_change(self, job_id, seen: tuple, timeout: float) -> Snapshot:
        """The job's snapshot once its version differs from ``seen``, or after ``timeout``.

        Cancelling the waiting coroutine (the client went away) ends the wait at once."""
        key = str(job_id)
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            followed = self._followed[key]
            if followed.snapshot.version != seen:
                return followed.snapshot
            followed.waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter[1].wait()
        except TimeoutError:
            pass
        finally:
            with self._lock:
                followed.waiters.discard(waiter)
                followed.read_at = time.monotonic()
        return followed.snapshot

    async def until_ended(self, snapshot: Snapshot, timeout: float) -> Job | None:
        """The job once it has ended (None once deleted), or as it stands after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while snapshot.job is not None and snapshot.job.state not in FINAL_STATES:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            snapshot = await self.next_change(snapshot.job.pk, snapshot.version, remaining)
        return snapshot.job

    def waiting(self) -> int:
        """How many coroutines wait on a job in this process."""
        with self._lock:
            return sum(len(followed.waiters) for followed in self._followed.values())

    # --- The thread ----------------------------------------------------------------------------

    def _follow(self, job: Job) -> Snapshot:
        key = str(job.pk)
        with self._lock:
            followed = self._followed.get(key)
            if followed is None:
                followed = _Followed(Snapshot(job, _version(job)), job.updated_at, time.monotonic())
                self._followed[key] = followed
            followed.read_at = time.monotonic()
            snapshot = followed.snapshot
        self._ensure_thread()
        return snapshot

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="job-watcher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(POLL_SECONDS):
                if self._idle():
                    return
                try:
                    close_old_connections()
                    self._tick()
                except Exception:
                    logger.exception("Job watcher tick failed; trying again")
                    _close_quietly()
        finally:
            _close_quietly()  # an idle process holds no database connection

    def _idle(self) -> bool:
        """Nothing followed and no queue figures read for a while: the thread ends (a later read
        starts it again)."""
        with self._lock:
            idle = (
                not self._followed and time.monotonic() - self._standings_read_at > FOLLOW_SECONDS
            )
            if idle:
                self._thread, self._standings = None, None
            return idle

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [
                key
                for key, f in self._followed.items()
                if not f.waiters and now - f.read_at > FOLLOW_SECONDS
            ]:
                del self._followed[key]
            known = {
                key: followed.updated_at
                for key, followed in self._followed.items()
                if followed.snapshot.job
            }
        if known:
            self._refresh(known)
        if now - self._standings_at >= QUEUE_SECONDS:
            standings = self._compute_standings()
            with self._lock:
                self._standings, self._standings_at = standings, now

    def _refresh(self, known: dict) -> None:
        keys = list(known)
        current = {}
        for start in range(0, len(keys), IDS_PER_QUERY):
            current.update(
                (str(pk), updated_at)
                for pk, updated_at in Job.objects.filter(
                    pk__in=keys[start : start + IDS_PER_QUERY]
                ).values_list("pk", "updated_at")
            )
        changed = [key for key in keys if key in current and current[key] != known[key]]
        jobs = {}
        for start in range(0, len(changed), IDS_PER_QUERY):
            jobs.update(
                (str(job.pk), job)
                for job in Job.objects.filter(pk__in=changed[start : start + IDS_PER_QUERY])
            )
        self._update(jobs | dict.fromkeys((key for key in keys if key not in current), None))

    def _update(self, jobs: dict) -> None:
        """New snapshots of followed jobs (None: deleted); their waiters are woken."""
        with self._lock:
            for key, job in jobs.items():
                followed = self._followed.get(key)
                if followed is None:
                    continue
                followed.snapshot = Snapshot(job, _version(job))
                followed.updated_at = job.updated_at if job is not None else None
                followed.stale = False
                followed.read_at = time.monotonic()
                for loop, event in followed.waiters:
                    loop.call_soon_threadsafe(event.set)

    def _compute_standings(self) -> "selectors.QueueStandings":
        with self._lock:
            waiting = [
                f.snapshot.job
                for f in self._followed.values()
                if f.snapshot.job is not None and f.snapshot.job.state == JobState.PENDING
            ]
        return selectors.queue_standings(waiting)


def _close_quietly() -> None:
    try:
        connection.close()
    except Exception:
        logger.warning("Could not close the job watcher's database connection", exc_info=True)


watcher = JobWatcher()


# The threads that do the database and storage work of the views that wait on the watcher (a few
# short queries each): however many requests arrive at once, a process opens no more connections
# than this.
WAITING_VIEWS_THREADS = 4
WAITING_VIEWS_POOL = ThreadPoolExecutor(
    max_workers=WAITING_VIEWS_THREADS, thread_name_prefix="waiting-views"
)


def in_thread(function):
    """``function`` called from a coroutine, in WAITING_VIEWS_POOL, whose threads keep their
    database connections as request threads do (``DATABASE_CONN_MAX_AGE``)."""

    @functools.wraps(function)
    def pooled(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(pooled, thread_sensitive=False, executor=WAITING_VIEWS_POOL)
