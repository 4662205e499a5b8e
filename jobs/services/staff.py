"""The writes staff ask for (admin actions, ``manage.py requeue_jobs`` / ``cancel_jobs``) and the
scheduled housekeeping."""

import functools
import logging
from collections import Counter
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs import plan, selectors, storage
from jobs.error_codes import ErrorCode
from jobs.models import FINAL_STATES, Job, JobKind, JobState, Upload
from jobs.services import clients, shared

logger = logging.getLogger(__name__)


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
        previous_files = [
            previous["result_glb"],
            previous["raw_mesh"],
            *previous["downloads"].values(),
        ]
        # A 3D job makes its full-resolution mesh anew; a remesh job keeps working from its
        # source's.
        fresh_mesh = {}
        if previous["kind"] != JobKind.REMESH:
            previous_files.append(shared.unshared_file(job.pk, "source_mesh"))
            fresh_mesh = {"source_mesh": ""}
        first_stage = plan.first(previous["kind"], has_preview=bool(previous["preview_image"]))
        reset = (
            Job.objects.filter(pk=job.pk)
            .exclude(state=JobState.PROCESSING)
            .update(
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
        )
        if reset:
            job.state, job.stage, job.heartbeat_at = JobState.PENDING, first_stage, None
            transaction.on_commit(lambda: storage.delete(*previous_files))
            transaction.on_commit(lambda: shared.enqueue(job))
    return bool(reset)


def fail_stuck_job(job: Job, reason: str) -> bool:
    """Release a job whose worker vanished, so it can be requeued."""
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job.pk, state=job.state, attempts=job.attempts).update(
            state=JobState.FAILED,
            error_code=ErrorCode.WORKER_LOST,
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
        return (
            "; ".join(f"{count} {outcome}" for outcome, count in counts.items()) or "no job matched"
        )


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
            if (
                not Job.objects.select_for_update()
                .filter(pk=job.pk, state=job.state, attempts=job.attempts)
                .exists()
            ):
                return StaffOutcome.CHANGED
            if release:
                fail_stuck_job(job, "Released by staff: the job was stuck")
            requeue_job(job)
    except shared.QueueUnavailable:
        return StaffOutcome.NOT_QUEUED
    return outcome


def cancel_by_staff(job: Job, *, dry_run=False) -> StaffOutcome:
    if dry_run:
        planned = {
            JobState.PENDING: StaffOutcome.CANCELLED,
            JobState.PROCESSING: StaffOutcome.STOPPING,
        }
        return planned.get(job.state, StaffOutcome.ENDED)
    try:
        state = clients.request_cancel(job)
    except clients.JobNotCancellable:
        return StaffOutcome.ENDED
    return StaffOutcome.CANCELLED if state == JobState.CANCELLED else StaffOutcome.STOPPING


def delete_unused_uploads() -> int:
    """Delete the uploads older than UNUSED_UPLOAD_MAX_AGE_SECONDS that no job uses (a job that
    uses one owns its file); returns how many files went."""
    cutoff = timezone.now() - timedelta(seconds=settings.UNUSED_UPLOAD_MAX_AGE_SECONDS)
    old = Upload.objects.filter(created_at__lt=cutoff)
    used = set(
        Job.objects.filter(input_image__in=old.values("name")).values_list("input_image", flat=True)
    )
    unused = [name for name in old.values_list("name", flat=True) if name not in used]
    for name in unused:
        with transaction.atomic():
            Upload.objects.filter(name=name).delete()
            transaction.on_commit(functools.partial(storage.delete, name))
    if unused:
        logger.info("Deleted %d uploads that no job used", len(unused))
    return len(unused)


# The jobs each retention setting expires, once they ended longer ago than it says.
RETENTION = {
    "RETAIN_ANONYMOUS_JOBS_SECONDS": Q(user=None),
    "RETAIN_UNREGISTERED_PREVIEWS_SECONDS": Q(kind=JobKind.PREVIEW, registered_at=None),
    "RETAIN_FAILED_JOBS_SECONDS": Q(state__in=(JobState.FAILED, JobState.CANCELLED)),
    "RETAIN_FINISHED_JOBS_SECONDS": Q(state=JobState.COMPLETED),
}


def expire_jobs() -> int:
    """Delete every job kept past its RETAIN_* setting (unset: kept), as its user's delete would
    (``clients.delete_job``: the row, then its files); returns how many went. A job still waiting
    or running never expires."""
    now = timezone.now()
    deleted = 0
    for setting, expiring in RETENTION.items():
        seconds = getattr(settings, setting)
        if seconds is None:
            continue
        cutoff = now - timedelta(seconds=seconds)
        ended_before = Q(finished_at__lt=cutoff) | Q(finished_at=None, updated_at__lt=cutoff)
        deleted += _delete_in_batches(expiring & ended_before & Q(state__in=FINAL_STATES))
    if deleted:
        logger.info("Deleted %d jobs past their retention", deleted)
    return deleted


def _delete_in_batches(expired: Q) -> int:
    """Each job in a transaction of its own, locking its row only (a job locked by someone else
    is left to the next run): no table is ever held, and a client's request waits on none."""
    deleted = 0
    batch = settings.RETENTION_BATCH_SIZE
    while True:
        ids = list(Job.objects.filter(expired).order_by("pk").values_list("pk", flat=True)[:batch])
        deleted_now = 0
        for job_id in ids:
            with transaction.atomic():
                job = Job.objects.select_for_update(skip_locked=True).filter(expired, pk=job_id)
                if (job := job.first()) is not None:
                    clients.delete_job(job)
                    deleted_now += 1
        deleted += deleted_now
        if len(ids) < batch or not deleted_now:
            return deleted
