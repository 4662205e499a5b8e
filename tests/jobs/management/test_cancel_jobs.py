"""``manage.py cancel_jobs``: waiting jobs end at once, running ones are asked to stop."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jobs.models import Job, JobState
from tests.factories import JobFactory
from tests.helpers.clock import ago, backdate

pytestmark = pytest.mark.django_db


def cancel(*args) -> list[str]:
    out = StringIO()
    call_command("cancel_jobs", *map(str, args), stdout=out)
    return out.getvalue().splitlines()


def test_jobs_named_by_id_are_cancelled_or_asked_to_stop_and_ended_ones_skipped():
    waiting, busy, done = (
        JobFactory(),
        JobFactory(running=True, started_at=ago(minutes=2)),
        JobFactory(state=JobState.COMPLETED),
    )

    lines = cancel(waiting.pk, busy.pk, done.pk)

    assert sorted(lines[:-1]) == sorted(
        [
            f"{waiting.pk} text-to-3d WAIT (pending): cancelled",
            f"{busy.pk} text-to-3d RUN (processing): asked to stop",
            f"{done.pk} text-to-3d DONE (completed): skipped: already ended",
        ]
    )
    assert sorted(lines[-1].split("; ")) == [
        "1 asked to stop",
        "1 cancelled",
        "1 skipped: already ended",
    ]
    waiting.refresh_from_db()
    assert (waiting.state, waiting.error_code) == (JobState.CANCELLED, "CANCELLED")
    busy.refresh_from_db()
    assert (busy.state, busy.cancel_requested) == (JobState.PROCESSING, True)
    assert Job.objects.get(pk=done.pk).state == JobState.COMPLETED


def test_status_and_older_than_narrow_the_selection():
    old_waiting, new_waiting = JobFactory(), JobFactory()
    old_running = JobFactory(running=True, started_at=ago(hours=1))
    backdate(old_waiting, created_at=timedelta(days=2))
    backdate(old_running, created_at=timedelta(days=2))

    lines = cancel("--status", "WAIT", "--older-than", "1d")

    assert lines == [f"{old_waiting.pk} text-to-3d WAIT (pending): cancelled", "1 cancelled"]
    assert Job.objects.get(pk=new_waiting.pk).state == JobState.PENDING
    assert Job.objects.get(pk=old_running.pk).cancel_requested is False


def test_status_run_asks_every_running_job_to_stop():
    busy, waiting = JobFactory(running=True, started_at=ago(minutes=1)), JobFactory()

    lines = cancel("--status", "RUN")

    assert lines == [f"{busy.pk} text-to-3d RUN (processing): asked to stop", "1 asked to stop"]
    assert Job.objects.get(pk=waiting.pk).state == JobState.PENDING


def test_dry_run_changes_nothing():
    waiting, busy = JobFactory(), JobFactory(running=True, started_at=ago(minutes=1))

    lines = cancel("--older-than", "0s", "--dry-run")

    assert sorted(lines[:-1]) == sorted(
        [
            f"{waiting.pk} text-to-3d WAIT (pending): would be cancelled",
            f"{busy.pk} text-to-3d RUN (processing): would be asked to stop",
        ]
    )
    assert lines[-1].startswith("Dry run, nothing changed; would be: ")
    assert Job.objects.get(pk=waiting.pk).state == JobState.PENDING
    assert Job.objects.get(pk=busy.pk).cancel_requested is False


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "refusing to act on every job"),
        (("--status", "FAIL"), "Jobs in failed, cancelled have already ended: nothing to cancel"),
        (("--status", "nope"), "unknown status 'nope'"),
        (("--status", "WAIT", "--older-than=-1h"), "is not a duration"),
        (("12345",), "'12345' is not a job id"),
        (("0b6a4f3e-6a8e-4c4e-9a57-000000000000",), "No such job"),
    ],
)
def test_bad_arguments_are_refused_and_nothing_changes(args, message):
    waiting = JobFactory()

    with pytest.raises(CommandError, match=message):
        cancel(*args)

    assert Job.objects.get(pk=waiting.pk).state == JobState.PENDING
