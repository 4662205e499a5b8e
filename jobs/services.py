"""Every write to a job, and every change of its state, happens here.

State changes are single conditional UPDATEs (``… WHERE state = 'pending'``), so two workers, or a
cancel racing a finish, cannot both win. Worker-side writes also carry the attempt number that
claimed the job: a worker that lost its job to a redelivery can no longer write to it.
"""

import functools
import logging
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from celery_app import RUN_3D_JOB, RUN_PREVIEW_JOB, RUN_REMESH_JOB, app as celery
from jobs import errors, formats, selectors, storage
from jobs.models import ACTIVE_STATES, Job, JobKind, JobState, Upload

logger = logging.getLogger(__name__)

TASK_FOR_KIND = {
    JobKind.TEXT_TO_3D: RUN_3D_JOB,
    JobKind.IMAGE_TO_3D: RUN_3D_JOB,
    JobKind.PREVIEW: RUN_PREVIEW_JOB,
    JobKind.REMESH: RUN_REMESH_JOB,
}


class QueueUnavailable(Exception):
    """The broker did not take the job; the job was withdrawn."""


class JobNotCancellable(Exception):
    """The job has already ended."""


class TooManyWaitingJobs(Exception):
    """The caller already has MAX_WAITING_JOBS_PER_CALLER jobs waiting or running."""


class NoModel(Exception):
    """The job has no finished model (or no stored full-resolution mesh) to work from."""


@dataclass(frozen=True)
class JobOptions:
    generate_type: str = "Normal"
    face_count: int | None = None
    enable_pbr: bool = False
    polygon_type: str | None = None


def create_job(
    *,
    kind: str,
    user: User | None,
    prompt: str | None = None,
    image_url: str | None = None,
    input_image: str = "",
    options: JobOptions = JobOptions(),
    submitted_from: str | None = None,
) -> Job:
    """Write a pending job and hand it to its queue once the row is committed.

    Either the broker takes the job, or the job is withdrawn and QueueUnavailable raised: no job is
    ever left that nobody will run, and no worker ever receives a job that is not in the database.
    A caller (``user``, or ``submitted_from`` when anonymous) with MAX_WAITING_JOBS_PER_CALLER jobs
    waiting or running gets TooManyWaitingJobs, and nothing is written.
    """
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
    )
    if kind == JobKind.TEXT_TO_3D:
        job.preview_image = _reusable_preview(user, prompt)
    with transaction.atomic():
        _check_waiting_jobs(user, submitted_from)
        job.save()
        transaction.on_commit(lambda: _enqueue_or_withdraw(job))
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
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"waiting-jobs:{user.pk if user else address}"])
    if Job.objects.filter(caller, state__in=ACTIVE_STATES).count() >= cap:
        raise TooManyWaitingJobs(cap)


def _reusable_preview(user: User | None, prompt: str | None) -> str:
    """A preview this user already made for this prompt, so the 3D job need not make another."""
    if not prompt:
        return ""
    preview = (
        Job.objects.filter(kind=JobKind.PREVIEW, state=JobState.COMPLETED, user=user, prompt=prompt)
        .exclude(preview_image="")
        .order_by("-created_at")
        .values_list("preview_image", flat=True)
        .first()
    )
    return preview or ""


def _enqueue_or_withdraw(job: Job) -> None:
    try:
        enqueue(job)
    except QueueUnavailable:
        Job.objects.filter(pk=job.pk).delete()
        raise


def enqueue(job: Job) -> None:
    """Send the job's message and, once the broker has confirmed it, record so on the job
    (``queued_at``): a waiting job without that mark gets its message from the sweep."""
    try:
        celery.send_task(TASK_FOR_KIND[job.kind], args=[str(job.pk)])
    except Exception as exc:  # kombu raises a zoo of connection errors; all mean "not queued"
        logger.error("Could not queue job %s: %s", job.pk, exc)
        raise QueueUnavailable(str(exc)) from exc
    try:
        Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(queued_at=timezone.now())
    except DatabaseError:
        # The job is queued; unmarked, the sweep only sends a duplicate, which claiming drops.
        logger.warning("Job %s is queued but could not be marked so", job.pk, exc_info=True)


