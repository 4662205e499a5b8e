"""Files in the configured storage (local ``var/media`` or S3), addressed by storage name.

Names are stored on jobs; URLs are made when a job is read, absolute, so a client can fetch them
as returned whichever backend is configured.
"""

import logging
import uuid
from urllib.parse import unquote, urlsplit

from django.core.exceptions import SuspiciousOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.crypto import salted_hmac

from hydrilla.outages import Outage

logger = logging.getLogger(__name__)


class StorageUnavailable(Outage):
    """The storage backend refused or could not be reached."""


def job_folder(job_id) -> str:
    """Where a job's files go: a folder name derived from the id with the secret key, so the
    files of one job stay together while their URLs, which get shared, never reveal the job's id
    (an id is what ``/cancel``, ``/status`` and ``register-job`` act on)."""
    return "jobs/" + salted_hmac("hydrilla.jobs.storage.job_folder", str(job_id)).hexdigest()[:32]


def save(prefix: str, filename: str, data: bytes) -> str:
    """Store ``data`` under ``prefix/`` with a collision-free name; return the storage name."""
    stem, dot, ext = filename.rpartition(".")
    unique = f"{stem or ext}-{uuid.uuid4().hex[:12]}{dot}{ext if stem else ''}"
    try:
        return default_storage.save(f"{prefix}/{unique}", ContentFile(data))
    except Exception as exc:  # boto3, OS and network errors alike mean the same to the caller
        logger.exception("Storage write failed for %s", filename)
        raise StorageUnavailable(str(exc)) from exc


def read(name: str) -> bytes:
    try:
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    except Exception as exc:
        raise StorageUnavailable(str(exc)) from exc


def delete(*names: str) -> None:
    """Best effort: a file left behind is a cost, a failed user request over it would be worse."""
    for name in filter(None, names):
        try:
            default_storage.delete(name)
        except Exception:
            logger.exception("Could not delete %s from storage", name)


def absolute(location: str, site: str | None) -> str:
    """``location``, a path of this service's or already a whole URL (S3's), as a whole URL on
    ``site``: the ``scheme://host`` the client reached this service at (kept as it is without)."""
    return site + location if site and location.startswith("/") else location


def url(name: str, site: str | None = None) -> str | None:
    return absolute(default_storage.url(name), site) if name else None


def name_from_url(address: str, site: str | None = None) -> str | None:
    """The storage name behind a URL that this service handed out, or None for foreign URLs.

    Raises StorageUnavailable when the storage cannot say whether the file exists."""
    if not address:
        return None
    parts = urlsplit(address)
    probe = urlsplit(url("__probe__", site) or "")
    base_path = probe.path[: -len("__probe__")]
    same_origin = not parts.netloc or (parts.scheme, parts.netloc) == (probe.scheme, probe.netloc)
    if not same_origin or not parts.path.startswith(base_path):
        return None
    name = unquote(parts.path[len(base_path) :])
    if not name or ".." in name.split("/") or not exists(name):
        return None
    return name


def exists(name: str) -> bool:
    try:
        return default_storage.exists(name)
    except SuspiciousOperation:
        return False  # a name the storage refuses (an absolute path, say) names no file of ours
    except Exception as exc:
        raise StorageUnavailable(str(exc)) from exc
