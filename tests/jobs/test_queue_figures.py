"""Queue figures computed once per second for the deployment and shared through the cache
(jobs.queue_figures), and the cheap check of a job's version (selectors.stored_versions)."""

import os
import time

import pytest
from django.core.cache import caches
from django.utils import timezone

from jobs import queue_figures, selectors
from jobs.models import Job
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_cache(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],  # scripts/test-services.sh
        },
    }
    caches["default"].clear()
    yield caches["default"]
    caches["default"].clear()


def next_lease():
    """Past the current holder's lease."""
    time.sleep(queue_figures.QUEUE_SECONDS + 0.05)


def test_one_process_computes_per_second_and_every_process_reads_its_figures(
    redis_cache, django_assert_num_queries
):
    first_in_line, second_in_line = JobFactory.create_batch(2)
    with django_assert_num_queries(5):  # counts, running jobs, three groups' estimates
        computed = queue_figures.current([first_in_line])
    with django_assert_num_queries(0):  # the same second: another process reads them
        read = queue_figures.current([second_in_line])
    assert read == computed
    assert read.for_job(first_in_line)["position"] == 1
    assert read.info()["queue_length"] == 2

    # Next second: whichever process computes counts the places of every process's jobs.
    next_lease()
    queue_figures.current([second_in_line])  # the processes in either order
    shared = queue_figures.current([first_in_line])
    assert shared.for_job(first_in_line)["position"] == 1
    assert shared.for_job(second_in_line)["position"] == 2
    assert shared.taken_at > computed.taken_at


def test_a_job_no_process_follows_any_more_is_no_longer_counted(redis_cache, monkeypatch):
    monkeypatch.setattr(queue_figures, "FOLLOWED_SECONDS", queue_figures.QUEUE_SECONDS / 2)
    job = JobFactory()
    assert str(job.pk) in queue_figures.current([job]).ahead
    next_lease()
    assert str(job.pk) not in queue_figures.current([]).ahead


def test_without_a_shared_cache_each_process_computes_its_own(django_assert_num_queries):
    job = JobFactory()
    with django_assert_num_queries(5):
        assert queue_figures.current([job]).for_job(job)["position"] == 1


def test_a_copy_of_a_job_is_current_until_its_row_changes_or_goes():
    job, other = JobFactory.create_batch(2)
    key = str(job.pk)
    copy = Job.objects.get(pk=job.pk)
    versions = selectors.stored_versions([key, str(other.pk), "not-a-job"])
    assert versions == {key: selectors.version_of(copy), str(other.pk): other.updated_at}
    Job.objects.filter(pk=job.pk).update(name="renamed", updated_at=timezone.now())
    assert selectors.stored_versions([key])[key] != selectors.version_of(copy)
    Job.objects.filter(pk=job.pk).delete()
    assert selectors.stored_versions([key]) == {}


@pytest.mark.embedded
def test_a_copy_of_a_job_is_checked_the_same_way_on_sqlite():
    test_a_copy_of_a_job_is_current_until_its_row_changes_or_goes()
