"""A job submitted through either API half, with the image it is to read."""

from jobs import remote_images, storage
from jobs.models import Job
from jobs.services import clients


def submit(*, site: str, submitted_from: str, image_url: str | None = None, **fields) -> Job:
    """Create the job. An image URL into our own storage (on ``site``) is kept by name, read
    directly by the worker; any other is checked now, so that a forbidden address is refused
    (RemoteImageError) before a job exists."""
    input_image = storage.name_from_url(image_url, site) if image_url else None
    if image_url and not input_image:
        remote_images.resolve_public(image_url)
    return clients.create_job(
        image_url=image_url, input_image=input_image or "", submitted_from=submitted_from, **fields
    )
