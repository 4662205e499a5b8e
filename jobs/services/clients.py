"""The writes the API's clients ask for: submit, register, rename, delete, cancel, remesh, download.

A new job is written and its first stage sent once the row is committed; a caller over its limit
gets an exception and nothing is written."""

import logging
import secrets
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from hydrilla import metrics, request_id
from jobs import formats, plan, selectors, storage
from jobs.error_codes import ErrorCode
from jobs.models import ACTIVE_STATES, GenerateType, Job, JobKind, JobState, Stage, Upload
from jobs.services import shared
from webhooks.models import EventType
from webhooks.services import emit, job_webhook

logger = logging.getLogger(__name__)


class JobNotCancellable(Exception):
    """The job has already ended."""


class ApiHalf(StrEnum):
    """The API half a job was submitted through (``hydrilla_jobs_submitted_total{api}``)."""

    JOB = "job"  # /api/3d/...
    GENERATION = "generation"  # the root's /text-to-image, /text-to-3d, /image-to-3d


class TooManyWaitingJobs(Exception):
    """The caller already has MAX_WAITING_JOBS_PER_CALLER jobs waiting or running."""


class NoModel(Exception):
    """The job has no finished model (or no stored full-resolution mesh) to work from."""


@dataclass(frozen=True)
class JobOptions:
    generate_type: str = GenerateType.NORMAL
    face_count: int | None = None
    enable_pbr: bool = False
    polygon_type: str | None = None


def create_job(
    *,
    kind: str,
    api: ApiHalf,
    user: User | None,
    prompt: str | None = None,
    image_url: str | None = None,
    input_image: str = "",
    options: JobOptions = JobOptions(),
    submitted_from: str | None = None,
    test_mode: bool = False,
    webhook_url: str = "",
    webhook_events=None,
) -> Job:
    """Write a pending job and hand it to its queue once the row is committed. It keeps the id of
    the request being handled (``hydrilla.request_id``), for its stages' logs; a ``test_mode`` job
    (a test API key's) runs on the weight-free CPU path.

    Either the broker takes the job, or the job is withdrawn and QueueUnavailable raised: no job is
    ever left that nobody will run, and no worker ever receives a job that is not in the database.
    A caller (``user``, or ``submitted_from`` when anonymous) with MAX_WAITING_JOBS_PER_CALLER jobs
    waiting or running gets TooManyWaitingJobs, and nothing is written; so does a job's own
    webhook receiver (``webhook_url``, ``webhook_events``) that is refused (WebhookRefused). A job
    the broker took is counted as submitted through ``api``.
    """
    webhook = job_webhook(user, webhook_url, webhook_events)
    job = Job(
        kind=kind,
        user=user,
        prompt=prompt or None,
        image_url=image_url or None,
        input_image=input_image,
        generate_type=options.generate_type,
        face_count=options.face_count,
        enable_pbr=options.enable_pbr,
        polygon_type=options.polygon_type,
        seed=secrets.randbits(31),
        message="Queued",
        submitted_from=None if user else submitted_from,
        request_id=request_id.current(),
        test_mode=test_mode,
        **webhook,
    )
    if kind == JobKind.TEXT_TO_3D:
        job.preview_image = _reusable_preview(user, prompt, test_mode)
    job.stage = plan.first(kind, has_preview=bool(job.preview_image))
    with transaction.atomic():
        _check_waiting_jobs(user, submitted_from)
        job.save()
        transaction.on_commit(lambda: _enqueue_or_withdraw(job, api))
    logger.info("Created %s job %s%s", kind, job.pk, " (test mode)" if test_mode else "")
    return job


def _check_waiting_jobs(user: User | None, address: str | None) -> None:
    """Inside the creating transaction: serialise the caller's submissions, then count."""
    cap = settings.MAX_WAITING_JOBS_PER_CALLER
    if user is None and address is None:
        return
    caller = Q(user=user) if user is not None else Q(user=None, submitted_from=address)
    if connection.vendor == "postgresql":
        # Two concurrent submissions would both count below the cap; SQLite's IMMEDIATE
        # transactions already run one writer at a time.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                [f"waiting-jobs:{user.pk if user else address}"],
            )
    if Job.objects.filter(caller, state__in=ACTIVE_STATES).count() >= cap:
        raise TooManyWaitingJobs(cap)


