"""Progress, heartbeat, cancellation and time limit of the running job.

The runner's stages enter each step of the job by name; its share of the job's progress and its
message come from the job's plan (``jobs.plan``). Pipelines call ``on_denoising_step`` after every
denoising step of a model call; the database hears of it at most every ``min_interval`` seconds.
Each write is also the cancellation check: it fails when the job was cancelled, deleted or taken
over, and the run then stops at that step.
"""

import logging
import threading
import time

from django.db import DatabaseError, close_old_connections, connection

from generation.database import drop_connection
from generation.pipelines import GenerationError, JobCancelled
from jobs.error_codes import ErrorCode
from jobs.plan import StepShare
from jobs.services import workers

logger = logging.getLogger(__name__)


class JobTimedOut(GenerationError):
    def __init__(self, limit_seconds: int):
        super().__init__(
            ErrorCode.TIMEOUT,
            f"The job took longer than {limit_seconds} s and was stopped. Please try again.",
        )


class ProgressReporter:
    """Progress and step times of one stage (``lease``) whose ``steps`` (``jobs.plan.steps``) give
    each step's share of the job, from where the job stands: ``progress`` so far and the
    ``step_seconds`` of its earlier stages."""

    def __init__(
        self,
        lease: workers.Lease,
        *,
        steps: tuple[StepShare, ...],
        time_limit_seconds: int,
        progress: int = 0,
        step_seconds: dict | None = None,
        min_interval: float = 0.5,
    ):
        self.lease = lease
        self._steps, self._position = steps, 0
        self.min_interval = min_interval
        self.time_limit_seconds = time_limit_seconds
        self.deadline = time.monotonic() + time_limit_seconds
        self._range = (0, 100)
        self._message = ""
        self._last_write = 0.0
        self._highest = progress
        self._seconds: dict[str, float] = dict(step_seconds or {})
        self._current: tuple[str, float] | None = None

    def step(self, name: str) -> None:
        """Enter step ``name``: the stage's next step of that name, or its current one again (a
        model call tried again); always written, always checked."""
        self._close_step()
        share = self._share(name)
        self._current = (share.step.value, time.monotonic())
        self._range, self._message = (share.start, share.end), share.message
        self._write(share.start)

    def _share(self, name: str) -> StepShare:
        for position in range(self._position, len(self._steps)):
            if self._steps[position].step == name:
                self._position = position
                return self._steps[position]
        raise LookupError(f"The stage's plan has no step {name!r} from here: {self._steps}")

    def step_seconds(self) -> dict[str, float]:
        """Seconds spent in each step so far (the current one up to now)."""
        self._close_step()
        return dict(self._seconds)

    def _close_step(self) -> None:
        if self._current is not None:
            name, since = self._current
            self._seconds[name] = round(self._seconds.get(name, 0.0) + time.monotonic() - since, 4)
            self._current = (name, time.monotonic())

    def on_denoising_step(self, done: int, total: int) -> None:
        start, end = self._range
        progress = start + (end - start) * min(done, total) // max(total, 1)
        if time.monotonic() - self._last_write >= self.min_interval:
            self._write(progress)

    def _write(self, progress: int) -> None:
        if time.monotonic() > self.deadline:
            raise JobTimedOut(self.time_limit_seconds)
        self._last_write = time.monotonic()
        # A step tried again (after an out-of-memory, or a stage taken over) counts from the start
        # again: the job's progress does not go back.
        self._highest = max(self._highest, progress)
        try:
            still_ours = workers.report_progress(self.lease, self._highest, self._message)
        except DatabaseError:
            # Progress is best effort: the run goes on, and the next write checks again.
            logger.warning(
                "Progress of job %s not written: database unreachable", self.lease.job_id
            )
            drop_connection()
            return
        if not still_ours:
            raise JobCancelled()


class Heartbeat:
    """Marks the job alive from a side thread, also while a long step (a model load) blocks."""

    def __init__(self, lease: workers.Lease, interval: float):
        self.lease, self.interval = lease, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{lease.job_id}", daemon=True
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _run(self):
        try:
            while not self._stop.wait(self.interval):
                close_old_connections()
                try:
                    if not workers.beat(self.lease):
                        return
                except DatabaseError:
                    drop_connection()  # beat again next time: an outage must not silence a live job
        finally:
            connection.close()  # this thread's own connection
