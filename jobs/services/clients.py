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
from jobs import formats, mesh_uploads, plan, selectors, storage
from jobs.error_codes import ErrorCode
from jobs.models import (
    ACTIVE_STATES,
    EXTRA_VIEWS,
    GenerateType,
    Job,
    JobKind,
    JobState,
    Stage,
    Upload,
)
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


class ViewsNotTaken(Exception):
    """Extra views were sent, but the configured image-to-3D backend reads the front one only."""


def backend_takes_views() -> bool:
    """Whether the configured image-to-3D backend reads extra views: the silhouette backend (its
    visual hull), and Hunyuan3D-2 with a multi-view (2mv) checkpoint. Read off the settings: the
    web process never imports the backends (``ImageTo3DBackend.takes_views`` is their own word)."""
    backend = settings.IMAGE_TO_3D_BACKEND
    subfolder = settings.HUNYUAN3D_SUBFOLDER or ""
    return backend == "silhouette" or (backend == "hunyuan3d" and "-mv" in subfolder)


class NoModel(Exception):
    """The job has no finished model (or no stored full-resolution mesh) to work from."""


@dataclass(frozen=True)
class JobOptions:
    generate_type: str = GenerateType.NORMAL
    face_count: int | None = None
    enable_pbr: bool = False
    polygon_type: str | None = None
    height_mm: float | None = None  # the printed height of the stl and 3mf downloads


def create_job(
    *,
    kind: str,
    api: ApiHalf,
    user: User | None,
    prompt: str | None = None,
    image_url: str | None = None,
    input_image: str = "",
    view_urls: dict[str, str] | None = None,
    view_images: dict[str, str] | None = None,
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
    the broker took is counted as submitted through ``api``. ``view_urls`` and ``view_images``:
    the extra views (``EXTRA_VIEWS``), as given and by storage name.
    """
    views = set(view_urls or {}) | set(view_images or {})
    if views - set(EXTRA_VIEWS):
        raise ValueError(f"Unknown views {sorted(views)}; use {', '.join(EXTRA_VIEWS)}")
    if views and not backend_takes_views():
        raise ViewsNotTaken(
            f"The {settings.IMAGE_TO_3D_BACKEND} backend makes a model from one photo: "
            "send the front view only"
        )
    webhook = job_webhook(user, webhook_url, webhook_events)
    job = Job(
        kind=kind,
        user=user,
        prompt=prompt or None,
        image_url=image_url or None,
        input_image=input_image,
        view_urls=view_urls or {},
        view_images=view_images or {},
        generate_type=options.generate_type,
        face_count=options.face_count,
        enable_pbr=options.enable_pbr,
        polygon_type=options.polygon_type,
        height_mm=options.height_mm,
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
    files += [job.quad_mesh, *job.view_images.values(), *job.processed_views.values()]
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
        height_mm=options.height_mm,
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


def download(job: Job, format_name: str, height_mm: float | None = None) -> str:
    """The storage name of the job's model in ``format_name`` (one of ``formats.FORMATS``),
    converted from its GLB (and its quads, for a quad model) and stored on the first request,
    then kept until the job goes. ``height_mm``: the printed height of the print formats, the
    job's own (or PRINT_HEIGHT_MM) when None; each height is stored apart.

    Converted here, in the web process (the formats module imports no torch), except what
    ``make_heavy_downloads`` already made on the cpu queue. Raises NoModel for a job without a
    result, and ``formats.ConversionFailed`` or ``storage.StorageUnavailable``.
    """
    if job.state != JobState.COMPLETED or not job.result_glb:
        raise NoModel(job.pk)
    if format_name == formats.DEFAULT_FORMAT:
        return job.result_glb
    key = _download_key(format_name, height_mm)
    if name := job.downloads.get(key):
        return name
    data = _converted(job, format_name, height_mm)
    made = storage.save(
        storage.job_folder(job.pk), f"{key}.{formats.FORMATS[format_name].extension}", data
    )
    with transaction.atomic():
        current = (
            Job.objects.select_for_update().filter(pk=job.pk, result_glb=job.result_glb).first()
        )
        kept = current.downloads.get(key) if current else None
        if current is not None and not kept:
            # A plain UPDATE: a download is no change to the job, so updated_at stays.
            Job.objects.filter(pk=job.pk).update(downloads=current.downloads | {key: made})
            return made
    # A concurrent first download won, or the job was deleted or requeued meanwhile: this file
    # belongs to nobody.
    storage.delete(made)
    if current is None:
        raise NoModel(job.pk)
    return kept


def _download_key(format_name: str, height_mm: float | None) -> str:
    """The ``downloads`` key of a format: its name, and the height a print was asked at."""
    if format_name in formats.PRINT_FORMATS and height_mm is not None:
        return f"{format_name}-{height_mm:g}mm"
    return format_name


def _converted(job: Job, format_name: str, height_mm: float | None) -> bytes:
    quads = storage.read(job.quad_mesh) if job.quad_mesh else None
    height = height_mm or job.height_mm or settings.PRINT_HEIGHT_MM
    return formats.convert(
        storage.read(job.result_glb), format_name, quad_obj=quads, height_mm=height
    )


def make_heavy_downloads(job_id) -> None:
    """Make the formats that take seconds (``formats.HEAVY_FORMATS``) of a finished job ahead of
    their first download: run by a cpu-queue worker (``jobs.tasks``), so the web process rarely
    converts them itself."""
    job = Job.objects.filter(pk=job_id, state=JobState.COMPLETED).first()
    if job is None:
        return
    for format_name in formats.HEAVY_FORMATS:
        download(job, format_name)
        job.refresh_from_db()


def upload_mesh(*, user: User | None, data: bytes, name: str | None = None) -> Job:
    """A finished job of a model the user brought (``POST /api/3d/upload-mesh``), with its print
    report; its heavy formats are then made on the cpu queue.

    The file is read and checked before anything is written: a refused one
    (``mesh_uploads.MeshRefused``) leaves no row and no file. Raises StorageUnavailable too.
    """
    limits = mesh_uploads.Limits(
        max_bytes=settings.UPLOAD_MESH_MAX_BYTES,
        max_vertices=settings.UPLOAD_MESH_MAX_VERTICES,
        max_faces=settings.UPLOAD_MESH_MAX_FACES,
    )
    model = mesh_uploads.read_model(data, limits)
    glb = model.glb()
    try:
        report = formats.print_report(
            glb, settings.PRINT_HEIGHT_MM, min_wall_mm=settings.PRINT_MIN_WALL_MM
        )
    except ValueError as exc:  # a flat model: nothing to stand up and print
        raise mesh_uploads.MeshRefused(str(exc)) from None
    now = timezone.now()
    job = Job(
        kind=JobKind.UPLOADED_MESH,
        user=user,
        name=name or None,
        state=JobState.COMPLETED,
        stage="",
        progress=100,
        message=f"Uploaded {model.file_type.upper()} model",
        printability=report.as_api(),
        started_at=now,
        finished_at=now,
    )
    folder = storage.job_folder(job.pk)
    job.result_glb = storage.save(folder, "model.glb", glb)
    try:
        job.source_mesh = storage.save(folder, "source.ply", model.source_mesh())
        with transaction.atomic():
            job.save()
            transaction.on_commit(lambda: shared.send_heavy_downloads(job))
    except BaseException:
        storage.delete(job.result_glb, job.source_mesh)
        raise
    return job


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
