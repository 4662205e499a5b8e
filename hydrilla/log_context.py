"""What a log line is about: the job, its stage and attempt, the HTTP request. Set where each is
known (the web tier's request-id middleware sets ``request_id`` from the request's X-Request-ID,
with ``bound(request_id=...)`` around the request; a worker's task binds ``job_id`` and ``stage``,
its runner ``attempt`` once the stage is claimed) and added to every
record logged meanwhile by ``ContextFilter``: ``LOG_FORMAT=json`` writes them as fields.

Django-free (the settings import it). Context variables, so that each thread and each coroutine
has its own.
"""

import contextlib
import logging
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("job_id", default=None)
stage: ContextVar[str | None] = ContextVar("stage", default=None)
attempt: ContextVar[int | None] = ContextVar("attempt", default=None)

VARIABLES = {"job_id": job_id, "stage": stage, "attempt": attempt, "request_id": request_id}
FIELDS = tuple(VARIABLES)


@contextlib.contextmanager
def bound(**values):
    """Set the named variables (``bound(job_id=..., stage=...)``) for the block, then restore
    them."""
    tokens = [(VARIABLES[name], VARIABLES[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


class ContextFilter(logging.Filter):
    """Adds each variable that is set to the record (``record.job_id``, ...); one not set is left
    out, so a JSON line has only the fields that apply to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, variable in VARIABLES.items():
            value = variable.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True
