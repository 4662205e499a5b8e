"""No job is ever stranded: a waiting job has a message with the broker or gets one from the
sweep, whichever path published it (create, requeue, orphan sweep, staff) and whenever the broker
was down; and a job whose worker process died is taken over as soon as its message comes back.

Against the real RabbitMQ: ``gpu_queue`` reads what reached it, ``broker`` takes it down and up.
"""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from generation import processes
from jobs.models import Job, JobKind, JobState
from jobs.services import clients, shared, staff, workers
from tests.factories import JobFactory, UserFactory
from tests.helpers.broker import job_ids
from tests.helpers.clock import ago, backdate, past_the_sweep_delay
from tests.helpers.processes import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_new_job_records_when_the_broker_confirmed_its_message(gpu_queue):
    job = clients.create_job(
        api=clients.ApiHalf.JOB, kind=JobKind.TEXT_TO_3D, user=UserFactory(), prompt="a brass key"
    )

    assert job_ids(gpu_queue.wait()) == [str(job.pk)]
    assert Job.objects.get(pk=job.pk).queued_at is not None


def test_a_job_whose_message_was_never_sent_gets_one_from_the_sweep(gpu_queue):
    """The process died between the commit and the publish: the row waits, unconfirmed."""
    orphan_row = JobFactory(state=JobState.PENDING)
    just_written = JobFactory(state=JobState.PENDING)  # its own publish may still be on its way
    past_the_sweep_delay(orphan_row)

    sent = workers.republish_unconfirmed_jobs()

    assert [job.pk for job in sent] == [orphan_row.pk]
    assert job_ids(gpu_queue.wait()) == [str(orphan_row.pk)]
    assert Job.objects.get(pk=orphan_row.pk).queued_at is not None
    assert Job.objects.get(pk=just_written.pk).queued_at is None
    past_the_sweep_delay(orphan_row)
    assert workers.republish_unconfirmed_jobs() == []  # confirmed now: sent once


def test_a_requeue_while_the_broker_is_down_is_sent_once_it_is_back(broker, gpu_queue):
    job = JobFactory(failed=True)
    broker.down()

    assert staff.requeue_by_staff(job) == staff.StaffOutcome.NOT_QUEUED
    past_the_sweep_delay(job)
    with pytest.raises(shared.QueueUnavailable):
        workers.republish_unconfirmed_jobs()
    waiting = Job.objects.get(pk=job.pk)
    assert (waiting.state, waiting.queued_at) == (JobState.PENDING, None)

    broker.up()
    workers.republish_unconfirmed_jobs()

    assert job_ids(gpu_queue.wait()) == [str(job.pk)]
    assert Job.objects.get(pk=job.pk).queued_at is not None


def test_orphans_swept_while_the_broker_is_down_wait_for_it_and_are_sent_once_it_is_back(
    broker, gpu_queue
):
    silent_since = timezone.now() - timedelta(minutes=5)
    first = JobFactory(running=True, started_at=ago(minutes=6), heartbeat_at=silent_since)
    second = JobFactory(running=True, started_at=ago(minutes=6), heartbeat_at=silent_since)
    broker.down()

    with pytest.raises(shared.QueueUnavailable):
        workers.recover_orphaned_jobs()

    for job in (first, second):
        job.refresh_from_db()  # untouched: still running at its stage, for a worker to take over
        assert (job.state, job.queued_at, job.attempts) == (JobState.PROCESSING, None, 1)

    broker.up()
    recovered = workers.recover_orphaned_jobs()

    assert {job.pk for job in recovered} == {first.pk, second.pk}
    assert sorted(job_ids(gpu_queue.wait(2))) == sorted([str(first.pk), str(second.pk)])
    assert workers.recover_orphaned_jobs() == []  # sent once per silent holder
    assert claim(Job.objects.get(pk=first.pk)).attempt == 2  # taken over where it was


def test_a_staff_requeue_is_confirmed(gpu_queue):
    job = JobFactory(failed=True)

    assert staff.requeue_by_staff(job) == staff.StaffOutcome.REQUEUED

    assert job_ids(gpu_queue.wait()) == [str(job.pk)]
    assert Job.objects.get(pk=job.pk).queued_at is not None


def test_an_orphan_whose_cancel_was_asked_for_ends_cancelled_instead_of_running_again(gpu_queue):
    job = JobFactory(
        running=True,
        started_at=ago(minutes=6),
        heartbeat_at=timezone.now() - timedelta(minutes=5),
        cancel_requested=True,
    )

    assert workers.recover_orphaned_jobs() == []

    job.refresh_from_db()
    assert (job.state, job.error_code) == (JobState.CANCELLED, "CANCELLED")
    assert gpu_queue.wait(timeout=0.3) == []


# --- Taking over a dead process's job ---------------------------------------------------------


def finished_process() -> str:
    """The identity of a process of this machine that has exited."""
    script = "from generation import processes; print(processes.current())"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def held_by(process: str) -> Job:
    """A job running right now (heartbeat fresh) in ``process``."""
    return JobFactory(running=True, started_at=ago(seconds=30), worker_process=process)


def claim(job: Job) -> workers.Lease | None:
    return workers.claim_stage(
        job.pk,
        job.stage,
        worker="gpu@here",
        process=processes.current(),
        holder_gone=processes.is_gone,
    )


def test_a_job_whose_process_is_gone_is_taken_over_at_once():
    job = held_by(finished_process())

    assert claim(job).attempt == 2

    job.refresh_from_db()
    assert (job.state, job.attempts, job.worker_process) == (
        JobState.PROCESSING,
        2,
        processes.current(),
    )
    assert (
        workers.report_progress(
            workers.Lease(job.pk, 1, job.stage, job.kind), 50, "the dead attempt"
        )
        is False
    )


def test_a_job_whose_process_is_alive_is_not_taken_over():
    job = held_by(processes.current())

    assert claim(job) is None
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_a_job_held_on_another_machine_waits_for_its_heartbeat_to_go_stale():
    host_and_boot, pid, started = finished_process().rsplit("/", 2)
    job = held_by(f"another-host/{host_and_boot.split('/', 1)[1]}/{pid}/{started}")

    assert claim(job) is None

    backdate(job, heartbeat_at=timedelta(minutes=5))
    assert claim(job).attempt == 2


def test_a_cancelled_job_is_not_taken_over():
    job = held_by(finished_process())
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)

    assert claim(job) is None
