"""What both API halves share: looking a job up for a caller, the site that URLs in bodies are
on, the threads of the views that wait, and the spec's errors for what submitting refuses."""

import functools
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from rest_framework.request import Request

from hydrilla import errors
from jobs import remote_images, selectors, submissions, uploads
from jobs.api import throttles
from jobs.models import Job
from jobs.services import clients, shared

CHANGING_ACTIONS = ("rename", "delete")
JOB_NOT_FOUND = "Job not found"


def job_for(request: Request, job_id, *, action: str, read=selectors.get_job) -> Job:
    """The job, when it exists and the caller may ``action`` it (view, rename, delete, cancel);
    ``read`` finds it (the database, or what the process's watcher already knows)."""
    job = read(job_id)
    if job is None:
        raise errors.not_found(JOB_NOT_FOUND)
    allowed = selectors.can_change if action in CHANGING_ACTIONS else selectors.can_manage
    if not allowed(request.user, job):
        raise errors.forbidden(f"You don't have permission to {action} this job")
    return job


def site(request: Request) -> str:
    """The ``scheme://host`` the client reached: the URLs in a body are on it."""
    return f"{request.scheme}://{request.get_host()}"


# The threads that do the database and storage work of the views that wait (a few short queries
# each): however many requests arrive at once, a process opens no more connections than this.
WAITING_VIEWS_THREADS = 4
WAITING_VIEWS_POOL = ThreadPoolExecutor(
    max_workers=WAITING_VIEWS_THREADS, thread_name_prefix="waiting-views"
)


def release_soon(slot: throttles.Slot) -> None:
    """Give a slot back from a coroutine without waiting, and without touching the cache from the
    event loop (there each request's context would open a cache connection of its own)."""
    WAITING_VIEWS_POOL.submit(slot.release)


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


def create_job_or_503(request: Request, **fields) -> Job:
    """``submissions.submit``, its refusals as the spec's errors."""
    try:
        return submissions.submit(
            site=site(request), submitted_from=throttles.client_address(request), **fields
        )
    except remote_images.RemoteImageError as exc:
        raise errors.bad_request(exc.message) from None
    except shared.QueueUnavailable:
        raise errors.service_unavailable() from None
    except clients.TooManyWaitingJobs as exc:
        raise throttles.TooMany("waiting jobs", exc.args[0]) from None


def save_uploaded_image(request: Request, field: str) -> str:
    """The upload in multipart field ``field``, stored (``uploads.store``); its storage name."""
    upload = request.FILES.get(field)
    if upload is None:
        raise errors.bad_request(f"No image file provided (multipart field '{field}')")
    try:
        return uploads.store(upload)
    except uploads.UploadTooLarge:
        raise errors.ApiError("Image is larger than 10 MB", 413) from None
    except uploads.InvalidImage as exc:
        raise errors.bad_request(str(exc)) from None
