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
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import User
from celery_app import app as celery
from hydrilla.queues import RUNNING, WAITING, message_priority, stage_task
from jobs import errors, formats, selectors, stages, storage
from jobs.models import ACTIVE_STATES, Job, JobKind, JobState, Stage, Upload

logger = logging.getLogger(__name__)


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
    job.stage = stages.first(kind, has_preview=bool(job.preview_image))
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
    """Send the message of the job's current stage to that stage's queue and, once the broker has
    confirmed it, record so on the job (``queued_at``): a stage that no worker holds and that has
    no such mark gets its message from the sweep, as does an orphaned one (``recover_orphaned_jobs``). A running job's stage goes before the stages of
    jobs still waiting (``hydrilla.queues.message_priority``)."""
    job_is = RUNNING if job.state == JobState.PROCESSING else WAITING
    try:
        celery.send_task(
            stage_task(job.stage),
            args=[str(job.pk)],
            queue=stages.QUEUES[job.stage],
            priority=message_priority(job_is),
        )
    except Exception as exc:  # kombu raises a zoo of connection errors; all mean "not queued"
        logger.error("Could not queue job %s: %s", job.pk, exc)
        raise QueueUnavailable(str(exc)) from exc
    # Marked only as it was sent: not if a worker has claimed the stage since, nor on a newer holder.
    as_sent = {"heartbeat_at": job.heartbeat_at} if job.heartbeat_at else {"heartbeat_at__isnull": True}
    try:
        Job.objects.filter(pk=job.pk, stage=job.stage, **as_sent).update(queued_at=timezone.now())
    except DatabaseError:
        # The job is queued; unmarked, the sweep only sends a duplicate, which claiming drops.
        logger.warning("Job %s is queued but could not be marked so", job.pk, exc_info=True)


def republish_unconfirmed_jobs() -> list[Job]:
    """Send again the message of every stage that no worker holds and whose publish failed or was
    never confirmed (the broker was down at a requeue or a handoff, the process died between
    commit and publish), oldest job first. A duplicate is harmless: claiming is conditional.
    Raises QueueUnavailable while the broker is still down."""
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
    files = [job.result_glb, job.processed_image, job.raw_mesh, *job.downloads.values()]
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
        stage=Stage.REMESH,
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
        if ended.update(**_cancelled(now), cancel_requested=True):
            job.state = JobState.CANCELLED
            return job.state
        held = Job.objects.filter(pk=job.pk, state=JobState.PROCESSING, heartbeat_at__isnull=False)
        if held.update(cancel_requested=True, message="Cancelling…", updated_at=now):
            job.state = JobState.PROCESSING
            return job.state
        if not Job.objects.filter(pk=job.pk, state__in=ACTIVE_STATES).exists():
            break
    raise JobNotCancellable(job.pk)


