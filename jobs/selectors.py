"""Reads: jobs, ownership, history, and the queue figures shown to users.

Queue figures are a fixed handful of queries, whatever the length of the queue; web processes
compute them once per tick (jobs.watch), not per request.
"""

import base64
import binascii
import bisect
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Avg, Count, Min, Q
from django.utils import timezone

from accounts.models import User
from jobs.models import ACTIVE_STATES, JOB_API_STATUS, THREE_D_KINDS, Job, JobKind, JobState

# The kinds whose jobs share a time estimate and a place in line (not the broker's queues).
# An uploaded model never waits (it is finished when made): it stands with the CPU-only remeshes,
# and has no run time to count in their estimates.
ESTIMATE_GROUPS = {
    "3d": THREE_D_KINDS,
    "preview": (JobKind.PREVIEW,),
    "remesh": (JobKind.REMESH, JobKind.UPLOADED_MESH),
}


def estimate_group_of(job: Job) -> str:
    """The estimate group a job waits in: 3D jobs, previews, or remeshes."""
    return next(group for group, kinds in ESTIMATE_GROUPS.items() if job.kind in kinds)


def get_job(job_id) -> Job | None:
    """The job with this id; None for unknown and malformed ids alike."""
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        return None
    return Job.objects.select_related("user").filter(pk=job_uuid).first()


def stored_versions(job_ids, cursor=None) -> dict[str, datetime]:
    """Each job's ``updated_at`` as stored now, by id (a job that does not exist is absent), in
    one primary-key lookup below the ORM, on ``cursor`` (by default one of this thread's
    connection): a copy of a job read earlier is still the job while ``version_of`` it equals
    this. Every change a client can see moves ``updated_at``."""
    uuids = []
    for job_id in job_ids:
        try:
            uuids.append(uuid.UUID(str(job_id)))
        except ValueError:
            pass
    if not uuids:
        return {}
    if cursor is None:
        with connection.cursor() as cursor:
            return stored_versions(uuids, cursor)
    cursor.execute(
        f"SELECT id, updated_at FROM {Job._meta.db_table} WHERE id IN "
        f"({', '.join(['%s'] * len(uuids))})",
        [Job._meta.pk.get_db_prep_value(job_uuid, connection) for job_uuid in uuids],
    )
    # SQLite keeps ids as hex and times as naive UTC, which the ORM would convert.
    return {
        str(uuid.UUID(str(job_id))): at if timezone.is_aware(at) else timezone.make_aware(at, UTC)
        for job_id, at in cursor.fetchall()
    }


def version_of(job: Job | None) -> datetime | None:
    """What ``stored_versions`` says of a job as read then (None once deleted)."""
    return None if job is None else job.updated_at


def can_manage(user: User | None, job: Job) -> bool:
    """View or cancel: jobs with an owner belong to that owner (and staff); an ownerless job to
    whoever holds its id (its anonymous submitter)."""
    if job.user_id is None:
        return True
    return user is not None and (user.pk == job.user_id or user.is_staff)


def can_change(user: User | None, job: Job) -> bool:
    """Rename or delete: the owner and staff. An ownerless job is nobody's to change but staff's:
    holding its id proves nothing about who submitted it."""
    return user is not None and (
        user.is_staff or (job.user_id is not None and user.pk == job.user_id)
    )


def history(user: User | None, *, states=(), kinds=()):
    """The user's jobs (in ``states`` and of ``kinds`` when given), newest first."""
    if user is None:
        return Job.objects.none()
    jobs = Job.objects.filter(user=user).order_by("-created_at", "-id")
    if states:
        jobs = jobs.filter(state__in=states)
    if kinds:
        jobs = jobs.filter(kind__in=kinds)
    return jobs


HISTORY_PAGE_MAX = 100


class InvalidCursor(ValueError):
    """A cursor that no history page gave out."""


@dataclass(frozen=True)
class HistoryPage:
    jobs: list[Job]
    next_cursor: str | None  # None: this is the last page


