"""The queue figures a web process computes once per tick (selectors.queue_standings): the same
numbers as counting each job's queue on its own, on PostgreSQL's one-pass query and elsewhere."""

from datetime import timedelta

import pytest
from django.db import connection

from jobs import selectors
from jobs.models import Job, JobKind, JobState
from tests.factories import JobFactory
from tests.helpers.clock import backdate

pytestmark = pytest.mark.django_db


def counted_one_by_one(job: Job) -> int:
    return Job.objects.filter(
        kind__in=selectors.ESTIMATE_GROUPS[selectors.estimate_group_of(job)],
        state=JobState.PENDING,
        created_at__lt=job.created_at,
    ).count()


def test_every_followed_job_has_its_place_and_the_counts_are_right_on_postgresql():
    assert connection.vendor == "postgresql"  # its one-pass query
    check_every_followed_job_has_its_place_and_the_counts_are_right()


@pytest.mark.embedded
def test_every_followed_job_has_its_place_and_the_counts_are_right_on_sqlite():
    assert connection.vendor == "sqlite"  # a count per threshold
    check_every_followed_job_has_its_place_and_the_counts_are_right()


def check_every_followed_job_has_its_place_and_the_counts_are_right():
    kinds = [JobKind.TEXT_TO_3D, JobKind.IMAGE_TO_3D, JobKind.PREVIEW]
    waiting = [
        backdate(JobFactory(user=None, kind=kinds[n % 3]), created_at=timedelta(seconds=100 - n))
        for n in range(30)
    ]
    backdate(
        JobFactory(user=None, kind=JobKind.TEXT_TO_3D), created_at=timedelta(seconds=100 - 7)
    )  # arrived with another
    for state in (JobState.PROCESSING, JobState.PROCESSING, JobState.COMPLETED, JobState.FAILED):
        JobFactory(user=None, state=state)
    JobFactory(user=None, kind=JobKind.PREVIEW, state=JobState.PROCESSING)
    followed = waiting[::4] + [waiting[7]]

    standings = selectors.queue_standings(followed)

    assert standings.ahead == {str(job.pk): counted_one_by_one(job) for job in followed}
    assert standings.waiting == {"3d": 21, "preview": 10, "remesh": 0}
    assert standings.processing == {"3d": 2, "preview": 1, "remesh": 0}
    first = waiting[0]
    # The 3D jobs 0, 1 and 3 arrived before 3D job 4 (job 2 is a preview, another queue).
    assert (
        standings.for_job(first)["position"] == 1 and standings.for_job(waiting[4])["position"] == 4
    )


def test_a_job_that_arrived_after_the_figures_waits_behind_all_of_them():
    JobFactory.create_batch(3, user=None)
    standings = selectors.queue_standings([])
    newcomer = JobFactory(user=None)

    assert standings.knows(newcomer)
    assert standings.for_job(newcomer)["position"] == 4
