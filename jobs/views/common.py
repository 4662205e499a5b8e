"""What both API halves share: looking a job up for a caller, and turning service errors into
the spec's error responses."""

import functools
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from rest_framework.request import Request

from jobs import errors, remote_images, selectors, services, storage, throttles, uploads
from jobs.models import Job


def caller(request: Request):
    """The authenticated user, or None for anonymous callers."""
    return request.user if request.user is not None else None


CHANGING_ACTIONS = ("rename", "delete")


def job_for(request: Request, job_id, *, action: str, read=selectors.get_job) -> Job:
    """The job, when it exists and the caller may ``action`` it (view, rename, delete, cancel);
    ``read`` finds it (the database, or what the process's watcher already knows)."""
    job = read(job_id)
    if job is None:
        raise errors.not_found()
    allowed = selectors.can_change if action in CHANGING_ACTIONS else selectors.can_manage
    if not allowed(caller(request), job):
        raise errors.forbidden(f"You don't have permission to {action} this job")
    return job


# The threads that do the database and storage work of the views that wait (a few short queries
# each): however many requests arrive at once, a process opens no more connections than this.
WAITING_VIEWS_THREADS = 4
WAITING_VIEWS_POOL = ThreadPoolExecutor(max_workers=WAITING_VIEWS_THREADS, thread_name_prefix="waiting-views")


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


def create_job_or_503(request: Request, *, image_url: str | None = None, **fields) -> Job:
    """Create the job; an image URL into our own storage is kept by name (read directly by the
    worker), any other is checked now so a forbidden address is refused before a job exists."""
    input_image = storage.name_from_url(image_url, request) if image_url else None
    if image_url and not input_image:
        try:
            remote_images.resolve_public(image_url)
        except remote_images.RemoteImageError as exc:
            raise errors.bad_request(exc.message) from None
    try:
        return services.create_job(
            image_url=image_url,
            input_image=input_image or "",
            submitted_from=throttles.client_address(request),
            **fields,
        )
    except services.QueueUnavailable:
        raise errors.service_unavailable() from None
    except services.TooManyWaitingJobs as exc:
        raise throttles.TooMany("waiting jobs", exc.args[0]) from None


def save_uploaded_image(request: Request, field: str) -> str:
    """Validate an uploaded image (size, a real JPEG/PNG/WEBP) and store it under ``uploads/``,
    re-encoded without its metadata (see ``uploads.clean_image``)."""
    upload = request.FILES.get(field)
    if upload is None:
        raise errors.bad_request(f"No image file provided (multipart field '{field}')")
    if upload.size > settings.UPLOAD_MAX_BYTES:
        raise errors.ApiError("Image is larger than 10 MB", 413)
    data = upload.read()
    try:
        data, extension = uploads.clean_image(data)
    except uploads.InvalidImage as exc:
        raise errors.bad_request(str(exc)) from None
    name = storage.save("uploads", uploads.upload_filename(extension), data)
    services.record_upload(name)
    return name
