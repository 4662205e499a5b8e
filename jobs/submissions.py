"""A job submitted through either API half, with the images it is to read."""

from django.conf import settings

from jobs import remote_images, storage
from jobs.models import Job
from jobs.services import clients


class ViewsNotTaken(ValueError):
    """Extra views were sent, but the configured image-to-3D backend reads the front one only."""


def backend_takes_views() -> bool:
    """Whether the configured image-to-3D backend reads extra views: the silhouette backend (its
    visual hull), and Hunyuan3D-2 with a multi-view (2mv) checkpoint. Read off the settings: the
    web process never imports the backends (``ImageTo3DBackend.takes_views`` is their own word)."""
    backend = settings.IMAGE_TO_3D_BACKEND
    subfolder = settings.HUNYUAN3D_SUBFOLDER or ""
    return backend == "silhouette" or (backend == "hunyuan3d" and "-mv" in subfolder)


def submit(
    *,
    site: str,
    submitted_from: str,
    image_url: str | None = None,
    view_urls: dict[str, str] | None = None,
    view_images: dict[str, str] | None = None,
    **fields,
) -> Job:
    """Create the job. An image URL into our own storage (on ``site``) is kept by name, read
    directly by the worker; any other is checked now, so that a forbidden address is refused
    (RemoteImageError) before a job exists. Extra views (by name: ``view_urls`` as given,
    ``view_images`` uploaded) go through the same; a backend that reads no views refuses them
    (ViewsNotTaken), never ignores them."""
    views = dict(view_images or {})
    for view, url in (view_urls or {}).items():
        views.setdefault(view, _checked(url, site))
    if views and not backend_takes_views():
        raise ViewsNotTaken(
            f"The {settings.IMAGE_TO_3D_BACKEND} backend makes a model from one photo: "
            "send the front view only"
        )
    return clients.create_job(
        image_url=image_url,
        input_image=_checked(image_url, site) if image_url else "",
        submitted_from=submitted_from,
        view_urls=dict(view_urls or {}),
        view_images={view: name for view, name in views.items() if name},
        **fields,
    )


def _checked(url: str, site: str) -> str:
    """The storage name of a URL into our storage, or "" for a public one found fine to fetch."""
    name = storage.name_from_url(url, site)
    if not name:
        remote_images.resolve_public(url)
    return name or ""
