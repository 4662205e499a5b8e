"""A worker that cannot reach the database never drops the job it was given: it keeps trying to
claim it for DATABASE_WAIT_SECONDS, then hands the message back to the broker."""

import pytest
import trimesh
from celery.exceptions import Reject
from django.db import OperationalError

from generation import registry, runner, tasks
from jobs.models import Job, JobKind, JobState, Stage
from jobs.services import workers
from tests.factories import JobFactory
from tests.helpers.jobs import run_inline

# Real commits: the runner drops its broken connection, which a test transaction would not survive.
pytestmark = pytest.mark.django_db(transaction=True)


def database_down(monkeypatch, *, for_calls: int, service: str = "claim_stage") -> list:
    """``service`` fails as an unreachable PostgreSQL does, ``for_calls`` times; returns the
    calls."""
    calls, write = [], getattr(workers, service)

    def unreachable(*args, **kwargs):
        calls.append(args)
        if len(calls) <= for_calls:
            raise OperationalError(
                'connection to server at "127.0.0.1", port 5432 failed: Connection refused'
            )
        return write(*args, **kwargs)

    monkeypatch.setattr(workers, service, unreachable)
    return calls


class Sphere:
    """An image-to-3D backend that reports its steps and returns a sphere."""

    def __call__(self, image_rgba, seed, on_denoising_step=None):
        for step in range(1, 9):
            on_denoising_step(step, 8)
        return trimesh.creation.icosphere(subdivisions=2)


def test_an_outage_during_the_run_neither_fails_nor_stops_the_job(monkeypatch, settings, photo_job):
    settings.DATABASE_WAIT_SECONDS = 20
    monkeypatch.setattr(registry, "image_to_3d_pipeline", Sphere)
    progress_calls = database_down(monkeypatch, for_calls=3, service="report_progress")
    completions = database_down(monkeypatch, for_calls=1, service="complete_job")

    photo_job = run_inline(photo_job.pk)

    assert len(progress_calls) > 3 and len(completions) == 2
    assert (photo_job.state, photo_job.progress, photo_job.attempts) == (
        JobState.COMPLETED,
        100,
        1,
    ), photo_job.error_message


def test_a_claim_waits_out_a_short_outage_and_the_job_runs(monkeypatch, settings):
    settings.DATABASE_WAIT_SECONDS = 20
    # Its input is missing: the run ends at once, in a state that shows it was claimed and run.
    job = JobFactory(kind=JobKind.IMAGE_TO_3D, prompt=None, input_image="uploads/missing.png")
    calls = database_down(monkeypatch, for_calls=2)

    runner.run_stage(str(job.pk), job.stage, worker="cpu@test")

    job.refresh_from_db()
    assert len(calls) == 3
    assert (job.state, job.attempts, job.error_code) == (JobState.FAILED, 1, "STORAGE_ERROR")


def test_a_longer_outage_hands_the_message_back_to_the_broker(monkeypatch, settings):
    settings.DATABASE_WAIT_SECONDS = 1
    job = JobFactory(kind=JobKind.TEXT_TO_3D)
    database_down(monkeypatch, for_calls=1000)

    with pytest.raises(Reject) as rejected:
        tasks.STAGE_TASKS[Stage.TEXT_TO_IMAGE](str(job.pk))

    assert rejected.value.requeue is True  # back in the queue, not acknowledged away
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.PENDING, 0)
    assert Job.objects.count() == 1
