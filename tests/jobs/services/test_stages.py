"""A 3D job's stages, each on its own queue, handed on through the services: the guarantees of a
single run hold across the handoffs (ends DONE once, attempts counted, cancel in every stage,
progress never going back, nothing stranded when the broker refuses a handoff).

Against the real RabbitMQ (``gpu_queue``, ``cpu_queue``) and PostgreSQL.
"""

import os

import pytest
from celery import Celery

import celery_app
from generation import processes
from hydrilla.queues import RUNNING, WAITING, CeleryQueue, message_priority
from hydrilla.settings import broker_transport_options
from jobs.models import Job, JobKind, JobState, Stage
from jobs.services import clients, shared, staff, workers
from tests.factories import UserFactory
from tests.helpers.broker import QueueReader, job_ids
from tests.helpers.clock import past_the_sweep_delay
from tests.helpers.jobs import end_stage

pytestmark = pytest.mark.django_db(transaction=True)


def photo_job() -> Job:
    return clients.create_job(
        api=clients.ApiHalf.JOB,
        kind=JobKind.IMAGE_TO_3D,
        user=UserFactory(),
        input_image="uploads/photo.png",
    )


def claim(job: Job, stage: str) -> workers.Lease | None:
    return workers.claim_stage(job.pk, stage, worker="test@here", process=processes.current())


def priority(message) -> int:
    return message.properties["priority"]


def test_a_photo_job_goes_cpu_gpu_cpu_waiting_until_its_model_call_and_ends_done_once(
    cpu_queue, gpu_queue
):
    job = photo_job()
    [message] = cpu_queue.wait()
    assert (message.headers["task"], priority(message)) == ("generation.prepare", 0)

    prepare = claim(job, Stage.PREPARE)
    assert workers.report_progress(prepare, 5, "Downloading image…")
    assert (
        Job.objects.get(pk=job.pk).state == JobState.PENDING
    )  # still waiting for a GPU, in its place
    assert end_stage(prepare)
    [message] = gpu_queue.wait()
    assert (message.headers["task"], priority(message)) == ("generation.image_to_3d", 0)

    model = claim(job, Stage.IMAGE_TO_3D)
    assert (Job.objects.get(pk=job.pk).state, model.attempt) == (JobState.PROCESSING, 1)
    assert workers.report_progress(model, 50, "Generating 3D mesh…")
    assert end_stage(model)
    [message] = cpu_queue.wait()
    # A running job's next stage goes before the stages of jobs still waiting.
    assert (message.headers["task"], priority(message)) == ("generation.finish", 1)

    finish = claim(job, Stage.FINISH)
    assert workers.report_progress(finish, 20, "a step reported low")  # never below where it was
    assert Job.objects.get(pk=job.pk).progress == 50
    assert workers.complete_job(finish, result_glb="jobs/x/model.glb")
    assert not workers.complete_job(finish, result_glb="jobs/x/again.glb")  # ends DONE once

    job.refresh_from_db()
    assert (job.state, job.progress, job.attempts, job.result_glb, job.raw_mesh) == (
        JobState.COMPLETED,
        100,
        1,
        "jobs/x/model.glb",
        "",
    )


def test_a_stale_message_of_an_earlier_stage_is_dropped_and_a_lost_holder_cannot_write():
    job = photo_job()
    prepare = claim(job, Stage.PREPARE)
    assert end_stage(prepare)

    assert claim(job, Stage.PREPARE) is None  # a duplicate of the stage already done
    assert not workers.report_progress(prepare, 9, "the stage before")
    assert not end_stage(prepare)
    assert claim(job, Stage.IMAGE_TO_3D) is not None


@pytest.mark.parametrize("where", ["between stages", "in a stage"])
def test_cancel_works_in_every_stage(where):
    job = photo_job()
    lease = end_stage(claim(job, Stage.PREPARE)) and claim(job, Stage.IMAGE_TO_3D)
    if where == "between stages":
        assert end_stage(lease)  # waiting for a worker of the cpu queue: nobody to tell

    assert clients.request_cancel(job) == (
        JobState.CANCELLED if where == "between stages" else JobState.PROCESSING
    )

    if where == "between stages":
        assert claim(job, Stage.FINISH) is None
    else:
        assert not workers.report_progress(lease, 60, "Generating 3D mesh…")
        assert not end_stage(lease)
        assert (
            workers.end_job_unsuccessfully(lease, code="CANCELLED", message="stopped")
            == JobState.CANCELLED
        )
    job.refresh_from_db()
    assert (job.state, job.error_code, job.heartbeat_at) == (JobState.CANCELLED, "CANCELLED", None)


def test_a_job_cancelled_while_its_input_is_prepared_ends_at_once():
    job = photo_job()
    prepare = claim(job, Stage.PREPARE)

    assert clients.request_cancel(job) == JobState.CANCELLED

    assert not end_stage(prepare)
    assert claim(job, Stage.IMAGE_TO_3D) is None


