"""A job's own receiver, given with its submit: kept on the job for a signed-in caller whose URL
may receive webhooks; refused, with nothing written, otherwise."""

import pytest

from jobs.models import Job, JobKind, JobState
from jobs.services import clients
from tests.factories import JobFactory
from webhooks import services
from webhooks.models import EventType, SigningSecret

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def hook_names(names):
    names["hooks.example.com"] = ["93.184.215.34"]
    names["hooks.internal.example.com"] = ["10.1.2.3"]


def submit(user, **webhook):
    return clients.create_job(
        api=clients.ApiHalf.JOB, kind=JobKind.TEXT_TO_3D, user=user, prompt="a mug", **webhook
    )


def test_a_signed_in_caller_s_job_keeps_its_receiver_and_the_caller_gets_a_secret(user):
    job = submit(user, webhook_url="https://hooks.example.com/in")

    job.refresh_from_db()
    assert job.webhook_url == "https://hooks.example.com/in"
    assert job.webhook_events == services.default_events()
    assert SigningSecret.objects.get(user=user).secret.startswith("whsec_")


def test_the_events_given_are_kept(user):
    job = submit(
        user,
        webhook_url="https://hooks.example.com/in",
        webhook_events=[EventType.PROGRESS, EventType.COMPLETED],
    )
    assert Job.objects.get(pk=job.pk).webhook_events == ["job.progress", "job.completed"]


@pytest.mark.parametrize(
    "signed_in, url, message",
    [
        (
            False,
            "https://hooks.example.com/in",
            "webhookUrl needs a signed-in caller: the webhook is signed with the user's secret",
        ),
        (
            True,
            "https://hooks.internal.example.com/in",
            "The webhook URL is not allowed: hooks.internal.example.com is not a public host",
        ),
        (True, "http://hooks.example.com/in", "The webhook URL must be https"),
    ],
)
def test_a_refused_receiver_refuses_the_submit_and_nothing_is_written(
    user, signed_in, url, message
):
    with pytest.raises(services.WebhookRefused) as refused:
        submit(user if signed_in else None, webhook_url=url)

    assert refused.value.message == message
    assert not Job.objects.exists() and not SigningSecret.objects.exists()


def test_a_remesh_takes_a_receiver_of_its_own(user):
    source = JobFactory(user=user, state=JobState.COMPLETED, source_mesh="jobs/x/source.ply")

    remesh = clients.remesh_job(
        source, clients.JobOptions(), webhook_url="https://hooks.example.com/remesh"
    )

    assert Job.objects.get(pk=remesh.pk).webhook_url == "https://hooks.example.com/remesh"
    assert Job.objects.get(pk=source.pk).webhook_url == ""
