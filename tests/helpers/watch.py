"""The web process's job watcher (jobs.watch) as tests use it: emptied between tests, reading from
the database where its thread cannot see a test's rows, and waited on until it has seen a write.

The watcher's thread has a database connection of its own: it sees what a test has committed
only, so tests whose rows stay in an uncommitted transaction have their reads sent to the
database instead."""

import time

from jobs import selectors
from jobs.models import Job
from jobs.watch import watcher


def read_from_the_database(monkeypatch) -> None:
    """Every read of a job or of the queue figures goes to the database, in the caller's thread
    (and its transaction), for the rest of the test. The selectors are looked up at each call, as
    the watcher looks them up: a test that replaces one replaces it here too."""
    monkeypatch.setattr(watcher, "job", lambda job_id: selectors.get_job(job_id))
    monkeypatch.setattr(watcher, "standings", lambda: selectors.queue_standings())


def start_afresh() -> None:
    """The watcher as a new web process has it: no job followed (but those a wait still holds),
    no queue figures, and its thread ended, with the database connection it held."""
    with watcher._lock:
        thread, watcher._thread = watcher._thread, None
        watcher._followed = {key: f for key, f in watcher._followed.items() if f.waiters}
        watcher._standings = None
    if thread is not None:
        watcher._stop.set()
        thread.join(10)
        watcher._stop.clear()


def settled(job_id, timeout=3) -> None:
    """Wait until the watcher has seen a write to the job, as it sees another process's writes (at
    its next tick); at once when reads go to the database."""
    written = Job.objects.filter(pk=job_id).values_list("updated_at", flat=True).first()
    deadline = time.monotonic() + timeout
    while (job := watcher.job(job_id)) is not None and job.updated_at != written:
        assert time.monotonic() < deadline, "the watcher never saw the write"
        time.sleep(0.02)
