"""A job's plan: for each kind of job, its stages in order, the queue that runs each stage, each
stage's steps in order and the share of the job's progress each step covers, with the message a
client sees meanwhile. Every kind, stage and step is named here and nowhere else.

A 3D job is cut into stages so that each runs where it belongs: fetching and cutting out the input,
and finishing, exporting and storing the mesh, on CPU workers; only the model calls on the GPU.
Each stage is claimed by one worker under the job's attempt and, when done, hands the job to the
next stage's queue (``jobs.services.workers.hand_over``), through storage for the files in between.
A job waits (``pending``, with its place in the queue) until its first model call begins: the
``prepare`` stage of an image-to-3D job runs while the job still waits for a GPU.

Django-free: the models take their choices from here, the services send each stage to its queue,
the runner (``generation.runner``) turns the step names that the pipelines report
(``generation.pipelines.job_steps``) into progress, and ``benchmarks/gpu_pipeline.py`` times the
same steps. A new stage needs its place here and its function in ``generation.runner.STAGES``.
"""

from dataclasses import dataclass
from enum import StrEnum

from hydrilla.queues import CeleryQueue


class JobKind(StrEnum):
    TEXT_TO_3D = "text-to-3d"
    IMAGE_TO_3D = "image-to-3d"
    PREVIEW = "text-to-image"
    # A finished 3D job's stored full-resolution mesh, finished again with other options (CPU only).
    REMESH = "remesh"


class Stage(StrEnum):
    """The parts of a job, each run by a worker of its own queue (``QUEUES``)."""

    PREPARE = "prepare"  # fetch and check the input image, cut the object out
    TEXT_TO_IMAGE = "text_to_image"  # the prompt's image: a model call
    IMAGE_TO_3D = "image_to_3d"  # the raw mesh of the cut-out: a model call
    FINISH = "finish"  # clean, reduce, texture and export the mesh; store the files
    PREVIEW = "preview"  # a text-to-image preview, whole
    REMESH = "remesh"  # a finished model's stored mesh, finished again


class Step(StrEnum):
    """The steps of a stage, in the order a job goes through them; ``Job.step_seconds`` times
    each."""

    INPUT = "input"  # the stage's input read from storage, or the input image fetched
    TEXT_TO_IMAGE = "text_to_image"  # a model call
    CUT_OUT = "cut_out"
    # The storage work a GPU stage does to take its input from the stage before it and pass its
    # output on.
    HANDOFF = "handoff"
    IMAGE_TO_3D = "image_to_3d"  # a model call
    POST_PROCESSING = "post_processing"
    EXPORT = "export"
    UPLOAD = "upload"


# The steps that are model calls: the GPU's share of a job.
MODEL_STEPS = (Step.TEXT_TO_IMAGE, Step.IMAGE_TO_3D)

QUEUES = {
    Stage.PREPARE: CeleryQueue.CPU,
    Stage.TEXT_TO_IMAGE: CeleryQueue.GPU,
    Stage.IMAGE_TO_3D: CeleryQueue.GPU,
    Stage.FINISH: CeleryQueue.CPU,
    Stage.PREVIEW: CeleryQueue.PREVIEW,
    Stage.REMESH: CeleryQueue.CPU,
}
# Stages that run while the job is still waiting for its first model call.
BEFORE_START = (Stage.PREPARE,)


@dataclass(frozen=True)
class StepShare:
    """A step of a stage, covering ``start`` to ``end`` percent of the job's progress while the
    job shows ``message``."""

    step: Step
    start: int
    end: int
    message: str


_GENERATING_PREVIEW = "Generating preview image…"
_REMOVING_BACKGROUND = "Removing background…"
_GENERATING_MESH = "Generating 3D mesh…"
_OPTIMIZING = "Optimizing mesh…"
_UPLOADING = "Uploading…"

_EXPORT_AND_UPLOAD = (
    StepShare(Step.EXPORT, 93, 95, _OPTIMIZING),
    StepShare(Step.UPLOAD, 95, 99, _UPLOADING),
)
_FINISH = (
    StepShare(Step.INPUT, 85, 85, _OPTIMIZING),
    StepShare(Step.POST_PROCESSING, 85, 93, _OPTIMIZING),
    *_EXPORT_AND_UPLOAD,
)