def republish_unconfirmed_jobs() -> list[Job]:
    """Send again the message of every waiting job whose publish failed or was never confirmed
    (the broker was down at a requeue, the process died between commit and publish), oldest
    first. A duplicate is harmless: claiming is conditional. Raises QueueUnavailable while the
    broker is still down."""
    due = timezone.now() - timedelta(seconds=settings.SWEEP_SECONDS)
    sent = []
    for job in Job.objects.filter(selectors.unconfirmed(), updated_at__lt=due).order_by("created_at"):
        enqueue(job)
        sent.append(job)
    return sent


class RegistrationRefused(Exception):
    """The id belongs to a job the caller may not register: not a preview, or someone else's."""


def register_job(*, job_id, user: User | None, prompt: str | None, preview_image_url: str) -> Job:
    """Record a preview the client already has (idempotent on ``job_id``).

    A preview made by ``/text-to-image`` already has its row: registering it attaches the user,
    when it has no owner yet. Only previews: a 3D job's id cannot be registered into another
    owner's hands. An unknown id becomes a finished preview job that keeps the address it was
    given as a foreign URL, even one into our own storage: that file belongs to the job that made
    it, goes when that job is deleted, and never when this one is.
    """
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
                "finished_at": timezone.now(),
            },
        )
        if created:
            return job
        if job.kind != JobKind.PREVIEW or not selectors.can_manage(user, job):
            raise RegistrationRefused(job.pk)
        if job.user_id is None and user is not None:
            job.user = user
            job.save(update_fields=["user", "updated_at"])
    return job


def rename_job(job: Job, name: str) -> None:
    Job.objects.filter(pk=job.pk).update(name=name, updated_at=timezone.now())
    job.name = name


def delete_job(job: Job) -> None:
    """Delete the row, then its files once the delete is committed (a worker still running it
    finds the row gone and stops at its next step). A preview image or full-resolution mesh that
    another job shares (a reused preview, a remesh) stays."""
    files = [job.result_glb, job.processed_image, *job.downloads.values()]
    files += [name for field in ("preview_image", "source_mesh") if (name := _unshared(job.pk, field))]
    with transaction.atomic():
        job.delete()
        transaction.on_commit(lambda: storage.delete(*files))


def record_upload(name: str) -> None:
    """An uploaded image was stored under ``name``: deleted later unless a job uses it."""
    Upload.objects.create(name=name)


def delete_unused_uploads() -> int:
    """Delete the uploads older than UNUSED_UPLOAD_MAX_AGE_SECONDS that no job uses (a job that
    uses one owns its file); returns how many files went."""
    cutoff = timezone.now() - timedelta(seconds=settings.UNUSED_UPLOAD_MAX_AGE_SECONDS)
    old = Upload.objects.filter(created_at__lt=cutoff)
    used = set(Job.objects.filter(input_image__in=old.values("name")).values_list("input_image", flat=True))
    unused = [name for name in old.values_list("name", flat=True) if name not in used]
    for name in unused:
        with transaction.atomic():
            Upload.objects.filter(name=name).delete()
            transaction.on_commit(functools.partial(storage.delete, name))
    if unused:
        logger.info("Deleted %d uploads that no job used", len(unused))
    return len(unused)


def _unshared(job_id, field: str) -> str:
    """The job's file in ``field`` when no other job holds it too, else ""."""
    name = Job.objects.filter(pk=job_id).values_list(field, flat=True).first()
    if not name or Job.objects.filter(**{field: name}).exclude(pk=job_id).exists():
        return ""
    return name