def _reusable_preview(user: User | None, prompt: str | None, test_mode: bool) -> str:
    """A preview this user already made for this prompt, so the 3D job need not make another; in
    the job's own mode (a test key's preview is the weight-free model's, no picture of it)."""
    if not prompt:
        return ""
    preview = (
        Job.objects.filter(
            kind=JobKind.PREVIEW,
            state=JobState.COMPLETED,
            user=user,
            prompt=prompt,
            test_mode=test_mode,
        )
        .exclude(preview_image="")
        .order_by("-created_at")
        .values_list("preview_image", flat=True)
        .first()
    )
    return preview or ""


def _enqueue_or_withdraw(job: Job, api: ApiHalf) -> None:
    try:
        shared.enqueue(job)
    except shared.QueueUnavailable:
        Job.objects.filter(pk=job.pk).delete()
        raise
    metrics.JOBS_SUBMITTED.labels(kind=job.kind, api=api).inc()


class RegistrationRefused(Exception):
    """The id belongs to a job the caller may not register: not a preview, or someone else's."""


def register_job(*, job_id, user: User | None, prompt: str | None, preview_image_url: str) -> Job:
    """Record a preview the client already has (idempotent on ``job_id``).

    A preview made by ``/text-to-image`` already has its row: registering it attaches the user,
    when it has no owner yet. Only previews: a 3D job's id cannot be registered into another
    owner's hands; a registered preview never expires as unregistered (retention). An unknown id
    becomes a finished preview job that keeps the address it was given as a foreign URL, even one
    into our own storage: that file belongs to the job that made it, goes when that job is
    deleted, and never when this one is.
    """
    now = timezone.now()
    with transaction.atomic():
        job, created = Job.objects.select_for_update().get_or_create(
            pk=job_id,
            defaults={
                "kind": JobKind.PREVIEW,
                "state": JobState.COMPLETED,
                "user": user,
                "prompt": prompt or None,
                "registered_preview_url": preview_image_url,
                "progress": 100,
                "message": "Preview image registered",
                "finished_at": now,
                "registered_at": now,
            },
        )
        if created:
            return job
        if job.kind != JobKind.PREVIEW or not selectors.can_manage(user, job):
            raise RegistrationRefused(job.pk)
        registered = ["registered_at"] if job.registered_at is None else []
        job.registered_at = job.registered_at or now
        if job.user_id is None and user is not None:
            job.user = user
            registered.append("user")
        if registered:
            job.save(update_fields=[*registered, "updated_at"])
    return job


def rename_job(job: Job, name: str) -> None:
    Job.objects.filter(pk=job.pk).update(name=name, updated_at=timezone.now())
    job.name = name


def delete_job(job: Job) -> None:
    """Delete the row, then its files once the delete is committed (a worker still running it
    finds the row gone and stops at its next step). A preview image or full-resolution mesh that
    another job shares (a reused preview, a remesh) stays."""
    files = [job.result_glb, job.processed_image, job.raw_mesh, *job.downloads.values()]
    files += [
        name
        for field in ("preview_image", "source_mesh")
        if (name := shared.unshared_file(job.pk, field))
    ]
    with transaction.atomic():
        job.delete()
        transaction.on_commit(lambda: storage.delete(*files))


def record_upload(name: str) -> None:
    """An uploaded image was stored under ``name``: deleted later unless a job uses it."""
    Upload.objects.create(name=name)


