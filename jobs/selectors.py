"""Reads: jobs, ownership, history, and the queue figures shown to users.

Queue figures are a fixed handful of aggregate queries over indexed columns, whatever the length
of the queue.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Avg, Count, Q
from django.utils import timezone

from accounts.models import User
from jobs.models import THREE_D_KINDS, Job, JobKind, JobState
from jobs.serializers import NODE_STATUS

QUEUE_KINDS = {"3d": THREE_D_KINDS, "preview": (JobKind.PREVIEW,)}


def queue_of(job: Job) -> str:
    return "3d" if job.is_3d else "preview"


def get_job(job_id) -> Job | None:
    """The job with this id; None for unknown and malformed ids alike."""
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        return None
    return Job.objects.select_related("user").filter(pk=job_uuid).first()


def can_manage(user: User | None, job: Job) -> bool:
    """Jobs with an owner belong to that owner (and staff); ownerless jobs to anyone."""
    if job.user_id is None:
        return True
    return user is not None and (user.pk == job.user_id or user.is_staff)


def history(user: User | None):
    if user is None:
        return Job.objects.none()
    return Job.objects.filter(user=user).order_by("-created_at")


def user_stats(user: User) -> dict:
    return Job.objects.filter(user=user).aggregate(
        totalJobs=Count("pk"), completedJobs=Count("pk", filter=Q(state=JobState.COMPLETED))
    )


def estimated_seconds(queue: str) -> float:
    """Mean duration of the latest finished jobs of this queue, or the spec's figure before any."""
    mean = (
        Job.objects.filter(
            kind__in=QUEUE_KINDS[queue], state=JobState.COMPLETED, elapsed_seconds__isnull=False
        )
        .order_by("-finished_at")[: settings.ESTIMATE_SAMPLE_SIZE]
        .aggregate(mean=Avg("elapsed_seconds"))["mean"]
    )
    return round(mean if mean else settings.ESTIMATE_FALLBACK_SECONDS[queue], 1)


@dataclass(frozen=True)
class QueueCounts:
    waiting: int
    processing: int
    ahead: int = 0


def _counts(queue: str, before=None) -> QueueCounts:
    aggregates = {
        "waiting": Count("pk", filter=Q(state=JobState.PENDING)),
        "processing": Count("pk", filter=Q(state=JobState.PROCESSING)),
    }
    if before is not None:
        aggregates["ahead"] = Count("pk", filter=Q(state=JobState.PENDING, created_at__lt=before))
    row = Job.objects.filter(
        kind__in=QUEUE_KINDS[queue], state__in=(JobState.PENDING, JobState.PROCESSING)
    ).aggregate(**aggregates)
    return QueueCounts(**row)


def job_queue(job: Job) -> dict:
    """Where the job stands: position 0 is running (or finished), 1+ is waiting."""
    queue = queue_of(job)
    per_job = estimated_seconds(queue)
    counts = _counts(queue, before=job.created_at if job.state == JobState.PENDING else None)
    if job.state == JobState.PENDING:
        jobs_ahead = counts.ahead + counts.processing
        wait = jobs_ahead * per_job
        position, total = counts.ahead + 1, wait + per_job
    else:
        jobs_ahead, wait, position = 0, 0.0, 0
        total = _remaining(job, per_job) if job.state == JobState.PROCESSING else 0.0
    return {
        "position": position,
        "jobs_ahead": jobs_ahead,
        "estimated_wait_seconds": round(wait),
        "estimated_total_seconds": round(total),
        "queue_length": counts.waiting,
        "currently_processing": counts.processing > 0,
    }

def _remaining(job: Job, per_job: float) -> float:
    running_for = (timezone.now() - job.started_at).total_seconds() if job.started_at else 0.0
    return max(per_job - running_for, 1.0)


def queue_info() -> dict:
    """The spec's queue statistics, for both queues."""
    three_d, previews = _counts("3d"), _counts("preview")
    per_job, per_preview = estimated_seconds("3d"), estimated_seconds("preview")
    return {
        "queue_length": three_d.waiting,
        "currently_processing": three_d.processing > 0,
        "waiting_jobs": three_d.waiting,
        "estimated_wait_for_new_job_seconds": round((three_d.waiting + three_d.processing) * per_job),
        "estimated_time_per_job_seconds": round(per_job),
        "preview_queue_length": previews.waiting,
        "currently_generating_preview": previews.processing > 0,
        "preview_waiting": previews.waiting,
        "estimated_wait_for_preview_seconds": round(
            (previews.waiting + previews.processing) * per_preview
        ),
        "estimated_preview_time_seconds": round(per_preview),
    }


# --- Staff tools (admin, management commands) ------------------------------------------------


def states_for_status(status: str) -> tuple[str, ...]:
    """The states behind a job API word (``FAIL`` is failed or cancelled) or an internal state."""
    word = status.strip()
    states = tuple(state for state, node in NODE_STATUS.items() if node == word.upper())
    if not states and word.lower() in JobState.values:
        states = (word.lower(),)
    if not states:
        accepted = sorted(set(NODE_STATUS.values())) + list(JobState.values)
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(accepted)}")
    return states


def orphaned():
    """Running jobs whose worker stopped sending heartbeats (killed, lost its machine)."""
    silent_since = timezone.now() - timedelta(seconds=settings.ORPHAN_AFTER_SECONDS)
    return Q(state=JobState.PROCESSING) & (Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True))


def unconfirmed() -> Q:
    """Waiting jobs whose message the broker has not confirmed (see ``services.enqueue``)."""
    return Q(state=JobState.PENDING, queued_at__isnull=True)


def stuck_filter(after: timedelta | None = None) -> Q:
    """Jobs that no worker is seeing through: orphaned (heartbeat silent), running for longer
    than ``after`` (by default the hard time limit, past which Celery has killed the task), or
    waiting that long since they were last queued (``updated_at``: a requeue queues again)."""
    if after is None:
        after = timedelta(seconds=settings.JOB_HARD_TIME_LIMIT_SECONDS)
    since = timezone.now() - after
    return (
        orphaned()
        | Q(state=JobState.PROCESSING, started_at__lt=since)
        | Q(state=JobState.PENDING, updated_at__lt=since)
    )


def is_stuck(job: Job, after: timedelta | None = None) -> bool:
    return Job.objects.filter(stuck_filter(after), pk=job.pk).exists()


def unknown_job_ids(ids) -> list:
    known = set(Job.objects.filter(pk__in=ids).values_list("pk", flat=True))
    return [job_id for job_id in ids if job_id not in known]


def jobs_for_staff(
    *, ids=(), states=(), older_than: timedelta | None = None, stuck=False, stuck_after=None
):
    """The jobs matching every filter given, oldest first."""
    jobs = Job.objects.select_related("user").order_by("created_at")
    if ids:
        jobs = jobs.filter(pk__in=ids)
    if states:
        jobs = jobs.filter(state__in=states)
    if older_than is not None:
        jobs = jobs.filter(created_at__lt=timezone.now() - older_than)
    if stuck:
        jobs = jobs.filter(stuck_filter(stuck_after))
    return jobs