def remesh_job(source: Job, options: JobOptions) -> Job:
    """A new job that finishes ``source``'s stored full-resolution mesh with ``options``, on the
    CPU queue. It belongs to the source's owner and shows its prompt, image and preview.

    Raises NoModel when the source has no stored mesh (unfinished, or made before meshes were kept).
    """
    if source.state != JobState.COMPLETED or not source.source_mesh:
        raise NoModel(source.pk)
    job = Job(
        kind=JobKind.REMESH,
        user=source.user,
        prompt=source.prompt,
        image_url=source.image_url,
        preview_image=source.preview_image,
        registered_preview_url=source.registered_preview_url,
        source_mesh=source.source_mesh,
        generate_type=options.generate_type,
        face_count=options.face_count,
        enable_pbr=options.enable_pbr,
        polygon_type=options.polygon_type,
        message="Queued",
    )
    with transaction.atomic():
        _check_waiting_jobs(job.user, None)
        job.save()
        transaction.on_commit(lambda: _enqueue_or_withdraw(job))
    return job


def download(job: Job, format_name: str) -> str:
    """The storage name of the job's model in ``format_name`` (one of ``formats.FORMATS``),
    converted from its GLB and stored on the first request, then kept until the job goes.

    Converted here, in the web process: the formats module imports no torch, and one conversion
    of a finished model takes well under a second (README). Raises NoModel for a job without a
    result, and ``formats.ConversionFailed`` or ``storage.StorageUnavailable``.
    """
    if job.state != JobState.COMPLETED or not job.result_glb:
        raise NoModel(job.pk)
    if format_name == formats.DEFAULT_FORMAT:
        return job.result_glb
    if name := job.downloads.get(format_name):
        return name
    data = formats.convert(storage.read(job.result_glb), format_name)
    made = storage.save(storage.job_folder(job.pk), f"model.{formats.FORMATS[format_name].extension}", data)
    with transaction.atomic():
        current = Job.objects.select_for_update().filter(pk=job.pk, result_glb=job.result_glb).first()
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
    """Cancel a pending job at once; ask a running one to stop at its next step.

    Returns the state the job is in afterwards. Raises JobNotCancellable for a finished job.
    """
    now = timezone.now()
    cancelled = Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(
        state=JobState.CANCELLED,
        cancel_requested=True,
        message="Cancelled",
        error_code="CANCELLED",
        error_message="Job was cancelled",
        finished_at=now,
        updated_at=now,
    )
    if not cancelled:
        flagged = Job.objects.filter(pk=job.pk, state=JobState.PROCESSING).update(
            cancel_requested=True, message="Cancelling…", updated_at=now
        )
        if not flagged:
            raise JobNotCancellable(job.pk)
    job.state = JobState.CANCELLED if cancelled else JobState.PROCESSING
    return job.state


def requeue_job(job: Job) -> bool:
    """Start a job again from a clean slate, keeping its history (``attempts``).

    Only jobs that are not running now are requeued here; a stuck running job is first marked
    failed by the caller (see ``fail_stuck_job``). Returns False when the job changed meanwhile.
    """
    now = timezone.now()
    with transaction.atomic():
        previous = (
            Job.objects.select_for_update().filter(pk=job.pk).values("kind", "result_glb", "downloads").first()
        )
        previous_files = [previous["result_glb"], *previous["downloads"].values()] if previous else []
        # A 3D job makes its full-resolution mesh anew; a remesh job keeps working from its source's.
        fresh_mesh = {}
        if previous and previous["kind"] != JobKind.REMESH:
            previous_files.append(_unshared(job.pk, "source_mesh"))
            fresh_mesh = {"source_mesh": ""}
        reset = Job.objects.filter(pk=job.pk).exclude(state=JobState.PROCESSING).update(
            **fresh_mesh,
            state=JobState.PENDING,
            progress=0,
            message="Queued",
            error_code=None,
            error_message=None,
            cancel_requested=False,
            result_glb="",
            downloads={},
            started_at=None,
            finished_at=None,
            elapsed_seconds=None,
            worker="",
            worker_process="",
            queued_at=None,
            updated_at=now,
        )
        if reset:
            transaction.on_commit(lambda: storage.delete(*previous_files))
            transaction.on_commit(lambda: enqueue(job))
    return bool(reset)


def fail_stuck_job(job: Job, reason: str) -> bool:
    """Release a job whose worker vanished, so it can be requeued."""
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job.pk, state=job.state, attempts=job.attempts).update(
            state=JobState.FAILED,
            error_code=errors.WORKER_LOST,
            error_message=reason,
            finished_at=now,
            updated_at=now,
        )
    )


