"""``manage.py requeue_jobs``: which jobs it picks, what it does to them, and what it refuses."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from jobs.models import Job, JobKind, JobState
from jobs.services import staff, workers
from tests.factories import JobFactory
from tests.helpers.clock import ago, backdate

pytestmark = pytest.mark.django_db


def requeue(*args) -> list[str]:
    out = StringIO()
    call_command("requeue_jobs", *map(str, args), stdout=out)
    return out.getvalue().splitlines()


def run(django_capture_on_commit_callbacks, *args) -> list[str]:
    """The command, with what it leaves for after the commit (the publish) carried out."""
    with django_capture_on_commit_callbacks(execute=True):
        return requeue(*args)


def test_a_failed_job_starts_clean_keeps_its_attempts_and_is_sent_to_the_broker(
    enqueued, django_capture_on_commit_callbacks
):
    job = JobFactory(failed=True, result_glb="")

    lines = run(django_capture_on_commit_callbacks, job.pk)

    assert lines == [f"{job.pk} text-to-3d FAIL (failed): requeued", "1 requeued"]
    job.refresh_from_db()
    assert job.state == JobState.PENDING
    assert (job.progress, job.message, job.error_code, job.error_message) == (
        0,
        "Queued",
        None,
        None,
    )
    assert (job.worker, job.started_at, job.finished_at, job.elapsed_seconds) == (
        "",
        None,
        None,
        None,
    )
    assert job.attempts == 2
    assert enqueued == [str(job.pk)]


def test_status_takes_the_job_api_word_and_fail_covers_cancelled_jobs(
    enqueued, django_capture_on_commit_callbacks
):
    failed, cancelled = JobFactory(failed=True), JobFactory(state=JobState.CANCELLED)
    done, waiting = JobFactory(state=JobState.COMPLETED), JobFactory()

    lines = run(django_capture_on_commit_callbacks, "--status", "FAIL")

    assert lines[-1] == "2 requeued"
    assert sorted(enqueued) == sorted([str(failed.pk), str(cancelled.pk)])
    assert {line.split()[0] for line in lines[:-1]} == {str(failed.pk), str(cancelled.pk)}
    assert Job.objects.get(pk=done.pk).state == JobState.COMPLETED
    assert Job.objects.get(pk=waiting.pk).updated_at == waiting.updated_at


def test_status_takes_an_internal_state_in_any_case(enqueued, django_capture_on_commit_callbacks):
    failed, cancelled = JobFactory(failed=True), JobFactory(state=JobState.CANCELLED)

    lines = run(django_capture_on_commit_callbacks, "--status", "Cancelled")

    assert lines == [f"{cancelled.pk} text-to-3d FAIL (cancelled): requeued", "1 requeued"]
    assert Job.objects.get(pk=failed.pk).state == JobState.FAILED


def test_older_than_picks_jobs_created_before_that_long_ago(
    enqueued, django_capture_on_commit_callbacks
):
    old, recent = JobFactory(failed=True), JobFactory(failed=True)
    backdate(old, created_at=timedelta(hours=3))

    lines = run(django_capture_on_commit_callbacks, "--status", "FAIL", "--older-than", "2h")

    assert lines == [f"{old.pk} text-to-3d FAIL (failed): requeued", "1 requeued"]
    assert Job.objects.get(pk=recent.pk).state == JobState.FAILED


def test_dry_run_says_what_it_would_do_and_changes_nothing(
    enqueued, django_capture_on_commit_callbacks
):
    failed = JobFactory(failed=True)
    stuck = JobFactory(running=True, started_at=ago(hours=2))
    busy = JobFactory(running=True, started_at=ago(minutes=1))
    before = {job.pk: Job.objects.filter(pk=job.pk).values().get() for job in (failed, stuck, busy)}

    lines = run(django_capture_on_commit_callbacks, failed.pk, stuck.pk, busy.pk, "--dry-run")

    assert sorted(lines[:-1]) == sorted(
        [
            f"{failed.pk} text-to-3d FAIL (failed): would be requeued",
            f"{stuck.pk} text-to-3d RUN (processing): would be released (stuck) and requeued",
            f"{busy.pk} text-to-3d RUN (processing): would be refused: running and not stuck",
        ]
    )
    assert lines[-1].startswith("Dry run, nothing changed; would be: ")
    assert enqueued == []
    assert {
        job.pk: Job.objects.filter(pk=job.pk).values().get() for job in (failed, stuck, busy)
    } == before


def test_a_running_job_that_is_not_stuck_is_refused(enqueued, django_capture_on_commit_callbacks):
    busy = JobFactory(running=True, started_at=ago(minutes=5))

    lines = run(django_capture_on_commit_callbacks, busy.pk)

    assert lines == [
        f"{busy.pk} text-to-3d RUN (processing): refused: running and not stuck",
        "1 refused: running and not stuck",
    ]
    busy.refresh_from_db()
    assert (busy.state, busy.progress, busy.attempts) == (JobState.PROCESSING, 30, 1)
    assert enqueued == []


def test_stuck_picks_long_running_and_long_waiting_jobs_only(
    enqueued, django_capture_on_commit_callbacks
):
    stuck_running = JobFactory(running=True, started_at=ago(hours=2))
    busy = JobFactory(running=True, started_at=ago(minutes=5))
    stuck_waiting, fresh_waiting = JobFactory(), JobFactory()
    backdate(stuck_waiting, created_at=timedelta(hours=3), updated_at=timedelta(hours=3))
    failed = JobFactory(failed=True)

    lines = run(django_capture_on_commit_callbacks, "--stuck")

    assert sorted(lines[:-1]) == sorted(
        [
            f"{stuck_running.pk} text-to-3d RUN (processing): released (stuck) and requeued",
            f"{stuck_waiting.pk} text-to-3d WAIT (pending): requeued",
        ]
    )
    assert sorted(enqueued) == sorted([str(stuck_running.pk), str(stuck_waiting.pk)])
    stuck_running.refresh_from_db()
    assert (stuck_running.state, stuck_running.progress, stuck_running.error_code) == (
        JobState.PENDING,
        0,
        None,
    )
    assert stuck_running.attempts == 1
    for untouched in (busy, fresh_waiting, failed):
        assert Job.objects.get(pk=untouched.pk).state == untouched.state


def test_stuck_picks_a_job_whose_worker_stopped_sending_heartbeats(
    enqueued, django_capture_on_commit_callbacks
):
    silent = JobFactory(
        running=True, started_at=ago(minutes=5), heartbeat_at=timezone.now() - timedelta(minutes=3)
    )
    alive = JobFactory(running=True, started_at=ago(minutes=5))

    lines = run(django_capture_on_commit_callbacks, "--stuck")

    assert lines == [
        f"{silent.pk} text-to-3d RUN (processing): released (stuck) and requeued",
        "1 released (stuck) and requeued",
    ]
    assert enqueued == [str(silent.pk)]
    assert Job.objects.get(pk=alive.pk).state == JobState.PROCESSING


def test_stuck_after_sets_the_limit(enqueued, django_capture_on_commit_callbacks):
    twenty_minutes = JobFactory(running=True, started_at=ago(minutes=20))
    five_minutes = JobFactory(running=True, started_at=ago(minutes=5))

    lines = run(django_capture_on_commit_callbacks, "--stuck", "--stuck-after", "10m")

    assert lines[-1] == "1 released (stuck) and requeued"
    assert enqueued == [str(twenty_minutes.pk)]
    assert Job.objects.get(pk=five_minutes.pk).state == JobState.PROCESSING


def test_a_stuck_running_job_named_by_id_is_released_then_requeued(
    enqueued, django_capture_on_commit_callbacks
):
    stuck = JobFactory(running=True, started_at=ago(hours=2), kind=JobKind.PREVIEW)

    lines = run(django_capture_on_commit_callbacks, stuck.pk)

    assert lines == [
        f"{stuck.pk} text-to-image RUN (processing): released (stuck) and requeued",
        "1 released (stuck) and requeued",
    ]
    assert Job.objects.get(pk=stuck.pk).state == JobState.PENDING
    assert enqueued == [str(stuck.pk)]


def test_a_job_that_changed_since_it_was_read_is_left_alone(
    enqueued, django_capture_on_commit_callbacks
):
    """A waiting job that a worker finished between the check and the reset keeps its result."""
    seen_waiting = JobFactory()
    Job.objects.filter(pk=seen_waiting.pk).update(
        state=JobState.COMPLETED, result_glb="results/mug.glb"
    )

    with django_capture_on_commit_callbacks(execute=True):
        outcome = staff.requeue_by_staff(seen_waiting)

    assert outcome == staff.StaffOutcome.CHANGED
    assert Job.objects.filter(pk=seen_waiting.pk).values_list("state", "result_glb").get() == (
        JobState.COMPLETED,
        "results/mug.glb",
    )
    assert enqueued == []


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "refusing to act on every job"),
        (("--dry-run",), "refusing to act on every job"),
        (("--stuck-after", "10m"), "refusing to act on every job"),
        (("not-a-uuid",), "'not-a-uuid' is not a job id"),
        (
            ("--status", "BROKEN"),
            "unknown status 'BROKEN'; use one of DONE, FAIL, RUN, WAIT, pending",
        ),
        (
            ("--status", "FAIL", "--older-than", "soon"),
            "'soon' is not a duration like 30m, 2h or 1d",
        ),
        (("--stuck", "--stuck-after", "2 weeks"), "is not a duration"),
    ],
)
def test_bad_arguments_are_refused_and_nothing_changes(enqueued, args, message):
    failed = JobFactory(failed=True)

    with pytest.raises(CommandError, match=message):
        requeue(*args)

    assert Job.objects.get(pk=failed.pk).state == JobState.FAILED
    assert enqueued == []


def test_an_unknown_job_id_is_refused_before_any_job_is_touched(enqueued):
    failed = JobFactory(failed=True)
    missing = "0b6a4f3e-6a8e-4c4e-9a57-000000000000"

    with pytest.raises(CommandError, match=f"No such job: {missing}"):
        requeue(failed.pk, missing)

    assert Job.objects.get(pk=failed.pk).state == JobState.FAILED
    assert enqueued == []


@pytest.mark.django_db(transaction=True)  # real commits: what other connections can read
def test_workers_send_an_orphaned_stage_again_and_leave_the_job_as_it_was(enqueued):
    """A client polling meanwhile never reads the job as failed, nor back to waiting at 0 %: the
    next worker of its stage's queue takes it over where it was."""
    silent = JobFactory(
        running=True, started_at=ago(minutes=5), heartbeat_at=timezone.now() - timedelta(minutes=3)
    )
    alive = JobFactory(running=True, started_at=ago(minutes=5))

    recovered = workers.recover_orphaned_jobs()

    assert [job.pk for job in recovered] == [silent.pk]
    silent.refresh_from_db()
    assert (silent.state, silent.attempts, silent.error_code, silent.progress) == (
        JobState.PROCESSING,
        1,
        None,
        30,
    )
    assert enqueued == [str(silent.pk)]
    assert Job.objects.get(pk=alive.pk).state == JobState.PROCESSING
