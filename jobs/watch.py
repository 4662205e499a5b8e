"""Change notification for requests that wait on jobs (event streams, synchronous previews).

One thread per web process reads the watched jobs in a single query every ``POLL_SECONDS`` and
wakes the requests waiting on those that changed. However many clients wait, the database sees
one query per tick, and a waiting request holds no database connection.
"""

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from django.db import close_old_connections, connection

from jobs import selectors
from jobs.models import Job

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Snapshot:
    """A job as last read, with its queue figures (computed once for all its watchers)."""

    job: Job | None  # None: the job was deleted
    queue: dict
    version: tuple


def _version(job: Job | None) -> tuple:
    """What a watcher is told about: the job's state, progress and message (or its deletion)."""
    return ("deleted",) if job is None else (job.state, job.progress, job.message)


class JobWatcher:
    def __init__(self):
        self._condition = threading.Condition()
        self._watchers: Counter = Counter()
        self._snapshots: dict[str, Snapshot] = {}
        self._thread: threading.Thread | None = None

    def subscribe(self, job: Job) -> Snapshot:
        """Start watching a job the caller has just read; returns its first snapshot.

        A job already watched keeps its shared snapshot (at most one poll old), so that every
        watcher sees the same sequence of versions and none goes back to an older one."""
        key = str(job.pk)
        fresh = Snapshot(job, selectors.job_queue(job), _version(job))
        with self._condition:
            self._watchers[key] += 1
            snapshot = self._snapshots.setdefault(key, fresh)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._poll, name="job-watcher", daemon=True)
                self._thread.start()
        return snapshot

    def unsubscribe(self, job_id) -> None:
        key = str(job_id)
        with self._condition:
            self._watchers[key] -= 1
            if self._watchers[key] <= 0:
                del self._watchers[key]
                self._snapshots.pop(key, None)

    def wait(self, job_id, seen_version: tuple, timeout: float) -> Snapshot:
        """The job's snapshot once its version differs from ``seen_version``, or after ``timeout``."""
        key = str(job_id)
        with self._condition:
            self._condition.wait_for(lambda: self._snapshots[key].version != seen_version, timeout)
            return self._snapshots[key]

    def wait_until_idle(self, timeout: float) -> bool:
        """True once nothing is watched and the polling thread has ended (with its connection)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._condition:
                thread = self._thread
                if thread is None and not self._watchers:
                    return True
            if thread is not None:
                thread.join(max(0.0, min(deadline - time.monotonic(), POLL_SECONDS * 2)))
            else:
                time.sleep(POLL_SECONDS / 5)
        return False

    def _poll(self) -> None:
        try:
            while True:
                time.sleep(POLL_SECONDS)
                with self._condition:
                    keys = list(self._watchers)
                if not keys:
                    _close_quietly()  # before leaving, so that "idle" means "no connection"
                    with self._condition:
                        if not self._watchers:
                            self._thread = None  # a later subscribe starts a new thread
                            return
                    continue
                try:
                    close_old_connections()
                    self._refresh(keys)
                except Exception:
                    logger.exception("Job watcher poll failed; retrying")
                    _close_quietly()
        finally:
            _close_quietly()  # an idle process holds no database connection

    def _refresh(self, keys: list[str]) -> None:
        jobs = {str(job.pk): job for job in Job.objects.select_related("user").filter(pk__in=keys)}
        changed = {}
        for key in keys:
            job = jobs.get(key)
            current = self._snapshots.get(key)
            if current is not None and current.version != _version(job):
                queue = selectors.job_queue(job) if job is not None else {}
                changed[key] = Snapshot(job, queue, _version(job))
        if changed:
            with self._condition:
                for key, snapshot in changed.items():
                    if key in self._snapshots:
                        self._snapshots[key] = snapshot
                self._condition.notify_all()


def _close_quietly() -> None:
    try:
        connection.close()
    except Exception:
        logger.warning("Could not close the job watcher's database connection", exc_info=True)


watcher = JobWatcher()
