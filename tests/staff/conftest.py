from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import Job, JobState
from tests.factories import JobFactory


@pytest.fixture
def enqueued(monkeypatch):
    """Ids of the jobs handed to the broker; the publish itself is checked in test_broker.py."""
    sent = []
    monkeypatch.setattr(services, "enqueue", lambda job: sent.append(str(job.pk)))
    return sent


def failed_job(**fields) -> Job:
    """A job that ran twice and failed half-way."""
    now = timezone.now()
    defaults = {
        "state": JobState.FAILED,
        "progress": 40,
        "message": "Failed",
        "error_code": "GENERATION_FAILED",
        "error_message": "CUDA out of memory",
        "attempts": 2,
        "worker": "gpu@host",
        "started_at": now - timedelta(minutes=3),
        "finished_at": now - timedelta(minutes=1),
        "elapsed_seconds": 120.0,
    }
    return JobFactory(**{**defaults, **fields})


def running_job(started_ago: timedelta, **fields) -> Job:
    return JobFactory(
        state=JobState.PROCESSING,
        attempts=1,
        worker="gpu@host",
        progress=30,
        started_at=timezone.now() - started_ago,
        **{"heartbeat_at": timezone.now(), **fields},  # alive unless a test says otherwise
    )


def backdate(job: Job, **ages: timedelta) -> None:
    """Move ``created_at`` / ``updated_at`` into the past (``auto_now`` would undo a save)."""
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(**{field: now - age for field, age in ages.items()})
