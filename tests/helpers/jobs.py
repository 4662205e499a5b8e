"""Jobs driven as their workers would drive them, through jobs.services: claimed, handed on from
stage to stage, ended; in the test's thread or from a background thread."""

import threading

from django.db import connection

from generation import processes
from jobs import plan, storage
from jobs.models import ACTIVE_STATES, Job, Stage
from jobs.services import workers

WORKER = "gpu@test"


# What each stage before the last hands on: the job field and the file name it stores.
HANDED_ON = {
    Stage.TEXT_TO_IMAGE: ("preview_image", "preview.png"),
    Stage.PREPARE: ("processed_image", "processed.png"),
    Stage.IMAGE_TO_3D: ("raw_mesh", "raw.ply"),
}


def start(job_id) -> workers.Lease:
    """Run the job's stages as their workers would, up to its first model call: the job runs."""
    lease = claim(job_id)
    while not plan.starts_job(lease.stage):
        lease = hand_on(job_id, lease)
    return lease


def claim(job_id) -> workers.Lease:
    """Claim the job's current stage, as a live worker of its queue would."""
    stage = Job.objects.values_list("stage", flat=True).get(pk=job_id)
    lease = workers.claim_stage(job_id, stage, worker=WORKER, process=processes.current())
    assert lease is not None, "the job could not be claimed"
    return lease


def end_stage(lease: workers.Lease) -> bool:
    """End the lease's stage with its file and hand the job to the next stage; False when the
    lease no longer holds the job."""
    field, filename = HANDED_ON[lease.stage]
    kind = Job.objects.values_list("kind", flat=True).get(pk=lease.job_id)
    stored = {field: f"{storage.job_folder(lease.job_id)}/{filename}"}
    return workers.hand_over(lease, plan.after(kind, lease.stage), **stored)


def hand_on(job_id, lease: workers.Lease) -> workers.Lease:
    """End the lease's stage with its file, and claim the next one."""
    assert end_stage(lease)
    return claim(job_id)


def finish_preview(job_id, lease: workers.Lease) -> None:
    assert workers.complete_job(lease, preview_image=f"{storage.job_folder(job_id)}/preview.png")


def finish_3d(job_id, lease: workers.Lease) -> None:
    while lease.stage != Stage.FINISH:
        lease = hand_on(job_id, lease)
    assert workers.complete_job(lease, result_glb=f"{storage.job_folder(job_id)}/model.glb")


def run_inline(job_id, worker=WORKER) -> Job:
    """Run every stage of the job in this process, as each stage's worker would, to its end."""
    from generation import runner  # the model stack: imported by the tests that run stages only

    while (job := Job.objects.get(pk=job_id)).state in ACTIVE_STATES:
        runner.run_stage(str(job_id), job.stage, worker=worker)
    return job


def fail(
    job_id,
    lease: workers.Lease,
    code="MODEL_ERROR",
    message="The mesh could not be generated",
) -> None:
    assert workers.end_job_unsuccessfully(lease, code=code, message=message) == "failed"


class Background:
    """Run ``target`` in a thread (with its own database connection, closed at the end)."""

    def __init__(self, target, *args):
        self.error = None
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(target, *args), daemon=True)
        self.thread.start()

    def _run(self, target, *args):
        try:
            self.result = target(*args)
        except BaseException as exc:  # re-raised in the test's thread by join()
            self.error = exc
        finally:
            connection.close()

    def join(self, timeout=15):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the background thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result