def requeue_job(job: Job) -> bool:
    """Start a job again from a clean slate, keeping its history (``attempts``).

    Only jobs that are not running now are requeued here; a stuck running job is first marked
    failed by the caller (see ``fail_stuck_job``). Returns False when the job changed meanwhile.
    """
    now = timezone.now()
    with transaction.atomic():
        previous = (
            Job.objects.select_for_update()
            .filter(pk=job.pk)
            .values("kind", "result_glb", "raw_mesh", "downloads", "preview_image")
            .first()
        )
        if previous is None:
            return False
        previous_files = [previous["result_glb"], previous["raw_mesh"], *previous["downloads"].values()]
        # A 3D job makes its full-resolution mesh anew; a remesh job keeps working from its source's.
        fresh_mesh = {}
        if previous["kind"] != JobKind.REMESH:
            previous_files.append(_unshared(job.pk, "source_mesh"))
            fresh_mesh = {"source_mesh": ""}
        first_stage = stages.first(previous["kind"], has_preview=bool(previous["preview_image"]))
        reset = Job.objects.filter(pk=job.pk).exclude(state=JobState.PROCESSING).update(
            **fresh_mesh,
            state=JobState.PENDING,
            stage=first_stage,
            raw_mesh="",
            step_seconds={},
            stage_runs=[],
            heartbeat_at=None,
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
            job.state, job.stage, job.heartbeat_at = JobState.PENDING, first_stage, None
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


@dataclass(frozen=True)
class Lease:
    """One worker's hold on one stage of a job, under the job's attempt number. Every write a
    worker makes is conditional on its lease: once the stage is handed over, the job taken over
    (a new attempt) or cancelled, the holder's writes match nothing."""

    job_id: object
    attempt: int
    stage: str

    def owned(self) -> Q:
        return Q(pk=self.job_id, attempts=self.attempt, stage=self.stage, state__in=ACTIVE_STATES) & ~selectors.unheld()


def claim_stage(job_id, stage: str, *, worker: str, process: str, holder_gone=None) -> Lease | None:
    """Take ``stage`` of the job for this worker; None if it is not this worker's to run (gone,
    cancelled, finished, at another stage, or held by a live worker).

    A stage no worker holds is claimed as it is. A held one is taken over when its holder is
    orphaned (see ``selectors.orphaned``), or at once when ``holder_gone(worker_process)`` says
    the process holding it is gone: the broker redelivers a killed worker's message at the head
    of its queue, and its job carries on there. A takeover, like the claim of a job's first
    stage, begins a new attempt, so a lost holder can no longer write, and a job ends
    ``completed`` once however often its messages are delivered. ``process`` names the process
    claiming it (``generation.processes.current``).
    """
    now = timezone.now()
    current = Job.objects.filter(pk=job_id, stage=stage, state__in=ACTIVE_STATES, cancel_requested=False)
    row = current.values("kind", "state", "heartbeat_at", "worker_process", "attempts").first()
    if row is None:
        return None
    held = row["heartbeat_at"] is not None
    if held and not (
        current.filter(selectors.orphaned()).exists()
        or (holder_gone is not None and row["worker_process"] and holder_gone(row["worker_process"]))
    ):
        return None
    new_attempt = held or stages.begins_attempt(row["kind"], stage, row["state"])
    fields = {"worker": worker, "worker_process": process, "heartbeat_at": now, "updated_at": now}
    if new_attempt:
        fields["attempts"] = F("attempts") + 1
    if stages.starts_job(stage) and row["state"] == JobState.PENDING:
        fields |= {"state": JobState.PROCESSING, "started_at": now, "message": "Starting…"}
    # As read above: a holder that beat, or another claim, since then makes this match nothing.
    as_read = {"heartbeat_at": row["heartbeat_at"]} if held else {"heartbeat_at__isnull": True}
    claimed = current.filter(**as_read, attempts=row["attempts"], worker_process=row["worker_process"]).update(**fields)
    if not claimed:
        return None
    return Lease(job_id, row["attempts"] + new_attempt, stage)


def _cancelled(now) -> dict:
    """The fields of a job that ends cancelled."""
    return {
        "state": JobState.CANCELLED,
        "message": "Cancelled",
        "error_code": errors.CANCELLED,
        "error_message": "Job was cancelled",
        "heartbeat_at": None,
        "finished_at": now,
        "updated_at": now,
    }


def recover_orphaned_jobs() -> list[Job]:
    """Send again the message of every stage whose worker stopped sending heartbeats, so that the
    next worker of its queue takes it over where it was (see ``claim_stage``).

    Brokers with acknowledgements redeliver such messages by themselves; this also covers the ones
    that cannot (the embedded filesystem broker) and messages lost with a broker's disk. Each is
    sent once per silent holder (``queued_at`` after its last heartbeat); a duplicate is harmless.
    """
    now = timezone.now()
    # One whose cancel was asked for ends as the user wanted, instead of running again; so does
    # one whose cancel came as its stage was being handed over.
    stopping = selectors.orphaned() | (selectors.unheld() & Q(state=JobState.PROCESSING))
    Job.objects.filter(stopping, cancel_requested=True).update(**_cancelled(now))
    recovered = []
    not_sent_since_silent = Q(queued_at__isnull=True) | Q(queued_at__lt=F("heartbeat_at"))
    for job in Job.objects.filter(selectors.orphaned(), not_sent_since_silent).order_by("created_at"):
        enqueue(job)  # QueueUnavailable: the next sweep tries again
        recovered.append(job)
    return recovered


def beat(lease: Lease) -> bool:
    """The lease's holder is alive; False when it no longer holds the stage."""
    return bool(Job.objects.filter(lease.owned()).update(heartbeat_at=timezone.now()))


def report_progress(lease: Lease, progress: int, message: str) -> bool:
    """Record progress (never lower than before: a stage taken over starts where the job was);
    returns False when the holder should stop (cancelled, deleted, taken over)."""
    now = timezone.now()
    updated = Job.objects.filter(lease.owned(), cancel_requested=False).update(
        progress=Greatest(F("progress"), progress), message=message, heartbeat_at=now, updated_at=now
    )
    return bool(updated)


def hand_over(lease: Lease, next_stage: str, **fields) -> bool:
    """End the lease's stage with its results (stored file names, ``step_seconds``,
    ``stage_runs``) and send the job on to ``next_stage``'s queue. False when the holder lost the
    job meanwhile (cancelled, deleted, taken over): its files then belong to no job.

    The stage is recorded free before its message is sent: if the broker does not confirm it, the
    sweep sends it (``republish_unconfirmed_jobs``), so a job between stages is never stranded.
    """
    now = timezone.now()
    with transaction.atomic():
        handed = Job.objects.filter(lease.owned(), cancel_requested=False).update(
            **fields, stage=next_stage, heartbeat_at=None, worker_process="", queued_at=None, updated_at=now
        )
        if handed:
            job = Job.objects.only("pk", "state", "stage").get(pk=lease.job_id)
            transaction.on_commit(lambda: _enqueue_or_leave_to_sweep(job))
    return bool(handed)


def _enqueue_or_leave_to_sweep(job: Job) -> None:
    try:
        enqueue(job)
    except QueueUnavailable:
        logger.warning("Job %s waits for its %s stage's message: the sweep sends it", job.pk, job.stage)


def complete_job(lease: Lease, **fields) -> bool:
    """Finish the job with its stored files (``result_glb`` or ``preview_image``), its
    ``step_seconds`` and ``stage_runs``; the raw mesh handed between stages goes."""
    now = timezone.now()
    job = Job.objects.filter(pk=lease.job_id).values("started_at", "raw_mesh").first()
    if job is None:
        return False
    with transaction.atomic():
        completed = Job.objects.filter(lease.owned(), state=JobState.PROCESSING, cancel_requested=False).update(
            state=JobState.COMPLETED,
            **fields,
            raw_mesh="",
            heartbeat_at=None,
            progress=100,
            message="Completed",
            finished_at=now,
            elapsed_seconds=(now - job["started_at"]).total_seconds() if job["started_at"] else None,
            updated_at=now,
        )
        if completed:
            transaction.on_commit(lambda: storage.delete(job["raw_mesh"]))
    return bool(completed)


def end_job_unsuccessfully(lease: Lease, *, code: str, message: str, **fields) -> str | None:
    """Fail the job, or mark it cancelled when cancellation was what stopped it; with the
    ``step_seconds`` and ``stage_runs`` of its stages so far (see ``complete_job``).

    Returns the final state written, or None when the lease no longer holds the job.
    """
    now = timezone.now()
    owned = Job.objects.filter(lease.owned())
    if owned.filter(cancel_requested=True).update(**_cancelled(now), **fields):
        return JobState.CANCELLED
    if owned.update(
        **fields,
        state=JobState.FAILED,
        heartbeat_at=None,
        message="Failed",
        error_code=code,
        error_message=message,
        finished_at=now,
        updated_at=now,
    ):
        return JobState.FAILED
    return None
