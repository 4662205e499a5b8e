"""One stage of a job on this worker: claim, run, hand on to the next stage or end the job.

Tasks call ``run_stage``; it owns the stage from its claim to its handoff, so that a failure of any
kind ends the job ``failed`` (or ``cancelled``) with a code and a message, never leaves it running;
only a database that stays unreachable leaves it to be claimed again.

What a stage makes goes to storage, named on the job, for the next stage to read: the cut-out
(``processed_image``) and the raw mesh (``raw_mesh``) cross from one kind of worker to the other.
"""

import io
import logging
import time

from django.conf import settings
from django.db import DatabaseError
from PIL import Image

from generation import gpu_metrics, processes, registry
from generation.database import DatabaseUnreachable, patiently
from generation.pipelines import (
    GenerationError,
    JobCancelled,
    OutOfGPUMemory,
    classify,
    job_steps,
    load_source_mesh,
    save_source_mesh,
)
from generation.pipelines.device import release_cached_memory
from generation.progress import Heartbeat, ProgressReporter
from hydrilla import log_context, metrics
from jobs import plan, remote_images, storage
from jobs.error_codes import ErrorCode
from jobs.models import GenerateType, Job, JobKind, Stage
from jobs.plan import Step
from jobs.services import workers

logger = logging.getLogger(__name__)


class StorageFailed(GenerationError):
    def __init__(self):
        super().__init__(
            ErrorCode.STORAGE_ERROR, "The result could not be stored. Please try again."
        )


def run_stage(job_id: str, stage: str, *, worker: str) -> None:
    """Claim ``stage`` of the job and run it. Through a database outage its writes wait (see
    ``generation.database``) rather than fail it; DatabaseUnreachable, when the database stays
    away, leaves it to be claimed again: before the claim, its message is its only record."""
    lease = patiently(
        lambda: workers.claim_stage(
            job_id, stage, worker=worker, process=processes.current(), holder_gone=processes.is_gone
        ),
        f"claiming job {job_id}",
    )
    if lease is None:
        logger.info(
            "Stage %s of job %s is not ours to run (gone, cancelled, done or held elsewhere)",
            stage,
            job_id,
        )
        return
    # Until the task's log context ends (generation.tasks binds the attempt's variable with it).
    log_context.attempt.set(lease.attempt)
    job = patiently(lambda: Job.objects.get(pk=job_id), f"reading job {job_id}")
    reporter = ProgressReporter(
        lease,
        steps=plan.steps(job.kind, stage),
        time_limit_seconds=settings.JOB_TIME_LIMIT_SECONDS,
        progress=job.progress,
        step_seconds=job.step_seconds,
    )
    began, wall_began = time.monotonic(), time.time()
    stored: list[
        str
    ] = []  # what this stage put in storage: nobody's if the stage's end is not written

    def record() -> dict:
        run = {
            "stage": stage,
            "worker": worker,
            "started": round(wall_began, 3),
            "seconds": round(time.monotonic() - began, 4),
        }
        return {"step_seconds": reporter.step_seconds(), "stage_runs": [*job.stage_runs, run]}

    try:
        with Heartbeat(lease, settings.HEARTBEAT_SECONDS):
            results = STAGES[stage](job, reporter, stored)
        following = plan.after(job.kind, stage)
        if following is None:
            ended = patiently(
                lambda: workers.complete_job(lease, **results, **record()),
                f"completing job {job_id}",
            )
        else:
            ended = patiently(
                lambda: workers.hand_over(lease, following, **results, **record()),
                f"handing on job {job_id}",
            )
        if not ended:
            raise JobCancelled()  # or taken over: then the write below matches nothing either
    except (DatabaseUnreachable, DatabaseError):
        raise  # not the job's failure: it stays held, silent, and is taken over as an orphan
    except Exception as exc:
        storage.delete(*stored)
        error = _failure(exc)
        state = patiently(
            lambda: workers.end_job_unsuccessfully(
                lease, code=error.code, message=error.message, **record()
            ),
            f"ending job {job_id}",
        )
        log = logger.info if isinstance(error, JobCancelled) else logger.exception
        log("Job %s ended %s in stage %s: %s", job_id, state, stage, error.message, exc_info=exc)
    else:
        logger.info("Stage %s of job %s done in %.2f s", stage, job_id, time.monotonic() - began)
    metrics.STAGE_SECONDS.labels(stage=stage).observe(time.monotonic() - began)


def _failure(exc: Exception) -> GenerationError:
    if isinstance(exc, storage.StorageUnavailable):
        return StorageFailed()
    if isinstance(exc, remote_images.RemoteImageError):
        return GenerationError(exc.code, exc.message)
    return classify(exc)


# --- The stages: each takes the job, its reporter and a list of what it stored, and returns the
# fields to write with its end. Each enters its steps by name, in the order of the job's plan
# (``jobs.plan``), which gives each its share of the job's progress.


