import factory

from accounts.models import User
from jobs import stages
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
    stage = factory.LazyAttribute(lambda job: stages.first(job.kind))