def history_page(
    user: User | None, *, limit: int, cursor: str | None = None, states=(), kinds=()
) -> HistoryPage:
    """``limit`` of the user's jobs (in ``states`` and of ``kinds`` when given), newest first,
    after the job that ``cursor`` points at.

    Keyset paging on (created_at, id): a cursor names the last job of its page, so jobs made
    (or deleted) between two pages shift nothing, and no page repeats or skips a job."""
    jobs = history(user, states=states, kinds=kinds)
    if cursor is not None:
        created_at, job_id = _decoded_cursor(cursor)
        jobs = jobs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=job_id))
    page = list(jobs[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return HistoryPage(page, _cursor_after(page[-1]) if more else None)


def _cursor_after(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.pk)]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decoded_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        return moment, uuid.UUID(job_id)
    except (binascii.Error, ValueError, TypeError, AttributeError) as exc:
        raise InvalidCursor(cursor) from exc


def user_stats(user: User) -> dict:
    return Job.objects.filter(user=user).aggregate(
        totalJobs=Count("pk"), completedJobs=Count("pk", filter=Q(state=JobState.COMPLETED))
    )


def estimated_seconds(group: str) -> float:
    """Mean duration of the latest finished jobs of this group, or the spec's figure before any."""
    mean = (
        Job.objects.filter(
            kind__in=ESTIMATE_GROUPS[group], state=JobState.COMPLETED, elapsed_seconds__isnull=False
        )
        .order_by("-finished_at")[: settings.ESTIMATE_SAMPLE_SIZE]
        .aggregate(mean=Avg("elapsed_seconds"))["mean"]
    )
    return round(mean if mean else settings.ESTIMATE_FALLBACK_SECONDS[group], 1)


@dataclass(frozen=True)
class QueueStandings:
    """The queue at one moment: per group, how many jobs wait and run and how long one takes, and
    how many wait ahead of each of the jobs a web process follows."""

    waiting: dict[str, int]
    processing: dict[str, int]
    per_job: dict[str, float]
    ahead: dict[str, int]  # job id → waiting jobs of its group that arrived before it
    taken_at: datetime

    def knows(self, job: Job) -> bool:
        """Whether the place of a waiting job is known: counted, or arrived since (at the back)."""
        return str(job.pk) in self.ahead or job.created_at > self.taken_at

    def for_job(self, job: Job) -> dict:
        """Where the job stands: position 0 is running (or finished), 1+ is waiting."""
        group = estimate_group_of(job)
        per_job, processing = self.per_job[group], self.processing[group]
        if job.state == JobState.PENDING:
            # A job that arrived after these figures were taken waits behind all of them.
            ahead = self.ahead.get(str(job.pk), self.waiting[group])
            jobs_ahead = ahead + processing
            wait = jobs_ahead * per_job
            position, total = ahead + 1, wait + per_job
        else:
            jobs_ahead, wait, position = 0, 0.0, 0
            total = _remaining(job, per_job) if job.state == JobState.PROCESSING else 0.0
        return {
            "position": position,
            "jobs_ahead": jobs_ahead,
            "estimated_wait_seconds": round(wait),
            "estimated_total_seconds": round(total),
            "queue_length": self.waiting[group],
            "currently_processing": processing > 0,
        }

    def info(self) -> dict:
        """The spec's queue statistics, for both groups."""
        waiting, processing, per_job = self.waiting, self.processing, self.per_job
        return {
            "queue_length": waiting["3d"],
            "currently_processing": processing["3d"] > 0,
            "waiting_jobs": waiting["3d"],
            "estimated_wait_for_new_job_seconds": round(
                (waiting["3d"] + processing["3d"]) * per_job["3d"]
            ),
            "estimated_time_per_job_seconds": round(per_job["3d"]),
            "preview_queue_length": waiting["preview"],
            "currently_generating_preview": processing["preview"] > 0,
            "preview_waiting": waiting["preview"],
            "estimated_wait_for_preview_seconds": round(
                (waiting["preview"] + processing["preview"]) * per_job["preview"]
            ),
            "estimated_preview_time_seconds": round(per_job["preview"]),
        }


def _remaining(job: Job, per_job: float) -> float:
    running_for = (timezone.now() - job.started_at).total_seconds() if job.started_at else 0.0
    return max(per_job - running_for, 1.0)


def queue_standings(followed_waiting=()) -> QueueStandings:
    """The queue figures, with the places of ``followed_waiting`` (waiting jobs), in four queries
    whatever the queue's length: one pass over the waiting jobs counts those before each followed
    one, then the running jobs, then each group's recent durations."""
    taken_at = timezone.now()
    group_of_kind = {kind: group for group, kinds in ESTIMATE_GROUPS.items() for kind in kinds}
    thresholds = sorted({job.created_at for job in followed_waiting})
    before = {group: [0] * (len(thresholds) + 1) for group in ESTIMATE_GROUPS}  # waiting, by bucket
    for kind, bucket, count in _waiting_by_bucket(thresholds):
        before[group_of_kind[kind]][bucket] += count
    ahead = {}
    for job in followed_waiting:
        buckets = before[estimate_group_of(job)]
        ahead[str(job.pk)] = sum(buckets[: bisect.bisect_left(thresholds, job.created_at) + 1])
    processing = dict.fromkeys(ESTIMATE_GROUPS, 0)
    for row in (
        Job.objects.filter(state=JobState.PROCESSING).values("kind").annotate(count=Count("pk"))
    ):
        processing[group_of_kind[row["kind"]]] += row["count"]
    return QueueStandings(
        waiting={group: sum(buckets) for group, buckets in before.items()},
        processing=processing,
        per_job={group: estimated_seconds(group) for group in ESTIMATE_GROUPS},
        ahead=ahead,
        taken_at=taken_at,
    )


def waiting_ahead(job: Job) -> int:
    """How many jobs of its group wait before a waiting job (one count, for a job newly
    followed)."""
    return Job.objects.filter(
        kind__in=ESTIMATE_GROUPS[estimate_group_of(job)],
        state=JobState.PENDING,
        created_at__lt=job.created_at,
    ).count()


def _waiting_by_bucket(thresholds: list) -> list[tuple[str, int, int]]:
    """(kind, bucket, count) of the waiting jobs, where bucket ``i`` holds those that arrived at or
    after ``thresholds[i - 1]`` and before ``thresholds[i]`` (sorted)."""
    waiting = Job.objects.filter(state=JobState.PENDING)
    if connection.vendor == "postgresql":
        # width_bucket finds each row's bucket by binary search: one pass, however many thresholds.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT kind, width_bucket(created_at, "
                f"%s::timestamptz[]), count(*) FROM {Job._meta.db_table} "
                "WHERE state = %s GROUP BY 1, 2",
                [thresholds, JobState.PENDING],
            )
            return cursor.fetchall()
    # Elsewhere (SQLite: the embedded defaults) a count per threshold, in one query per kind.
    rows = []
    for kind in waiting.order_by().values_list("kind", flat=True).distinct():
        of_kind = waiting.filter(kind=kind)
        counts = of_kind.aggregate(
            total=Count("pk"),
            **{
                f"before_{i}": Count("pk", filter=Q(created_at__lt=t))
                for i, t in enumerate(thresholds)
            },
        )
        cumulative = [counts[f"before_{i}"] for i in range(len(thresholds))] + [counts["total"]]
        rows += [(kind, i, n - (cumulative[i - 1] if i else 0)) for i, n in enumerate(cumulative)]
    return rows