def _prepare(job: Job, reporter: ProgressReporter, stored: list[str]) -> dict:
    """The input image, fetched or read and checked, and cut out (CPU)."""
    reporter.step(Step.INPUT)
    if job.kind == JobKind.TEXT_TO_3D:
        data = storage.read(job.preview_image)
    elif job.input_image:
        data = storage.read(job.input_image)
    else:
        data = remote_images.fetch(job.image_url, max_bytes=settings.UPLOAD_MAX_BYTES)
    foreground = job_steps.object_cut_out(_image(data), reporter)
    return {"processed_image": _store(job, "processed.png", job_steps.png(foreground), stored)}


def _text_to_image(job: Job, reporter: ProgressReporter, stored: list[str]) -> dict:
    """The prompt's image, stored for the cut-out (GPU)."""
    return _prompt_image(job, reporter, stored, storing=Step.HANDOFF)


def _preview(job: Job, reporter: ProgressReporter, stored: list[str]) -> dict:
    """A whole text-to-image preview, on the preview workers: one stage, for the least latency."""
    return _prompt_image(job, reporter, stored, storing=Step.UPLOAD)


def _prompt_image(
    job: Job, reporter: ProgressReporter, stored: list[str], *, storing: Step
) -> dict:
    """The model call, then the step ``storing`` that stores its image."""
    image = _model_call(
        "text-to-image",
        job,
        lambda pipeline: job_steps.prompt_image(pipeline, job.prompt, job.seed, reporter),
    )
    reporter.step(storing)
    return {"preview_image": _store(job, "preview.png", job_steps.png(image), stored)}


def _image_to_3d(job: Job, reporter: ProgressReporter, stored: list[str]) -> dict:
    """The raw mesh of the cut-out (GPU)."""
    reporter.step(Step.HANDOFF)
    foreground = _image(storage.read(job.processed_image))
    mesh = _model_call(
        "image-to-3d",
        job,
        lambda pipeline: job_steps.raw_mesh(pipeline, foreground, job.seed, reporter),
    )
    reporter.step(Step.HANDOFF)
    return {"raw_mesh": _store(job, "raw.ply", save_source_mesh(mesh), stored)}


def _finish(job: Job, reporter: ProgressReporter, stored: list[str]) -> dict:
    """The job's model from the raw mesh: the kept full-resolution mesh and the GLB (CPU)."""
    reporter.step(Step.INPUT)
    photo = _image(storage.read(job.processed_image))
    raw = load_source_mesh(storage.read(job.raw_mesh))
    source, glb = job_steps.finished_model(raw, photo, _finish_options(job), reporter)
    reporter.step(Step.UPLOAD)
    source_name = _store(job, "source.ply", save_source_mesh(source), stored)
    return {"source_mesh": source_name, "result_glb": _store(job, "model.glb", glb, stored)}


def _remesh(job: Job, reporter: ProgressReporter, stored: list[str]) -> dict:
    """Finish the stored full-resolution mesh again: no model runs, on a CPU worker."""
    reporter.step(Step.INPUT)
    source = load_source_mesh(storage.read(job.source_mesh))
    glb = job_steps.finished_glb(source, _finish_options(job), reporter)
    reporter.step(Step.UPLOAD)
    return {"result_glb": _store(job, "model.glb", glb, stored)}


STAGES = {
    Stage.PREPARE: _prepare,
    Stage.TEXT_TO_IMAGE: _text_to_image,
    Stage.IMAGE_TO_3D: _image_to_3d,
    Stage.FINISH: _finish,
    Stage.PREVIEW: _preview,
    Stage.REMESH: _remesh,
}


def _finish_options(job: Job) -> job_steps.Finish:
    return job_steps.Finish(
        face_count=job.face_count or settings.DEFAULT_FACE_COUNT,
        generate_type=job.generate_type or GenerateType.NORMAL,
        enable_pbr=job.enable_pbr,
        texture_size=settings.TEXTURE_SIZE,
    )


def _model_call(model: str, job: Job, run):
    """Load ``model`` ("text-to-image", "image-to-3d") if need be and ``run`` it, timed as a model
    call of its backend (the load apart: ``hydrilla_model_load_seconds``). The model is the
    configured one or, for a test-mode job (a test API key's), the weight-free one on the CPU. A
    GPU out-of-memory is often another run's leftovers or fragmentation: the cache is freed and
    the call tried once more on this worker; a second one fails the job GPU_OUT_OF_MEMORY.
    Progress does not go back meanwhile (see ProgressReporter)."""
    backend = registry.backend(model, test_mode=job.test_mode)
    load = registry.LOADERS[model]

    def call():
        # Called without the argument outside test mode: the loaders' cache keys on how it is
        # called, and the preloaded model was loaded so.
        pipeline = load(test_mode=True) if job.test_mode else load()
        with gpu_metrics.model_call(backend):
            return run(pipeline)

    try:
        return call()
    except Exception as exc:
        if not isinstance(classify(exc), OutOfGPUMemory):
            raise
        logger.warning("GPU out of memory; freeing its cache and trying once more: %s", exc)
    metrics.OUT_OF_MEMORY_RETRIES.labels(backend=backend).inc()
    # Out of the except block: the failed run's frames, and the tensors they hold, are gone.
    release_cached_memory(registry.device())
    return call()


def _store(job: Job, filename: str, data: bytes, stored: list[str]) -> str:
    name = storage.save(storage.job_folder(job.pk), filename, data)
    stored.append(name)
    return name


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
