"""The job services count the facts they make (a job's end by kind, outcome and error code;
attempts, waits, takeovers, the sweep's messages), and the queue gauges and the GPU scaling signal
are read from the job table at scrape time. Against the real RabbitMQ and PostgreSQL."""

import pytest

from generation import registry
from jobs import metrics as job_metrics
from jobs.models import Job, JobKind, JobState, Stage
from jobs.services import clients, shared, workers
from tests.factories import JobFactory, UserFactory
from tests.helpers.clock import ago
from tests.helpers.jobs import claim, fail, finish_3d, start
from tests.helpers.metrics import collected, finished, sample

# --- Counted in the job services -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_job_s_end_is_counted_once_by_kind_outcome_and_error_code(gpu_queue, cpu_queue):
    done, failed, waiting = (JobFactory(kind=JobKind.IMAGE_TO_3D) for _ in range(3))
    before = {
        "completed": finished("image-to-3d", "completed"),
        "failed": finished("image-to-3d", "failed", "INVALID_IMAGE"),
        "cancelled": finished("image-to-3d", "cancelled", "CANCELLED"),
        "attempts": sample("hydrilla_job_attempts_total", kind="image-to-3d"),
        "waits": sample("hydrilla_job_wait_seconds_count", kind="image-to-3d"),
    }

    finish_3d(done.pk, start(done.pk))
    fail(failed.pk, start(failed.pk), code="INVALID_IMAGE")
    assert clients.request_cancel(waiting) == JobState.CANCELLED
    with pytest.raises(clients.JobNotCancellable):
        clients.request_cancel(waiting)  # ended already: not counted again

    assert finished("image-to-3d", "completed") - before["completed"] == 1
    assert finished("image-to-3d", "failed", "INVALID_IMAGE") - before["failed"] == 1
    assert finished("image-to-3d", "cancelled", "CANCELLED") - before["cancelled"] == 1
    assert sample("hydrilla_job_attempts_total", kind="image-to-3d") - before["attempts"] == 2
    # Each of the two began its first model call once: its wait ended there.
    assert sample("hydrilla_job_wait_seconds_count", kind="image-to-3d") - before["waits"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_submission_is_counted_by_kind_and_api_half_once_the_broker_took_it(gpu_queue, broker):
    def submitted(kind, api):
        return sample("hydrilla_jobs_submitted_total", kind=kind, api=api)

    before = submitted("text-to-3d", "generation"), submitted("text-to-3d", "job")

    clients.create_job(
        kind=JobKind.TEXT_TO_3D, api=clients.ApiHalf.GENERATION, user=UserFactory(), prompt="a key"
    )
    broker.down()
    with pytest.raises(shared.QueueUnavailable):
        clients.create_job(
            kind=JobKind.TEXT_TO_3D, api=clients.ApiHalf.JOB, user=UserFactory(), prompt="a lock"
        )

    assert submitted("text-to-3d", "generation") - before[0] == 1
    assert submitted("text-to-3d", "job") == before[1]  # withdrawn: never submitted


@pytest.mark.django_db(transaction=True)
def test_a_running_job_cancelled_counts_as_cancelled_and_a_lost_lease_counts_nothing(gpu_queue):
    job = JobFactory(kind=JobKind.PREVIEW)
    lease = start(job.pk)
    cancelled = finished("text-to-image", "cancelled", "CANCELLED")
    failed = finished("text-to-image", "failed", "MODEL_ERROR")

    assert clients.request_cancel(job) == JobState.PROCESSING  # asked to stop
    assert workers.end_job_unsuccessfully(lease, code="MODEL_ERROR", message="x") == "cancelled"
    assert workers.end_job_unsuccessfully(lease, code="MODEL_ERROR", message="x") is None

    assert finished("text-to-image", "cancelled", "CANCELLED") - cancelled == 1
    assert finished("text-to-image", "failed", "MODEL_ERROR") == failed


@pytest.mark.django_db(transaction=True)
def test_takeovers_and_the_sweep_s_republished_and_cancelled_jobs_are_counted(gpu_queue):
    silent = JobFactory(running=True, stage=Stage.IMAGE_TO_3D, heartbeat_at=ago(minutes=5))
    stopping = JobFactory(
        running=True, stage=Stage.IMAGE_TO_3D, heartbeat_at=ago(minutes=5), cancel_requested=True
    )
    before = {
        "orphaned": sample("hydrilla_sweep_republished_total", reason="orphaned"),
        "cancelled": finished("text-to-3d", "cancelled", "CANCELLED"),
        "takeovers": sample("hydrilla_stage_takeovers_total", stage="image_to_3d"),
    }

    assert [job.pk for job in workers.recover_orphaned_jobs()] == [silent.pk]
    claim(silent.pk)

    assert sample("hydrilla_sweep_republished_total", reason="orphaned") - before["orphaned"] == 1
    assert finished("text-to-3d", "cancelled", "CANCELLED") - before["cancelled"] == 1
    assert Job.objects.get(pk=stopping.pk).state == JobState.CANCELLED
    assert sample("hydrilla_stage_takeovers_total", stage="image_to_3d") - before["takeovers"] == 1


def test_a_model_load_is_counted_with_its_seconds():
    loads = sample("hydrilla_model_loads_total", model="test-model")
    seconds = sample("hydrilla_model_load_seconds_count", model="test-model")
    pipeline = object()

    assert registry._timed_load("test-model")(lambda: pipeline)() is pipeline
    assert sample("hydrilla_model_loads_total", model="test-model") - loads == 1
    assert sample("hydrilla_model_load_seconds_count", model="test-model") - seconds == 1


# --- Read from the job table at scrape time --------------------------------------------------


@pytest.mark.django_db
def test_queue_gauges_and_the_gpu_workers_needed_come_from_the_job_table(
    settings, fresh_stage_means
):
    settings.GPU_DRAIN_TARGET_SECONDS = 60
    JobFactory(
        kind=JobKind.TEXT_TO_3D,
        state=JobState.COMPLETED,
        finished_at=ago(minutes=1),
        stage_runs=[
            {"stage": "text_to_image", "seconds": 10.0},
            {"stage": "image_to_3d", "seconds": 30.0},
            {"stage": "finish", "seconds": 5.0},
        ],
    )
    for _ in range(2):  # waiting for their preview's model call: 10 + 30 GPU seconds each
        JobFactory(kind=JobKind.TEXT_TO_3D, stage=Stage.TEXT_TO_IMAGE)
    JobFactory(kind=JobKind.IMAGE_TO_3D, running=True, stage=Stage.IMAGE_TO_3D)  # 30 left
    JobFactory(kind=JobKind.IMAGE_TO_3D, running=True, stage=Stage.FINISH)  # none left
    old_preview = JobFactory(kind=JobKind.PREVIEW)
    Job.objects.filter(pk=old_preview.pk).update(updated_at=ago(minutes=3))

    values = collected(job_metrics.QueueCollector())

    def gauge(name, label, value):
        return values[(name, ((label, value),))]

    assert gauge("hydrilla_jobs_waiting", "queue", "gpu") == 2
    assert gauge("hydrilla_jobs_running", "queue", "gpu") == 1
    assert gauge("hydrilla_jobs_running", "queue", "cpu") == 1
    assert gauge("hydrilla_jobs_waiting", "queue", "preview") == 1
    assert gauge("hydrilla_stage_jobs_waiting", "stage", "text_to_image") == 2
    assert gauge("hydrilla_stage_jobs_running", "stage", "finish") == 1
    assert 170 < gauge("hydrilla_jobs_oldest_wait_seconds", "queue", "preview") < 300
    assert gauge("hydrilla_gpu_stage_mean_seconds", "stage", "image_to_3d") == 30
    assert values[("hydrilla_gpu_backlog_seconds", ())] == 2 * 40 + 30
    assert values[("hydrilla_gpu_workers_needed", ())] == 2  # ceil(110 / 60)


@pytest.mark.django_db
def test_without_finished_jobs_the_backlog_uses_the_fallback_estimate(settings, fresh_stage_means):
    settings.GPU_DRAIN_TARGET_SECONDS = 600
    JobFactory(kind=JobKind.IMAGE_TO_3D, stage=Stage.IMAGE_TO_3D)

    values = collected(job_metrics.QueueCollector())

    per_gpu_stage = settings.ESTIMATE_FALLBACK_SECONDS["3d"] / 2
    assert values[("hydrilla_gpu_backlog_seconds", ())] == per_gpu_stage
    assert values[("hydrilla_gpu_workers_needed", ())] == 1


@pytest.mark.django_db
def test_an_idle_farm_needs_no_gpu_worker(fresh_stage_means):
    values = collected(job_metrics.QueueCollector())

    assert values[("hydrilla_gpu_workers_needed", ())] == 0
    assert values[("hydrilla_jobs_waiting", (("queue", "gpu"),))] == 0
