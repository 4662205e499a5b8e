"""Retention: each RETAIN_* setting expires its kind of job once it ended that long ago, through the
user's delete (row, then files), one job per transaction; unset, every job is kept."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from jobs import storage, tasks
from jobs.models import Job, JobKind, JobState
from jobs.services import clients, staff
from tests.factories import JobFactory, UserFactory
from tests.helpers.jobs import Background

DAY = 24 * 3600
SETTINGS = (
    "RETAIN_ANONYMOUS_JOBS_SECONDS",
    "RETAIN_UNREGISTERED_PREVIEWS_SECONDS",
    "RETAIN_FAILED_JOBS_SECONDS",
    "RETAIN_FINISHED_JOBS_SECONDS",
)


def ended(days_ago: float, **fields) -> Job:
    finished = timezone.now() - timedelta(days=days_ago)
    fields = {"state": JobState.COMPLETED, "user": None, **fields}
    job = JobFactory(finished_at=finished, **fields)
    Job.objects.filter(pk=job.pk).update(updated_at=finished)
    return job


def remaining(*jobs) -> set:
    return set(Job.objects.filter(pk__in=[job.pk for job in jobs]).values_list("pk", flat=True))


@pytest.mark.django_db
def test_unset_every_job_is_kept_however_old(settings):
    assert all(getattr(settings, name) is None for name in SETTINGS)
    jobs = [
        ended(3650),
        ended(3650, user=UserFactory()),
        ended(3650, kind=JobKind.PREVIEW),
        ended(3650, state=JobState.FAILED),
    ]

    assert staff.expire_jobs() == 0
    assert remaining(*jobs) == {job.pk for job in jobs}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "setting, expires, stays",
    [
        (
            "RETAIN_ANONYMOUS_JOBS_SECONDS",
            {"user": None},
            [{"user": "owner"}, {"user": None, "days_ago": 0.5}],
        ),
        (
            "RETAIN_UNREGISTERED_PREVIEWS_SECONDS",
            {"kind": JobKind.PREVIEW, "user": "owner"},
            [
                {"kind": JobKind.PREVIEW, "user": "owner", "registered_at": "now"},
                {"kind": JobKind.TEXT_TO_3D, "user": None},
            ],
        ),
        (
            "RETAIN_FAILED_JOBS_SECONDS",
            {"state": JobState.FAILED, "user": "owner"},
            [{"state": JobState.COMPLETED, "user": None}],
        ),
        (
            "RETAIN_FAILED_JOBS_SECONDS",
            {"state": JobState.CANCELLED, "user": "owner"},
            [{"state": JobState.FAILED, "user": "owner", "days_ago": 0.5}],
        ),
        (
            "RETAIN_FINISHED_JOBS_SECONDS",
            {"state": JobState.COMPLETED, "user": "owner"},
            [{"state": JobState.FAILED, "user": None}],
        ),
    ],
)
def test_each_setting_expires_its_kind_of_job_once_it_ended_that_long_ago(
    settings, setting, expires, stays
):
    setattr(settings, setting, DAY)
    owner = UserFactory()

    def make(days_ago=2, **fields):
        fields["user"] = owner if fields.get("user") == "owner" else None
        if fields.get("registered_at") == "now":
            fields["registered_at"] = timezone.now()
        return ended(days_ago, **fields)

    expired = make(**expires)
    kept = [make(**fields) for fields in stays]
    # Never a job still waiting or running, however old.
    running = JobFactory(user=None, running=True, kind=expires.get("kind", JobKind.TEXT_TO_3D))
    Job.objects.filter(pk=running.pk).update(created_at=timezone.now() - timedelta(days=30))

    assert staff.expire_jobs() == 1
    assert remaining(expired, *kept, running) == {job.pk for job in (*kept, running)}


@pytest.mark.django_db
def test_a_registered_preview_is_not_an_unregistered_one(settings, user):
    settings.RETAIN_UNREGISTERED_PREVIEWS_SECONDS = DAY
    made = ended(2, kind=JobKind.PREVIEW, user=user)
    clients.register_job(job_id=made.pk, user=user, prompt=made.prompt, preview_image_url="")
    foreign = clients.register_job(
        job_id=uuid.UUID("6f1c6c4e-1111-4222-8333-944455556666"),
        user=None,
        prompt="a mug",
        preview_image_url="https://images.example.com/mug.png",
    )
    Job.objects.filter(pk=foreign.pk).update(finished_at=timezone.now() - timedelta(days=2))
    unregistered = ended(2, kind=JobKind.PREVIEW, user=user)

    assert staff.expire_jobs() == 1
    assert remaining(made, foreign, unregistered) == {made.pk, foreign.pk}


@pytest.mark.django_db
def test_an_expired_job_goes_with_its_files_as_a_user_s_delete_and_a_shared_preview_stays(
    settings, media, django_capture_on_commit_callbacks
):
    settings.RETAIN_FINISHED_JOBS_SECONDS = DAY
    folder = storage.job_folder("retention")
    model = storage.save(folder, "model.glb", b"glTF")
    preview = storage.save(folder, "preview.png", b"png")
    shared_preview = storage.save(folder, "shared.png", b"png")
    expired = ended(2, result_glb=model, preview_image=preview)
    sharing = ended(2, preview_image=shared_preview)
    keeper = ended(0.1, preview_image=shared_preview)

    with django_capture_on_commit_callbacks(execute=True):
        assert staff.expire_jobs() == 2

    assert remaining(expired, sharing, keeper) == {keeper.pk}
    assert not media.exists(model) and not media.exists(preview)
    assert media.exists(shared_preview)


@pytest.mark.django_db
def test_expiry_goes_in_small_batches_until_none_is_left(settings):
    settings.RETAIN_FAILED_JOBS_SECONDS = DAY
    settings.RETENTION_BATCH_SIZE = 2
    jobs = [ended(2, state=JobState.FAILED) for _ in range(5)]

    assert tasks.expire_jobs.apply().successful()
    assert remaining(*jobs) == set()


@pytest.mark.django_db(transaction=True)
def test_a_job_someone_holds_is_skipped_not_waited_for(settings):
    """Each job is locked alone, SKIP LOCKED: a row another transaction holds (a user's rename,
    a worker's write) is left for the next run, and nothing else waits."""
    settings.RETAIN_FINISHED_JOBS_SECONDS = DAY
    held, other = ended(2), ended(2)
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            Job.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(10)

    holder = Background(hold)
    assert locked.wait(10)
    began = time.monotonic()
    try:
        deleted = staff.expire_jobs()
    finally:
        release.set()
        holder.join()

    assert time.monotonic() - began < 5
    assert deleted == 1
    assert remaining(held, other) == {held.pk}
    assert staff.expire_jobs() == 1  # the next run takes it
