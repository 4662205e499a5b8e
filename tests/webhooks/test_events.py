"""Every change of a job that a receiver can subscribe to writes its event once, in the
transaction of the change, with the job as /api/3d/status shows it."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from jobs.models import Job, JobKind, JobState, Stage
from jobs.services import clients, workers
from tests.factories import JobFactory, UserFactory
from tests.helpers.jobs import claim, fail, finish_3d, finish_preview, hand_on, start
from webhooks import services
from webhooks.models import Event, EventType, Message

pytestmark = pytest.mark.django_db

RECEIVER = "http://127.0.0.1:9/hooks"  # never contacted: these tests write events only


def events_of(job) -> list[str]:
    return list(
        Event.objects.filter(job_id=job.pk).order_by("created_at").values_list("type", flat=True)
    )


@pytest.fixture
def job(endpoint):
    """A waiting text-to-3D job whose owner has an endpoint subscribed to every event."""
    owner = endpoint(RECEIVER).user
    return JobFactory(user=owner)


def test_a_job_that_completes_tells_started_progress_and_completed_once_each(job):
    lease = start(job.pk)
    workers.report_progress(lease, 40, "Generating…")
    workers.report_progress(lease, 50, "Generating…")  # within WEBHOOK_PROGRESS_SECONDS: not told
    finish_3d(job.pk, lease)

    assert events_of(job) == [EventType.STARTED, EventType.PROGRESS, EventType.COMPLETED]
    assert Message.objects.filter(event__job_id=job.pk, url=RECEIVER).count() == 3


def test_progress_is_told_again_once_its_interval_has_passed(job, settings):
    settings.WEBHOOK_PROGRESS_SECONDS = 0
    lease = start(job.pk)
    workers.report_progress(lease, 40, "Generating…")
    workers.report_progress(lease, 50, "Generating…")

    assert events_of(job) == [EventType.STARTED, EventType.PROGRESS, EventType.PROGRESS]


def test_a_failed_job_tells_failed(job):
    fail(job.pk, start(job.pk))

    assert events_of(job) == [EventType.STARTED, EventType.FAILED]


def test_a_waiting_job_cancelled_tells_cancelled_and_a_second_cancel_nothing(job):
    assert clients.request_cancel(job) == JobState.CANCELLED
    with pytest.raises(clients.JobNotCancellable):
        clients.request_cancel(job)

    assert events_of(job) == [EventType.CANCELLED]


def test_a_running_job_tells_cancelled_when_its_worker_stops_not_when_asked(job):
    lease = start(job.pk)
    assert clients.request_cancel(job) == JobState.PROCESSING
    assert events_of(job) == [EventType.STARTED]

    assert workers.end_job_unsuccessfully(lease, code="CANCELLED", message="stop") == "cancelled"
    assert events_of(job) == [EventType.STARTED, EventType.CANCELLED]


def test_an_orphaned_job_whose_cancel_was_asked_tells_cancelled_when_the_sweep_ends_it(job):
    start(job.pk)
    clients.request_cancel(job)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    workers.recover_orphaned_jobs()
    workers.recover_orphaned_jobs()

    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    assert events_of(job) == [EventType.STARTED, EventType.CANCELLED]


def test_a_stage_taken_over_by_another_worker_does_not_tell_started_again(job):
    start(job.pk)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    assert claim(job.pk).attempt == 2
    assert events_of(job) == [EventType.STARTED]


def test_a_change_rolled_back_leaves_no_event(job):
    with pytest.raises(RuntimeError), transaction.atomic():
        start(job.pk)
        raise RuntimeError("the caller's transaction fails")

    assert Job.objects.get(pk=job.pk).state == JobState.PENDING
    assert events_of(job) == []


def test_receivers_get_only_the_events_they_subscribed_to(endpoint):
    owner = UserFactory()
    completed_only = endpoint(RECEIVER + "/completed", events=[EventType.COMPLETED], user=owner)
    job = JobFactory(
        user=owner, webhook_url=RECEIVER + "/job", webhook_events=services.default_events()
    )
    lease = start(job.pk)
    workers.report_progress(lease, 40, "Generating…")
    finish_3d(job.pk, lease)

    sent = sorted(Message.objects.values_list("event__type", "url"))
    assert sent == sorted(
        [
            (EventType.STARTED, RECEIVER + "/job"),
            (EventType.COMPLETED, RECEIVER + "/job"),
            (EventType.COMPLETED, completed_only.url),
        ]
    )
    # The job's own receiver is signed with its owner's secret; no progress by default.
    assert EventType.PROGRESS not in services.default_events()


def test_nothing_is_written_for_a_job_nobody_listens_to_nor_to_a_disabled_endpoint(endpoint):
    disabled = endpoint(RECEIVER)
    disabled.disabled_at = timezone.now()
    disabled.save()
    for job in (JobFactory(user=disabled.user), JobFactory(user=None), JobFactory()):
        finish_3d(job.pk, start(job.pk))

    assert not Event.objects.exists() and not Message.objects.exists()


def test_the_payload_is_the_type_the_time_and_the_job_as_api_3d_status_shows_it(
    job, auth_client, settings, local_media
):
    settings.SITE_URL = "http://testserver"
    lease = start(job.pk)
    finish_3d(job.pk, lease)
    event = Event.objects.get(job_id=job.pk, type=EventType.COMPLETED)

    payload = json.loads(event.body)
    status = auth_client(job.user).get(f"/api/3d/status/{job.pk}")

    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "job.completed"
    assert payload["timestamp"] == event.created_at.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    assert status.status_code == 200
    assert payload["data"] == status.json()
    assert payload["data"]["job"]["status"] == "DONE"
    assert payload["data"]["job"]["resultGlbUrl"].startswith("http://testserver/")


def test_every_event_of_a_run_carries_the_job_as_it_was_then(job):
    lease = start(job.pk)
    finish_3d(job.pk, lease)

    statuses = [
        json.loads(body)["data"]["job"]["status"]
        for body in Event.objects.filter(job_id=job.pk)
        .order_by("created_at")
        .values_list("body", flat=True)
    ]
    assert statuses == ["RUN", "DONE"]


def test_an_image_to_3d_job_tells_started_when_its_model_call_begins_not_as_it_prepares(job):
    job = JobFactory(
        user=job.user, kind=JobKind.IMAGE_TO_3D, image_url="https://images.example.com/a.png"
    )
    lease = claim(job.pk)  # prepare: the job still waits for a GPU
    assert lease.stage == Stage.PREPARE and events_of(job) == []

    hand_on(job.pk, lease)
    assert events_of(job) == [EventType.STARTED]


def test_a_preview_tells_started_and_completed(job):
    preview = JobFactory(user=job.user, kind=JobKind.PREVIEW)
    finish_preview(preview.pk, claim(preview.pk))

    assert events_of(preview) == [EventType.STARTED, EventType.COMPLETED]


def test_a_body_that_cannot_be_rendered_never_stops_the_job(job, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ValueError("a bug in rendering")

    monkeypatch.setattr(services.JobStatus, "render", broken)

    lease = start(job.pk)

    assert lease is not None and Job.objects.get(pk=job.pk).state == JobState.PROCESSING
    assert events_of(job) == []
    assert "No job.started event for job" in caplog.text
