"""One job's way through the pipelines: claim, stages, results, end state.

Tasks call ``run_job``; it owns the job's life from ``processing`` to its final state, so that a
failure of any kind ends the job ``failed`` (or ``cancelled``) with a code and a message, never
leaves it running; only a database that stays unreachable leaves it to the orphan sweep.
"""

import io
import logging
import time

from django.conf import settings
from django.db import DatabaseError
from PIL import Image

from generation import processes, registry
from generation.database import DatabaseUnreachable, patiently
from generation.pipelines import (
    GenerationError,
    OutOfGPUMemory,
    classify,
    cut_out,
    finish_mesh,
    load_source_mesh,
    prepare_mesh,
    save_source_mesh,
)
from generation.pipelines.device import release_cached_memory
from generation.progress import Heartbeat, ProgressReporter
from jobs import remote_images, services, storage
from jobs.models import GenerateType, Job, JobKind

logger = logging.getLogger(__name__)


class StorageFailed(GenerationError):
    def __init__(self):
        super().__init__("STORAGE_ERROR", "The result could not be stored. Please try again.")


def run_job(job_id: str, *, worker: str) -> None:
    """Claim the job and run it to its end. Through a database outage its writes wait (see
    ``generation.database``) rather than fail it; DatabaseUnreachable, when the database stays
    away, leaves it to be claimed again: before the claim, its message is its only record."""
    attempt = patiently(
        lambda: services.claim_job(job_id, worker=worker, process=processes.current(), holder_gone=processes.is_gone),
        f"claiming job {job_id}",
    )
    if attempt is None:
        logger.info("Job %s is not ours to run (gone, cancelled, done or running elsewhere)", job_id)
        return
    job = patiently(lambda: Job.objects.get(pk=job_id), f"reading job {job_id}")
    reporter = ProgressReporter(job.pk, attempt, time_limit_seconds=settings.JOB_TIME_LIMIT_SECONDS)
    started = time.monotonic()
    try:
        with Heartbeat(job.pk, attempt, settings.HEARTBEAT_SECONDS):
            if job.kind == JobKind.PREVIEW:
                _run_preview(job, attempt, reporter)
            elif job.kind == JobKind.REMESH:
                _run_remesh(job, attempt, reporter)
            else:
                _run_3d(job, attempt, reporter)
    except (DatabaseUnreachable, DatabaseError):
        raise  # not the job's failure: it stays running, silent, and is recovered as an orphan
    except Exception as exc:
        error = _failure(exc)
        state = patiently(
            lambda: services.end_job_unsuccessfully(
                job.pk, attempt, code=error.code, message=error.message, stage_seconds=reporter.stage_seconds()
            ),
            f"ending job {job.pk}",
        )
        log = logger.info if error.code == "CANCELLED" else logger.exception
        log("Job %s ended %s: %s", job.pk, state, error.message, exc_info=exc)
    else:
        logger.info("Job %s done in %.2f s", job.pk, time.monotonic() - started)


def _failure(exc: Exception) -> GenerationError:
    if isinstance(exc, storage.StorageUnavailable):
        return StorageFailed()
    if isinstance(exc, remote_images.RemoteImageError):
        return GenerationError(exc.code, exc.message)
    return classify(exc)


def _run_preview(job: Job, attempt: int, reporter: ProgressReporter) -> None:
    reporter.stage("text_to_image", 0, 90, "Generating preview image…")
    image = _model_call(lambda: registry.text_to_image_pipeline()(job.prompt, seed=job.seed, on_step=reporter.on_step))
    reporter.stage("upload", 90, 99, "Uploading…")
    name = storage.save(storage.job_folder(job.pk), "preview.png", _png(image))
    _finish(job, attempt, reporter, preview_image=name)