def test_a_handoff_the_broker_refuses_waits_for_the_sweep_and_is_sent_once_it_is_back(
    broker, gpu_queue
):
    job = photo_job()
    prepare = claim(job, Stage.PREPARE)
    broker.down()

    assert end_stage(prepare)  # handed on; its message refused

    waiting = Job.objects.get(pk=job.pk)
    assert (waiting.stage, waiting.queued_at, waiting.heartbeat_at) == (
        Stage.IMAGE_TO_3D,
        None,
        None,
    )
    past_the_sweep_delay(job)
    with pytest.raises(shared.QueueUnavailable):
        workers.republish_unconfirmed_jobs()
    broker.up()
    assert [sent.pk for sent in workers.republish_unconfirmed_jobs()] == [job.pk]
    assert job_ids(gpu_queue.wait()) == [str(job.pk)]
    assert Job.objects.get(pk=job.pk).queued_at is not None


def test_a_held_stage_taken_over_is_a_new_attempt_where_the_job_was():
    job = photo_job()
    lease = end_stage(claim(job, Stage.PREPARE)) and claim(job, Stage.IMAGE_TO_3D)
    assert workers.report_progress(lease, 40, "Generating 3D mesh…")

    taken = workers.claim_stage(
        job.pk, Stage.IMAGE_TO_3D, worker="other@here", process="gone", holder_gone=lambda _: True
    )

    assert taken.attempt == 2
    job.refresh_from_db()
    assert (job.state, job.stage, job.progress, job.attempts) == (
        JobState.PROCESSING,
        Stage.IMAGE_TO_3D,
        40,
        2,
    )
    assert not end_stage(lease)  # the lost holder


def test_a_requeued_job_starts_again_at_its_first_stage(cpu_queue):
    job = photo_job()
    lease = end_stage(claim(job, Stage.PREPARE)) and claim(job, Stage.IMAGE_TO_3D)
    assert end_stage(lease)
    assert (
        workers.end_job_unsuccessfully(claim(job, Stage.FINISH), code="MODEL_ERROR", message="boom")
        == JobState.FAILED
    )
    cpu_queue.messages()

    assert staff.requeue_job(Job.objects.get(pk=job.pk))

    job.refresh_from_db()
    assert (job.state, job.stage, job.stage_runs, job.raw_mesh, job.step_seconds) == (
        JobState.PENDING,
        Stage.PREPARE,
        [],
        "",
        {},
    )
    assert job_ids(cpu_queue.wait()) == [str(job.pk)]
    assert claim(job, Stage.PREPARE).attempt == 2


def test_the_broker_serves_a_running_job_s_stage_before_the_stages_of_waiting_jobs(gpu_queue):
    """The gpu queue is a priority queue: a job coming back for its model call (text-to-3D: after
    its cut-out) does not queue again behind every job that arrived after it."""
    waiting = [
        clients.create_job(
            api=clients.ApiHalf.JOB,
            kind=JobKind.TEXT_TO_3D,
            user=UserFactory(),
            prompt=f"a mug {n}",
        )
        for n in range(3)
    ]
    running = clients.create_job(
        api=clients.ApiHalf.JOB, kind=JobKind.TEXT_TO_3D, user=UserFactory(), prompt="a kettle"
    )
    gpu_queue.wait(4)
    for job in (*waiting, running):
        shared.enqueue(Job.objects.get(pk=job.pk))  # four waiting jobs' first stages, in order
    lease = claim(running, Stage.TEXT_TO_IMAGE)
    assert end_stage(lease)
    prepare = claim(running, Stage.PREPARE)  # its cut-out, on the cpu queue
    assert end_stage(prepare)  # back for its model call, behind four messages already queued

    order = job_ids(gpu_queue.wait(5))

    assert order == [str(running.pk)] + [str(job.pk) for job in (*waiting, running)]


def test_on_a_redis_broker_too_a_running_job_s_stage_is_served_first():
    """kombu's Redis transport keeps a list per priority: the same order comes out as on
    RabbitMQ."""
    redis_url = os.environ.get("REDIS_URL")  # scripts/test-services.sh starts Redis and sets it
    if not redis_url:
        pytest.skip("needs Redis (run through scripts/test-services.sh)")
    app = Celery("hydrilla-redis-broker", set_as_current=False)
    # Celery's broker_url prefers CELERY_BROKER_URL from the environment (the suite's RabbitMQ):
    # the write and read URLs are taken as configured.
    app.conf.update(
        broker_url=redis_url,
        broker_write_url=redis_url,
        broker_read_url=redis_url,
        broker_transport_options=broker_transport_options(redis_url),
        task_queues=celery_app.app.conf.task_queues,
    )
    queue = app.amqp.queues[CeleryQueue.GPU]
    try:
        with app.connection_for_write() as connection:
            queue(connection.default_channel).purge()
            for job_id, job_is in (
                ("waiting-1", WAITING),
                ("running", RUNNING),
                ("waiting-2", WAITING),
            ):
                app.send_task(
                    "generation.image_to_3d",
                    args=[job_id],
                    queue=queue.name,
                    priority=message_priority(job_is, redis_url),
                )
            reader = QueueReader(queue(connection.default_channel))
            assert job_ids(reader.wait(3)) == ["running", "waiting-1", "waiting-2"]
    finally:
        app.close()