class StaffOutcome(StrEnum):
    """What a staff requeue or cancel did to a job, worded to follow "would be" in a dry run."""

    REQUEUED = "requeued"
    RELEASED = "released (stuck) and requeued"
    REFUSED = "refused: running and not stuck"
    CANCELLED = "cancelled"
    STOPPING = "asked to stop"
    ENDED = "skipped: already ended"
    CHANGED = "skipped: changed meanwhile"
    NOT_QUEUED = "reset to waiting but not queued: broker unavailable"

    @staticmethod
    def summary(outcomes) -> str:
        """For example "2 requeued; 1 refused: running and not stuck"."""
        counts = Counter(outcomes)
        return "; ".join(f"{count} {outcome}" for outcome, count in counts.items()) or "no job matched"


def requeue_by_staff(
    job: Job, *, stuck_after: timedelta | None = None, dry_run=False
) -> StaffOutcome:
    """Requeue a job for staff. A running job is refused unless it is stuck (see
    ``selectors.stuck_filter``); a stuck one is released first, so that its lost attempt can no
    longer write.

    A waiting job is requeued as it is: if its message still exists, the worker that receives the
    second one finds the job already claimed (claiming is a conditional UPDATE) and drops it.
    """
    if job.state == JobState.PROCESSING and not selectors.is_stuck(job, stuck_after):
        return StaffOutcome.REFUSED
    release = job.state == JobState.PROCESSING
    outcome = StaffOutcome.RELEASED if release else StaffOutcome.REQUEUED
    if dry_run:
        return outcome
    try:
        with transaction.atomic():
            # The row is held as it was checked until the reset, so both writes below succeed,
            # and a job that a worker finished meanwhile is not reset along with its result.
            if not Job.objects.select_for_update().filter(
                pk=job.pk, state=job.state, attempts=job.attempts
            ).exists():
                return StaffOutcome.CHANGED
            if release:
                fail_stuck_job(job, "Released by staff: the job was stuck")
            requeue_job(job)
    except QueueUnavailable:
        return StaffOutcome.NOT_QUEUED
    return outcome


def cancel_by_staff(job: Job, *, dry_run=False) -> StaffOutcome:
    if dry_run:
        planned = {JobState.PENDING: StaffOutcome.CANCELLED, JobState.PROCESSING: StaffOutcome.STOPPING}
        return planned.get(job.state, StaffOutcome.ENDED)
    try:
        state = request_cancel(job)
    except JobNotCancellable:
        return StaffOutcome.ENDED
    return StaffOutcome.CANCELLED if state == JobState.CANCELLED else StaffOutcome.STOPPING


# --- Worker side -----------------------------------------------------------------------------


def claim_job(job_id, *, worker: str, process: str = "", holder_gone=None) -> int | None:
    """Move a job to processing for this worker; return the attempt number, or None if the job
    is not this worker's to run (gone, cancelled, finished, or alive on another worker).

    A running job may be taken over when it is orphaned (see ``selectors.orphaned``), or at
    once when ``holder_gone(worker_process)`` says the process running it is gone: the broker
    redelivers a killed worker's message at the head of its queue, and its job carries on there.
    The attempt number then changes, so the lost attempt can no longer write, and a job ends
    ``completed`` once however often its message is delivered. ``process`` names the process
    claiming it.
    """
    now = timezone.now()
    claimable = Q(state=JobState.PENDING) | selectors.orphaned()
    if holder_gone is not None:
        holder = (
            Job.objects.filter(pk=job_id, state=JobState.PROCESSING)
            .exclude(worker_process="")
            .values_list("worker_process", flat=True)
            .first()
        )
        if holder and holder_gone(holder):
            claimable |= Q(state=JobState.PROCESSING, worker_process=holder)
    with transaction.atomic():
        claimed = Job.objects.filter(claimable, pk=job_id, cancel_requested=False).update(
            state=JobState.PROCESSING,
            attempts=F("attempts") + 1,
            worker=worker,
            worker_process=process,
            started_at=now,
            heartbeat_at=now,
            progress=0,
            message="Starting…",
            updated_at=now,
        )
        if not claimed:
            return None
        return Job.objects.filter(pk=job_id).values_list("attempts", flat=True).get()


