"""A CUDA out-of-memory in a model call frees the cache and retries that call once; a second one
fails the job GPU_OUT_OF_MEMORY. The OOM is injected: a backend that raises torch's own error."""

import time

import pytest
import torch
import trimesh

from generation import registry, runner
from jobs.models import JobState
from jobs.services import workers
from tests.helpers.jobs import run_inline

pytestmark = pytest.mark.django_db


# Progress is written at most every half second: a step reported after this pause is written.
PAST_THE_WRITE_INTERVAL = 0.6


class RunsOutOfMemory:
    """An image-to-3D backend whose first ``failures`` runs end in a CUDA out-of-memory, each
    after half its steps. The first run's progress at step 4 and a retry's at step 2 are written."""

    def __init__(self, failures: int):
        self.failures, self.runs = failures, 0

    def __call__(self, image_rgba, seed, on_denoising_step=None):
        self.runs += 1
        for step in range(1, 5):
            if step == (4 if self.runs == 1 else 2):
                time.sleep(PAST_THE_WRITE_INTERVAL)
            on_denoising_step(step, 8)
        if self.runs <= self.failures:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        for step in range(5, 9):
            on_denoising_step(step, 8)
        return trimesh.creation.icosphere(subdivisions=2)


@pytest.fixture
def progress_written(monkeypatch):
    written, report = [], workers.report_progress

    def recording(lease, progress, message):
        written.append(progress)
        return report(lease, progress, message)

    monkeypatch.setattr(workers, "report_progress", recording)
    return written


@pytest.fixture
def released(monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "release_cached_memory", calls.append)
    return calls


def run_with(monkeypatch, backend, job):
    monkeypatch.setattr(registry, "image_to_3d_pipeline", lambda: backend)
    return run_inline(job.pk)


def test_one_out_of_memory_frees_the_cache_and_the_stage_succeeds_on_its_second_try(
    monkeypatch, photo_job, progress_written, released
):
    backend = RunsOutOfMemory(failures=1)

    job = run_with(monkeypatch, backend, photo_job)

    assert (job.state, job.progress, job.attempts) == (JobState.COMPLETED, 100, 1), (
        job.error_message
    )
    assert backend.runs == 2
    assert released == [registry.device()]
    assert progress_written == sorted(progress_written)  # the retried stage never went back
    # Both tries of the model call count towards its step's time.
    assert set(job.step_seconds) == {
        "input",
        "cut_out",
        "handoff",
        "image_to_3d",
        "post_processing",
        "export",
        "upload",
    }
    assert job.step_seconds["image_to_3d"] >= 2 * PAST_THE_WRITE_INTERVAL


def test_a_second_out_of_memory_fails_the_job_gpu_out_of_memory(monkeypatch, photo_job, released):
    backend = RunsOutOfMemory(failures=2)

    job = run_with(monkeypatch, backend, photo_job)

    assert (job.state, job.error_code, job.result_glb) == (JobState.FAILED, "GPU_OUT_OF_MEMORY", "")
    assert "out of memory" in job.error_message
    assert backend.runs == 2
    assert len(released) == 1
    assert set(job.step_seconds) == {
        "input",
        "cut_out",
        "handoff",
        "image_to_3d",
    }  # recorded on failure too
