"""The writes of the workers: claiming a stage, progress, heartbeats, handing a job on to its next
stage, its end; and the sweeps every worker runs for stages that lost their worker or message.

Every write a worker makes is conditional on its lease (job, attempt, stage): a worker that lost
its stage to a takeover, a cancel or a handoff can no longer write to the job."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from hydrilla import metrics
from jobs import plan, selectors, storage
from jobs.error_codes import ErrorCode
from jobs.models import ACTIVE_STATES, Job, JobState
from jobs.services import shared
from webhooks.models import EventType
from webhooks.services import emit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """One worker's hold on one stage of a job, under the job's attempt number. Every write a
    worker makes is conditional on its lease: once the stage is handed over, the job taken over
    (a new attempt) or cancelled, the holder's writes match nothing."""

    job_id: object
    attempt: int
    stage: str
    kind: str

    def owned(self) -> Q:
        return (
            Q(pk=self.job_id, attempts=self.attempt, stage=self.stage, state__in=ACTIVE_STATES)
            & ~selectors.unheld()
        )


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
    current = Job.objects.filter(
        pk=job_id, stage=stage, state__in=ACTIVE_STATES, cancel_requested=False
    )
    row = current.values(
        "kind", "state", "heartbeat_at", "worker_process", "attempts", "created_at"
    ).first()
    if row is None:
        return None
    held = row["heartbeat_at"] is not None
    if held and not (
        current.filter(selectors.orphaned()).exists()
        or (
            holder_gone is not None and row["worker_process"] and holder_gone(row["worker_process"])
        )
    ):
        return None
    # A waiting job's first stage begins an attempt (a text-to-3D job waits at ``prepare`` only
    # when it begins there, with a preview already made); so does taking over a held stage.
    new_attempt = held or (row["state"] == JobState.PENDING and plan.is_first(row["kind"], stage))
    fields = {"worker": worker, "worker_process": process, "heartbeat_at": now, "updated_at": now}
    if new_attempt:
        fields["attempts"] = F("attempts") + 1
    starts = plan.starts_job(stage) and row["state"] == JobState.PENDING
    if starts:
        fields |= {"state": JobState.PROCESSING, "started_at": now, "message": "Starting…"}
    as_read = selectors.held_as_read(row["heartbeat_at"])
    with transaction.atomic():
        claimed = current.filter(
            as_read, attempts=row["attempts"], worker_process=row["worker_process"]
        ).update(**fields)
        if claimed and starts:
            emit(job_id, EventType.STARTED)
    if not claimed:
        return None
    if new_attempt:
        metrics.STAGE_ATTEMPTS.labels(kind=row["kind"]).inc()
    if held:
        metrics.STAGE_TAKEOVERS.labels(stage=stage).inc()
    if starts:
        waited = (now - row["created_at"]).total_seconds()
        metrics.JOB_WAIT_SECONDS.labels(kind=row["kind"]).observe(waited)
    return Lease(job_id, row["attempts"] + new_attempt, stage, row["kind"])


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
    stopping = (selectors.orphaned() | (selectors.unheld() & Q(state=JobState.PROCESSING))) & Q(
        cancel_requested=True
    )
    for job_id, kind in Job.objects.filter(stopping).values_list("pk", "kind"):
        with transaction.atomic():
            if Job.objects.filter(stopping, pk=job_id).update(**shared.cancelled_fields(now)):
                emit(job_id, EventType.CANCELLED)
                metrics.job_finished(kind, JobState.CANCELLED, ErrorCode.CANCELLED)
    recovered = []
    not_sent_since_silent = Q(queued_at__isnull=True) | Q(queued_at__lt=F("heartbeat_at"))
    for job in Job.objects.filter(selectors.orphaned(), not_sent_since_silent).order_by(
        "created_at"
    ):
        shared.enqueue(job)  # QueueUnavailable: the next sweep tries again
        metrics.SWEEP_REPUBLISHED.labels(reason="orphaned").inc()
        recovered.append(job)
    return recovered