def _cancelled(now) -> dict:
    """The fields of a running job that ends cancelled."""
    return {
        "state": JobState.CANCELLED,
        "message": "Cancelled",
        "error_code": "CANCELLED",
        "error_message": "Job was cancelled",
        "finished_at": now,
        "updated_at": now,
    }


def recover_orphaned_jobs() -> list[Job]:
    """Put back in the queue the running jobs that lost their worker.

    Brokers with acknowledgements redeliver such jobs by themselves; this also covers the ones
    that cannot (the embedded filesystem broker) and messages lost with a broker's disk. A job
    requeued twice is harmless: whichever message comes second finds it claimed.
    """
    now = timezone.now()
    # One whose cancel was asked for ends as the user wanted, instead of running again.
    Job.objects.filter(selectors.orphaned(), cancel_requested=True).update(**_cancelled(now))
    recovered = []
    for job in Job.objects.filter(selectors.orphaned()):
        try:
            # Released and requeued in one commit: a client polling meanwhile never sees it failed.
            with transaction.atomic():
                requeued = fail_stuck_job(job, "The worker running this job stopped") and requeue_job(job)
        except QueueUnavailable:
            requeued = True  # waiting, unconfirmed: republish_unconfirmed_jobs sends it later
        if requeued:
            recovered.append(job)
    return recovered


def beat(job_id, attempt: int) -> bool:
    """The running attempt is alive; False when it no longer owns the job."""
    return bool(
        Job.objects.filter(pk=job_id, attempts=attempt, state=JobState.PROCESSING).update(
            heartbeat_at=timezone.now()
        )
    )


def report_progress(job_id, attempt: int, progress: int, message: str) -> bool:
    """Record progress; returns False when the job should stop (cancelled, deleted or taken over)."""
    now = timezone.now()
    updated = Job.objects.filter(
        pk=job_id, attempts=attempt, state=JobState.PROCESSING, cancel_requested=False
    ).update(progress=progress, message=message, heartbeat_at=now, updated_at=now)
    return bool(updated)


def save_job_artifacts(job_id, attempt: int, **names: str) -> bool:
    """Attach stored files (``preview_image``, ``processed_image``) while the job runs."""
    return bool(
        Job.objects.filter(pk=job_id, attempts=attempt, state=JobState.PROCESSING).update(
            **names, updated_at=timezone.now()
        )
    )


def complete_job(job_id, attempt: int, **fields) -> bool:
    """Finish the job with its stored files (``result_glb`` or ``preview_image``) and its
    ``stage_seconds``."""
    now = timezone.now()
    job = Job.objects.filter(pk=job_id).values("started_at").first()
    if job is None:
        return False
    return bool(
        Job.objects.filter(
            pk=job_id, attempts=attempt, state=JobState.PROCESSING, cancel_requested=False
        ).update(
            state=JobState.COMPLETED,
            **fields,
            progress=100,
            message="Completed",
            finished_at=now,
            elapsed_seconds=(now - job["started_at"]).total_seconds() if job["started_at"] else None,
            updated_at=now,
        )
    )


def end_job_unsuccessfully(
    job_id, attempt: int, *, code: str, message: str, stage_seconds: dict | None = None
) -> str | None:
    """Fail the job, or mark it cancelled when cancellation was what stopped it; with the
    seconds its stages took (see ``complete_job``).

    Returns the final state written, or None when the attempt no longer owns the job.
    """
    now = timezone.now()
    timed = {"stage_seconds": stage_seconds} if stage_seconds is not None else {}
    owned = Job.objects.filter(pk=job_id, attempts=attempt, state=JobState.PROCESSING)
    if owned.filter(cancel_requested=True).update(**_cancelled(now), **timed):
        return JobState.CANCELLED
    if owned.update(
        **timed,
        state=JobState.FAILED,
        message="Failed",
        error_code=code,
        error_message=message,
        finished_at=now,
        updated_at=now,
    ):
        return JobState.FAILED
    return None

