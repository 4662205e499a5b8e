from datetime import timedelta

import factory
from django.utils import timezone

from accounts.models import User
from jobs import plan
from jobs.error_codes import ErrorCode
from jobs.models import Job, JobKind, JobState


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    id = factory.Sequence(lambda n: f"user_test{n:04d}")
    email = factory.LazyAttribute(lambda user: f"{user.id}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    user = factory.SubFactory(UserFactory)
    kind = JobKind.TEXT_TO_3D
    state = JobState.PENDING
    prompt = factory.Sequence(lambda n: f"a ceramic mug number {n}")
    seed = 1234
    # Where a new job of its kind begins; a test of a later stage says so.
    stage = factory.LazyAttribute(lambda job: plan.first(job.kind))

    class Params:
        # A job that ran twice and failed half-way (started three minutes ago, ended one ago).
        failed = factory.Trait(
            state=JobState.FAILED,
            progress=40,
            message="Failed",
            error_code=ErrorCode.GPU_OUT_OF_MEMORY,
            error_message="CUDA out of memory",
            attempts=2,
            worker="gpu@host",
            started_at=factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=3)),
            finished_at=factory.LazyAttribute(lambda job: job.started_at + timedelta(minutes=2)),
            elapsed_seconds=120.0,
        )
        # A job on its first attempt, alive (a heartbeat now) unless a test says otherwise; a test
        # says since when with ``started_at`` (``tests.helpers.ago``).
        running = factory.Trait(
            state=JobState.PROCESSING,
            attempts=1,
            worker="gpu@host",
            progress=30,
            started_at=factory.LazyFunction(timezone.now),
            heartbeat_at=factory.LazyFunction(timezone.now),
        )
