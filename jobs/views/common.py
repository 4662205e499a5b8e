"""What both API halves share: looking a job up for a caller, and turning service errors into
the spec's error responses."""

from rest_framework.request import Request

from jobs import errors, selectors, services, storage
from jobs.models import Job


def caller(request: Request):
    """The authenticated user, or None for anonymous callers."""
    return request.user if request.user is not None else None


def job_for(request: Request, job_id, *, action: str) -> Job:
    """The job, when it exists and the caller may ``action`` it (view, rename, delete, cancel)."""
    job = selectors.get_job(job_id)
    if job is None:
        raise errors.not_found()
    if not selectors.can_manage(caller(request), job):
        raise errors.forbidden(f"You don't have permission to {action} this job")
    return job


def create_job_or_503(**fields) -> Job:
    try:
        return services.create_job(**fields)
    except services.QueueUnavailable:
        raise errors.service_unavailable() from None


def store_or_503(prefix: str, filename: str, data: bytes) -> str:
    try:
        return storage.save(prefix, filename, data)
    except storage.StorageUnavailable:
        raise errors.service_unavailable() from None