def _run_3d(job: Job, attempt: int, reporter: ProgressReporter) -> None:
    if job.kind == JobKind.TEXT_TO_3D:
        image = _preview_for(job, attempt, reporter)
    else:
        reporter.stage("input", 0, 5, "Downloading image…")
        image = _input_image(job)
    reporter.stage("cut_out", 30, 35, "Removing background…")
    foreground = cut_out(image)
    processed = storage.save(storage.job_folder(job.pk), "processed.png", _png(foreground))
    patiently(lambda: services.save_job_artifacts(job.pk, attempt, processed_image=processed), f"saving job {job.pk}")

    reporter.stage("image_to_3d", 35, 85, "Generating 3D mesh…")
    mesh = _model_call(lambda: registry.image_to_3d_pipeline()(foreground, seed=job.seed, on_step=reporter.on_step))
    reporter.stage("post_processing", 85, 95, "Optimizing mesh…")
    source = prepare_mesh(mesh, photo=foreground)
    glb = _finished_model(job, source)
    reporter.stage("upload", 95, 99, "Uploading…")
    source_name = storage.save(storage.job_folder(job.pk), "source.ply", save_source_mesh(source))
    name = storage.save(storage.job_folder(job.pk), "model.glb", glb)
    _finish(job, attempt, reporter, result_glb=name, source_mesh=source_name)


def _run_remesh(job: Job, attempt: int, reporter: ProgressReporter) -> None:
    """Finish the stored full-resolution mesh again: no model runs, on a CPU worker."""
    reporter.stage("input", 0, 10, "Reading the full-resolution mesh…")
    source = load_source_mesh(storage.read(job.source_mesh))
    reporter.stage("post_processing", 10, 95, "Remeshing…")
    glb = _finished_model(job, source)
    reporter.stage("upload", 95, 99, "Uploading…")
    _finish(job, attempt, reporter, result_glb=storage.save(storage.job_folder(job.pk), "model.glb", glb))


def _finished_model(job: Job, source) -> bytes:
    return finish_mesh(
        source,
        face_count=job.face_count or settings.DEFAULT_FACE_COUNT,
        generate_type=job.generate_type or GenerateType.NORMAL,
        enable_pbr=job.enable_pbr,
        texture_size=settings.TEXTURE_SIZE,
    )


def _model_call(call):
    """Load a model if need be and run it. A GPU out-of-memory is often another run's leftovers
    or fragmentation: the cache is freed and the call tried once more on this worker; a second
    one fails the job GPU_OUT_OF_MEMORY. Progress does not go back meanwhile (see ProgressReporter)."""
    try:
        return call()
    except Exception as exc:
        if not isinstance(classify(exc), OutOfGPUMemory):
            raise
        logger.warning("GPU out of memory; freeing its cache and trying once more: %s", exc)
    # Out of the except block: the failed run's frames, and the tensors they hold, are gone.
    release_cached_memory(registry.device())
    return call()


def _finish(job: Job, attempt: int, reporter: ProgressReporter, **names: str) -> None:
    fields = {**names, "stage_seconds": reporter.stage_seconds()}
    if not patiently(lambda: services.complete_job(job.pk, attempt, **fields), f"completing job {job.pk}"):
        # Cancelled or taken over while uploading: the files belong to no job.
        storage.delete(*names.values())
        raise GenerationError("CANCELLED", "The job was cancelled.")


def _preview_for(job: Job, attempt: int, reporter: ProgressReporter) -> Image.Image:
    """The job's preview: the one the client already made for this prompt, or a new one."""
    if job.preview_image:
        reporter.stage("input", 0, 30, "Using your preview image…")
        return Image.open(io.BytesIO(storage.read(job.preview_image)))
    reporter.stage("text_to_image", 0, 30, "Generating preview image…")
    image = _model_call(lambda: registry.text_to_image_pipeline()(job.prompt, seed=job.seed, on_step=reporter.on_step))
    name = storage.save(storage.job_folder(job.pk), "preview.png", _png(image))
    patiently(lambda: services.save_job_artifacts(job.pk, attempt, preview_image=name), f"saving job {job.pk}")
    return image


def _input_image(job: Job) -> Image.Image:
    if job.input_image:
        data = storage.read(job.input_image)
    else:
        data = remote_images.fetch(job.image_url, max_bytes=settings.UPLOAD_MAX_BYTES)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
