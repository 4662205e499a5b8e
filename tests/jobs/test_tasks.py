"""Uploads that no job uses are deleted after a day, by a task on the default queue."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from hydrilla.queues import (
    DELETE_EXPIRED_IDEMPOTENCY_KEYS,
    DELETE_UNUSED_UPLOADS,
    EXPIRE_JOBS,
    FORGET_WEBHOOK_EVENTS,
    SWEEP_WEBHOOKS,
    CeleryQueue,
)
from jobs import storage, tasks
from jobs.models import Job, Upload
from tests.factories import JobFactory
from tests.helpers import images
from tests.helpers.job_api import upload

pytestmark = pytest.mark.django_db


def uploaded(client, hours_ago: float) -> str:
    name = storage.name_from_url(upload(client, images.png()).json()["url"])
    Upload.objects.filter(name=name).update(created_at=timezone.now() - timedelta(hours=hours_ago))
    return name


def test_an_upload_no_job_used_is_deleted_after_a_day_and_one_a_job_uses_stays(
    s3_media, api_client, django_capture_on_commit_callbacks
):
    forgotten = uploaded(api_client, hours_ago=25)
    used = uploaded(api_client, hours_ago=25)
    recent = uploaded(api_client, hours_ago=2)
    JobFactory(input_image=used)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.delete_unused_uploads.apply()

    assert not s3_media.exists(forgotten)
    assert s3_media.exists(used) and s3_media.exists(recent)
    assert set(Upload.objects.values_list("name", flat=True)) == {used, recent}
    assert Job.objects.get().input_image == used


def test_the_housekeeping_runs_hourly_on_the_default_queue():
    for task in (DELETE_UNUSED_UPLOADS, EXPIRE_JOBS, DELETE_EXPIRED_IDEMPOTENCY_KEYS):
        assert settings.CELERY_TASK_ROUTES[task] == {"queue": CeleryQueue.DEFAULT}
    assert {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    } == {
        DELETE_UNUSED_UPLOADS: 3600.0,
        DELETE_EXPIRED_IDEMPOTENCY_KEYS: 3600.0,
        EXPIRE_JOBS: 3600.0,
        SWEEP_WEBHOOKS: settings.WEBHOOK_SWEEP_SECONDS,
        FORGET_WEBHOOK_EVENTS: 3600.0,
    }
