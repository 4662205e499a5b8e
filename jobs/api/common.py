"""What both API halves share: looking a job up for a caller, the site that URLs in bodies are
on, submitting a job and storing an uploaded image (their refusals as the spec's errors), and
giving a slot back from the views that wait."""

from rest_framework.request import Request

from accounts.authentication import uses_test_key
from hydrilla import callers, errors
from jobs import remote_images, selectors, storage, uploads
from jobs.api import throttles
from jobs.models import Job
from jobs.services import clients, shared
from jobs.watch import WAITING_VIEWS_POOL
from webhooks import services as webhooks

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


def release_soon(slot: throttles.Slot) -> None:
    """Give a slot back from a coroutine without waiting, and without touching the cache from the
    event loop (there each request's context would open a cache connection of its own)."""
    WAITING_VIEWS_POOL.submit(slot.release)


def job_webhook(data: dict, user) -> dict:
    """A submit body's own webhook receiver (``JobWebhookFields``) for a job of ``user``'s, as the
    job services take it; checked now, before anything (an upload) is stored, and a 400 when it
    is refused."""
    url, events = data.get("webhookUrl") or "", data.get("webhookEvents")
    if events and not url:
        raise errors.bad_request("webhookEvents needs a webhookUrl")
    try:
        webhooks.job_webhook(user, url, events)
    except webhooks.WebhookRefused as exc:
        raise errors.bad_request(exc.message) from None
    return {"webhook_url": url, "webhook_events": events}


def submit(
    request: Request, *, api: clients.ApiHalf, image_url: str | None = None, **fields
) -> Job:
    """Create the job (``clients.create_job``) through the ``api`` half (a test API key's in test
    mode), its refusals as the spec's errors. An image URL into our own storage (on the request's
    site) is kept by name, read directly by the worker; any other is checked now, so that a
    forbidden address is refused before a job exists; so is a webhook receiver that may not be
    (``webhooks.services.job_webhook``)."""
    try:
        input_image = storage.name_from_url(image_url, site(request)) if image_url else None
        if image_url and not input_image:
            remote_images.resolve_public(image_url)
        return clients.create_job(
            api=api,
            image_url=image_url,
            input_image=input_image or "",
            submitted_from=callers.client_address(request),
            test_mode=uses_test_key(request),
            **fields,
        )
    except remote_images.RemoteImageError as exc:
        raise errors.bad_request(exc.message) from None
    except webhooks.WebhookRefused as exc:  # its address changed since job_webhook checked it
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
