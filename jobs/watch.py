"""What a web process knows about the jobs its clients follow, pushed to it as they change.

Status polls, event streams and waiting previews read jobs from here. Each read checks its copy
by one primary-key lookup (``selectors.stored_versions``: the job's ``updated_at``, which every
change a client can see moves) and reads the job again only when it changed: a read sees every
write committed before it, whichever process made it (read-your-writes), without waiting on the
push below and without reading the whole job.

Waiting requests (coroutines) are woken by the push. On PostgreSQL every committed change of a
job is sent to each web process at once (jobs.changes), where a listener thread reads the changed
jobs this process follows and wakes their waiters; a lost connection makes it re-read all of them
once it listens again, so nothing is missed silently. With nothing changing, a process asks the
database nothing but its reads' checks. Elsewhere (SQLite: the embedded defaults) a thread asks
every ``POLL_SECONDS`` which followed jobs changed (one query on their ids and ``updated_at``).

Every ``QUEUE_SECONDS`` the queue figures (counts, estimates, the place of every followed waiting
job) come from the deployment's one computation per second (jobs.queue_figures), so a poll costs
the same at 10 and at 100,000 waiting jobs and the database's load does not grow with the number
of web processes. Requests that wait hold no thread and no database connection while they wait.

A job is followed from its first read until nobody has read or waited on it for
``FOLLOW_SECONDS``."""

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg2
from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections, connection

from jobs import changes, queue_figures, selectors
from jobs.models import FINAL_STATES, Job, JobState

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
QUEUE_SECONDS = queue_figures.QUEUE_SECONDS
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
    updated_at: object  # selectors.version_of the snapshot's job
    read_at: float
    waiters: set = field(default_factory=set)  # (event loop, asyncio.Event) of waiting coroutines


class JobWatcher:
    def __init__(self):
        self._lock = threading.Lock()
        self._followed: dict[str, _Followed] = {}
        self._standings: selectors.QueueStandings | None = None
        self._standings_at = 0.0
        self._standings_read_at = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.listener: changes.ChangeListener | None = None  # while the thread runs on PostgreSQL
        self._versions = changes.VersionChecks()

    # --- Reads (any thread) ------------------------------------------------------------------

    def job(self, job_id) -> Job | None:
        """The job with this id (None if unknown) as it is now: the copy followed here while its
        version is the database's, else read again (and followed)."""
        key = str(job_id)
        with self._lock:
            followed = self._followed.get(key)
        if followed is not None and self._is_current(key, followed):
            followed.read_at = time.monotonic()
            return followed.snapshot.job
        job = selectors.get_job(job_id)
        if followed is not None:
            self._update({key: job})
        elif job is not None:
            self._follow(job)
        return job

    def _is_current(self, key: str, followed: "_Followed") -> bool:
        """Whether the followed copy is the job as stored now (on PostgreSQL through the
        process's batched checks). While the database cannot be reached the copy is served, as
        this process last heard of the job, rather than a 503, and the outage logged."""
        try:
            if changes.available():
                stored = self._versions.version(key)
            else:
                stored = selectors.stored_versions([key]).get(key)
        except (DatabaseError, psycopg2.Error) as exc:
            logger.warning("Job %s served as last read: the database is unreachable (%s)", key, exc)
            return True
        return stored == followed.updated_at

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
                followed = _Followed(
                    Snapshot(job, _version(job)), selectors.version_of(job), time.monotonic()
                )
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
        """Pushed changes on PostgreSQL (the listener's own thread), a poll elsewhere; queue
        figures and forgetting here."""
        pushed = changes.available()
        if pushed:
            self.listener = changes.ChangeListener(self._read_again, self._catch_up)
            self.listener.start()
        try:
            while not self._stop.wait(QUEUE_SECONDS if pushed else POLL_SECONDS):
                if self._idle():
                    return
                try:
                    close_old_connections()
                    self._tick(poll=not pushed)
                except Exception:
                    logger.exception("Job watcher tick failed; trying again")
                    _close_quietly()
        finally:
            if self.listener is not None:
                self.listener.stop()
                self.listener = None
            self._versions.close()
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

    def _tick(self, poll: bool) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [
                key
                for key, f in self._followed.items()
                if not f.waiters and now - f.read_at > FOLLOW_SECONDS
            ]:
                del self._followed[key]
        if poll:
            self._catch_up()
        if now - self._standings_at >= QUEUE_SECONDS:
            standings = self._compute_standings()
            with self._lock:
                self._standings, self._standings_at = standings, now

    def _read_again(self, keys) -> None:
        """Pushed: these jobs changed (some may not be followed here)."""
        with self._lock:
            followed = [key for key in keys if key in self._followed]
        jobs = {}
        for start in range(0, len(followed), IDS_PER_QUERY):
            jobs.update(
                (str(job.pk), job)
                for job in Job.objects.select_related("user").filter(
                    pk__in=followed[start : start + IDS_PER_QUERY]
                )
            )
        self._update(jobs | {key: None for key in followed if key not in jobs})

    def _catch_up(self) -> None:
        """Read again every followed job that changed since it was read (one query on their ids
        and ``updated_at``, then the changed ones): the poll, and what a process that missed
        pushes does once it listens again."""
        with self._lock:
            known = {
                key: followed.updated_at
                for key, followed in self._followed.items()
                if followed.snapshot.job
            }
        keys = list(known)
        current = {}
        for start in range(0, len(keys), IDS_PER_QUERY):
            current.update(
                (str(pk), updated_at)
                for pk, updated_at in Job.objects.filter(
                    pk__in=keys[start : start + IDS_PER_QUERY]
                ).values_list("pk", "updated_at")
            )
        self._read_again([key for key in keys if current.get(key) != known[key]])

    def _update(self, jobs: dict) -> None:
        """New snapshots of followed jobs (None: deleted); their waiters are woken. A copy older
        than the one held (read before it, by another thread) is dropped."""
        with self._lock:
            for key, job in jobs.items():
                followed = self._followed.get(key)
                if followed is None or (
                    job is not None
                    and followed.updated_at is not None
                    and job.updated_at < followed.updated_at
                ):
                    continue
                followed.snapshot = Snapshot(job, _version(job))
                followed.updated_at = selectors.version_of(job)
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
        return queue_figures.current(waiting)


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