def remesh_job(source: Job, options: JobOptions, webhook_url: str = "", webhook_events=None) -> Job:
    """A new job that finishes ``source``'s stored full-resolution mesh with ``options``, on the
    CPU queue. It belongs to the source's owner and shows its prompt, image and preview.

    Raises NoModel when the source has no stored mesh (unfinished, or made before meshes were
    kept), WebhookRefused for a webhook receiver that is refused.
    """
    if source.state != JobState.COMPLETED or not source.source_mesh:
        raise NoModel(source.pk)
    webhook = job_webhook(source.user, webhook_url, webhook_events)
    job = Job(
        kind=JobKind.REMESH,
        user=source.user,
        prompt=source.prompt,
        image_url=source.image_url,
        preview_image=source.preview_image,
        registered_preview_url=source.registered_preview_url,
        source_mesh=source.source_mesh,
        stage=Stage.REMESH,
        generate_type=options.generate_type,
        face_count=options.face_count,
        enable_pbr=options.enable_pbr,
        polygon_type=options.polygon_type,
        message="Queued",
        request_id=request_id.current(),
        test_mode=source.test_mode,
        **webhook,
    )
    with transaction.atomic():
        _check_waiting_jobs(job.user, None)
        job.save()
        transaction.on_commit(lambda: _enqueue_or_withdraw(job, ApiHalf.JOB))
    logger.info("Created remesh job %s of job %s", job.pk, source.pk)
    return job


def download(job: Job, format_name: str) -> str:
    """The storage name of the job's model in ``format_name`` (one of ``formats.FORMATS``),
    converted from its GLB and stored on the first request, then kept until the job goes.

    Converted here, in the web process: the formats module imports no torch, and one conversion
    of a finished model takes well under a second (docs/measurements.md). Raises NoModel for a
    job without a result, and ``formats.ConversionFailed`` or ``storage.StorageUnavailable``.
    """
    if job.state != JobState.COMPLETED or not job.result_glb:
        raise NoModel(job.pk)
    if format_name == formats.DEFAULT_FORMAT:
        return job.result_glb
    if name := job.downloads.get(format_name):
        return name
    data = formats.convert(storage.read(job.result_glb), format_name)
    made = storage.save(
        storage.job_folder(job.pk), f"model.{formats.FORMATS[format_name].extension}", data
    )
    with transaction.atomic():
        current = (
            Job.objects.select_for_update().filter(pk=job.pk, result_glb=job.result_glb).first()
        )
        kept = current.downloads.get(format_name) if current else None
        if current is not None and not kept:
            # A plain UPDATE: a download is no change to the job, so updated_at stays.
            Job.objects.filter(pk=job.pk).update(downloads=current.downloads | {format_name: made})
            return made
    # A concurrent first download won, or the job was deleted or requeued meanwhile: this file
    # belongs to nobody.
    storage.delete(made)
    if current is None:
        raise NoModel(job.pk)
    return kept


def request_cancel(job: Job) -> str:
    """Cancel a waiting job, or one between two stages, at once; ask a worker running one of its
    stages to stop at its next step.

    Returns the state the job is in afterwards. Raises JobNotCancellable for a finished job.
    """
    # Each try is one conditional UPDATE; a stage handed over or claimed in between makes the
    # next one match.
    for _ in range(3):
        now = timezone.now()
        between_stages = selectors.unheld() & Q(state=JobState.PROCESSING)
        ended = Job.objects.filter(Q(state=JobState.PENDING) | between_stages, pk=job.pk)
        with transaction.atomic():
            cancelled = ended.update(**shared.cancelled_fields(now), cancel_requested=True)
            if cancelled:
                emit(job.pk, EventType.CANCELLED)
        if cancelled:
            metrics.job_finished(job.kind, JobState.CANCELLED, ErrorCode.CANCELLED)
            job.state = JobState.CANCELLED
            return job.state
        held = Job.objects.filter(pk=job.pk, state=JobState.PROCESSING, heartbeat_at__isnull=False)
        if held.update(cancel_requested=True, message="Cancelling…", updated_at=now):
            job.state = JobState.PROCESSING
            return job.state
        if not Job.objects.filter(pk=job.pk, state__in=ACTIVE_STATES).exists():
            break
    raise JobNotCancellable(job.pk)
