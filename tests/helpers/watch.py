"""The web process's job watcher (jobs.watch) as tests use it: emptied between tests, and reading
from the database where its threads cannot see a test's rows.

The watcher's threads have database connections of their own: they see what a test has committed
only, so tests whose rows stay in an uncommitted transaction have their reads sent to the
database instead. A write needs no waiting for: the watcher checks each copy as it is read."""

from jobs import selectors
from jobs.watch import watcher


def read_from_the_database(monkeypatch) -> None:
    """Every read of a job or of the queue figures goes to the database, in the caller's thread
    (and its transaction), for the rest of the test. The selectors are looked up at each call, as
    the watcher looks them up: a test that replaces one replaces it here too."""
    monkeypatch.setattr(watcher, "job", lambda job_id: selectors.get_job(job_id))
    monkeypatch.setattr(watcher, "standings", lambda: selectors.queue_standings())


def start_afresh() -> None:
    """The watcher as a new web process has it: no job followed (but those a wait still holds),
    no queue figures, and its threads ended (the listener's with the watcher's), with the
    database connections they held."""
    with watcher._lock:
        thread, watcher._thread = watcher._thread, None
        watcher._followed = {key: f for key, f in watcher._followed.items() if f.waiters}
        watcher._standings = None
    if thread is not None:
        watcher._stop.set()
        thread.join(10)
        watcher._stop.clear()
