"""Jobs in the past: moments before now, and timestamps moved back."""

from datetime import datetime, timedelta

from django.utils import timezone

from jobs.models import Job


def ago(**delta) -> datetime:
    """The moment ``timedelta(**delta)`` before now."""
    return timezone.now() - timedelta(**delta)


def backdate(job: Job, **ages: timedelta) -> Job:
    """Move timestamps (``created_at``, ``updated_at``, ...) into the past, in the row and on
    ``job``
    (``auto_now`` and ``auto_now_add`` fields can only be changed by UPDATE)."""
    now = timezone.now()
    moments = {field: now - age for field, age in ages.items()}
    Job.objects.filter(pk=job.pk).update(**moments)
    for field, moment in moments.items():
        setattr(job, field, moment)
    return job


def past_the_sweep_delay(*jobs) -> None:
    """Make waiting jobs old enough for the sweep to send their messages again."""
    for job in jobs:
        backdate(job, updated_at=timedelta(minutes=1))