# --- Staff tools (admin, management commands) ------------------------------------------------


def states_for_status(status: str) -> tuple[str, ...]:
    """The states behind a job API word (``FAIL`` is failed or cancelled) or an internal state."""
    word = status.strip()
    states = tuple(state for state, node in JOB_API_STATUS.items() if node == word.upper())
    if not states and word.lower() in JobState.values:
        states = (word.lower(),)
    if not states:
        accepted = sorted(set(JOB_API_STATUS.values())) + list(JobState.values)
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(accepted)}")
    return states


def unheld() -> Q:
    """Jobs whose current stage no worker holds: waiting for a worker of its queue."""
    return Q(heartbeat_at__isnull=True)


def held_as_read(heartbeat_at) -> Q:
    """Jobs whose stage is held as it was when its ``heartbeat_at`` was read (free if None): a
    holder's beat, a claim or a handoff since then makes it match nothing."""
    return Q(heartbeat_at=heartbeat_at) if heartbeat_at is not None else unheld()


def orphaned() -> Q:
    """Jobs whose current stage is held by a worker that stopped sending heartbeats (killed, lost
    its machine)."""
    silent_since = timezone.now() - timedelta(seconds=settings.ORPHAN_AFTER_SECONDS)
    return Q(state__in=ACTIVE_STATES, heartbeat_at__lt=silent_since)


def unconfirmed() -> Q:
    """Jobs whose current stage waits for a worker without a message that the broker confirmed
    (see ``services.shared.enqueue``)."""
    return unheld() & Q(state__in=ACTIVE_STATES, queued_at__isnull=True)


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


def stage_load() -> list[dict]:
    """The active jobs by kind and current stage: how many wait for a worker of the stage's queue
    (``waiting``), how many a worker holds (``running``), and since when the longest waiting one
    has waited (``waiting_since``: its submission, or its last handoff or requeue). One grouped
    query, made once per scrape (``jobs.metrics``)."""
    return list(
        Job.objects.filter(state__in=ACTIVE_STATES)
        .values("kind", "stage")
        .annotate(
            waiting=Count("pk", filter=unheld()),
            running=Count("pk", filter=~unheld()),
            waiting_since=Min("updated_at", filter=unheld()),
        )
        .order_by()
    )


def recent_stage_seconds(stages) -> dict[str, float]:
    """The mean seconds of each of ``stages`` in the latest ESTIMATE_SAMPLE_SIZE completed 3D
    jobs (their ``stage_runs``); a stage none of them ran is left out."""
    runs = (
        Job.objects.filter(kind__in=THREE_D_KINDS, state=JobState.COMPLETED)
        .exclude(finished_at=None)
        .order_by("-finished_at")
        .values_list("stage_runs", flat=True)[: settings.ESTIMATE_SAMPLE_SIZE]
    )
    seconds: dict[str, list[float]] = {stage: [] for stage in stages}
    for job_runs in runs:
        for run in job_runs:
            if run.get("stage") in seconds:
                seconds[run["stage"]].append(float(run["seconds"]))
    return {stage: sum(values) / len(values) for stage, values in seconds.items() if values}
