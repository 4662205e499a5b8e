"""A job's status as Server-Sent Events (the generation API's ``/stream``)."""

import json
import random

from rest_framework import renderers

from jobs.api.common import JOB_NOT_FOUND
from jobs.models import FINAL_STATES
from jobs.watch import watcher

STREAM_KEEPALIVE_SECONDS = 15


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets ``Accept: text/event-stream`` (EventSource) through content negotiation; the stream
    itself is written by ``job_events``, and errors stay JSON."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


async def job_events(snapshot, status_body, on_close):
    """The events of one stream, until the job ends or the client goes away (the server then
    cancels this coroutine, which ends its wait at once). ``status_body`` is a coroutine
    function giving a job's /status body; ``on_close`` is called once the stream is over."""
    job_id = snapshot.job.pk
    # The first comment comes at a random point of the first interval, so that streams opened
    # together do not all fall due together ever after.
    keepalive = random.uniform(0.5, 1.0) * STREAM_KEEPALIVE_SECONDS
    try:
        while True:
            if snapshot.job is None:
                yield _event({"error": JOB_NOT_FOUND}, name="error")
                return
            body = await status_body(snapshot.job)
            yield _event(body)
            if snapshot.job.state in FINAL_STATES:
                yield _event(body, name="end")
                return
            seen = snapshot.version
            while snapshot.version == seen:
                snapshot = await watcher.next_change(job_id, seen, keepalive)
                if snapshot.version == seen:
                    yield ": keepalive\n\n"
                    keepalive = STREAM_KEEPALIVE_SECONDS
    finally:
        on_close()


def _event(body: dict, name: str | None = None) -> str:
    """One event; unnamed ones reach EventSource's ``onmessage``."""
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(body)}\n\n"