def republish_unconfirmed_jobs() -> list[Job]:
    """Send again the message of every stage that no worker holds and whose publish failed or was
    never confirmed (the broker was down at a requeue or a handoff, the process died between
    commit and publish), oldest job first. A duplicate is harmless: claiming is conditional.
    Raises QueueUnavailable while the broker is still down."""
    due = timezone.now() - timedelta(seconds=settings.SWEEP_SECONDS)
    sent = []
    for job in Job.objects.filter(selectors.unconfirmed(), updated_at__lt=due).order_by(
        "created_at"
    ):
        shared.enqueue(job)
        metrics.SWEEP_REPUBLISHED.labels(reason="unconfirmed").inc()
        sent.append(job)
    return sent


def beat(lease: Lease) -> bool:
    """The lease's holder is alive; False when it no longer holds the stage."""
    return bool(Job.objects.filter(lease.owned()).update(heartbeat_at=timezone.now()))


def report_progress(lease: Lease, progress: int, message: str) -> bool:
    """Record progress (never lower than before: a stage taken over starts where the job was);
    returns False when the holder should stop (cancelled, deleted, taken over)."""
    now = timezone.now()
    with transaction.atomic():
        updated = Job.objects.filter(lease.owned(), cancel_requested=False).update(
            progress=Greatest(F("progress"), progress),
            message=message,
            heartbeat_at=now,
            updated_at=now,
        )
        if updated:
            emit(lease.job_id, EventType.PROGRESS)
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
            **fields,
            stage=next_stage,
            heartbeat_at=None,
            worker_process="",
            queued_at=None,
            updated_at=now,
        )
        if handed:
            job = Job.objects.only(*shared.ENQUEUE_READS).get(pk=lease.job_id)
            transaction.on_commit(lambda: _enqueue_or_leave_to_sweep(job))
    return bool(handed)


def _enqueue_or_leave_to_sweep(job: Job) -> None:
    try:
        shared.enqueue(job)
    except shared.QueueUnavailable:
        logger.warning(
            "Job %s waits for its %s stage's message: the sweep sends it", job.pk, job.stage
        )


def complete_job(lease: Lease, **fields) -> bool:
    """Finish the job with its stored files (``result_glb`` or ``preview_image``), its
    ``step_seconds`` and ``stage_runs``; the raw mesh handed between stages goes."""
    now = timezone.now()
    job = Job.objects.filter(pk=lease.job_id).values("started_at", "raw_mesh").first()
    if job is None:
        return False
    with transaction.atomic():
        completed = Job.objects.filter(
            lease.owned(), state=JobState.PROCESSING, cancel_requested=False
        ).update(
            state=JobState.COMPLETED,
            **fields,
            raw_mesh="",
            heartbeat_at=None,
            progress=100,
            message="Completed",
            finished_at=now,
            elapsed_seconds=(now - job["started_at"]).total_seconds()
            if job["started_at"]
            else None,
            updated_at=now,
        )
        if completed:
            emit(lease.job_id, EventType.COMPLETED)
            transaction.on_commit(lambda: storage.delete(job["raw_mesh"]))
            transaction.on_commit(lambda: metrics.job_finished(lease.kind, JobState.COMPLETED))
    return bool(completed)


def end_job_unsuccessfully(lease: Lease, *, code: str, message: str, **fields) -> str | None:
    """Fail the job, or mark it cancelled when cancellation was what stopped it; with the
    ``step_seconds`` and ``stage_runs`` of its stages so far (see ``complete_job``).

    Returns the final state written, or None when the lease no longer holds the job.
    """
    now = timezone.now()
    owned = Job.objects.filter(lease.owned())
    with transaction.atomic():
        if owned.filter(cancel_requested=True).update(**shared.cancelled_fields(now), **fields):
            emit(lease.job_id, EventType.CANCELLED)
            metrics.job_finished(lease.kind, JobState.CANCELLED, ErrorCode.CANCELLED)
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
            emit(lease.job_id, EventType.FAILED)
            metrics.job_finished(lease.kind, JobState.FAILED, code)
            return JobState.FAILED
    return None