# Each kind's stages in order, each with its steps in order. A step may come back within a stage
# (the handoff before and after a model call): its times add up.
PLANS: dict[JobKind, dict[Stage, tuple[StepShare, ...]]] = {
    JobKind.TEXT_TO_3D: {
        Stage.TEXT_TO_IMAGE: (
            StepShare(Step.TEXT_TO_IMAGE, 0, 30, _GENERATING_PREVIEW),
            StepShare(Step.HANDOFF, 30, 30, _GENERATING_PREVIEW),
        ),
        Stage.PREPARE: (
            StepShare(Step.INPUT, 30, 30, "Reading the preview image…"),
            StepShare(Step.CUT_OUT, 30, 35, _REMOVING_BACKGROUND),
        ),
        Stage.IMAGE_TO_3D: (
            StepShare(Step.HANDOFF, 35, 35, _GENERATING_MESH),
            StepShare(Step.IMAGE_TO_3D, 35, 85, _GENERATING_MESH),
            StepShare(Step.HANDOFF, 85, 85, _OPTIMIZING),
        ),
        Stage.FINISH: _FINISH,
    },
    JobKind.IMAGE_TO_3D: {
        Stage.PREPARE: (
            StepShare(Step.INPUT, 0, 5, "Downloading image…"),
            StepShare(Step.CUT_OUT, 5, 10, _REMOVING_BACKGROUND),
        ),
        Stage.IMAGE_TO_3D: (
            StepShare(Step.HANDOFF, 10, 10, _GENERATING_MESH),
            StepShare(Step.IMAGE_TO_3D, 10, 85, _GENERATING_MESH),
            StepShare(Step.HANDOFF, 85, 85, _OPTIMIZING),
        ),
        Stage.FINISH: _FINISH,
    },
    JobKind.PREVIEW: {
        Stage.PREVIEW: (
            StepShare(Step.TEXT_TO_IMAGE, 0, 90, _GENERATING_PREVIEW),
            StepShare(Step.UPLOAD, 90, 99, _UPLOADING),
        ),
    },
    JobKind.REMESH: {
        Stage.REMESH: (
            StepShare(Step.INPUT, 0, 10, "Reading the full-resolution mesh…"),
            StepShare(Step.POST_PROCESSING, 10, 93, "Remeshing…"),
            *_EXPORT_AND_UPLOAD,
        ),
    },
}


def stages(kind: str) -> tuple[Stage, ...]:
    """The stages of a job of ``kind``, in order."""
    return tuple(PLANS[kind])


def steps(kind: str, stage: str) -> tuple[StepShare, ...]:
    """The steps of ``stage`` in a job of ``kind``, in order, each with its share of progress."""
    return PLANS[kind][stage]


def first(kind: str, *, has_preview: bool = False) -> Stage:
    """Where a job of ``kind`` begins; a text-to-3D job with a preview already made skips making
    one."""
    sequence = stages(kind)
    if kind == JobKind.TEXT_TO_3D and has_preview:
        return sequence[1]
    return sequence[0]


def is_first(kind: str, stage: str) -> bool:
    """Whether a job of ``kind`` may begin at ``stage``: its first stage, or where a text-to-3D job
    with its preview already made begins."""
    return stage in (first(kind), first(kind, has_preview=True))


def after(kind: str, stage: str) -> Stage | None:
    """The stage that follows ``stage`` in a job of ``kind``; None after the last."""
    sequence = stages(kind)
    position = sequence.index(stage)
    return sequence[position + 1] if position + 1 < len(sequence) else None


def starts_job(stage: str) -> bool:
    """Whether claiming ``stage`` moves a waiting job to running (every stage but preparing)."""
    return stage not in BEFORE_START


def queue_of(stage: str, *, test_mode: bool = False) -> CeleryQueue:
    """The queue that runs ``stage``. Every stage of a test-mode job (a test API key's) runs on a
    CPU worker, with the weight-free models (``generation.registry``): never on a GPU."""
    return CeleryQueue.CPU if test_mode else QUEUES[stage]


def stage_task(stage: str) -> str:
    """The name of the task that runs ``stage`` of a job: a contract between the web service and
    the workers, which send and implement it by name with one argument, the job id as a string."""
    return f"generation.{stage}"
