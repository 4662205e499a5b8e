"""A job's way through the workers: its stages in order, and the queue that runs each.

A 3D job is cut into stages so that each runs where it belongs: fetching and cutting out the input,
and finishing, exporting and storing the mesh, on CPU workers; only the model calls on the GPU.
Each stage is claimed by one worker under the job's attempt and, when done, hands the job to the
next stage's queue (``jobs.services.workers.hand_over``), through storage for the files in between.

A job waits (``pending``, with its place in the queue) until its first model call begins: the
``prepare`` stage of an image-to-3D job runs while the job still waits for a GPU.
"""

from hydrilla.queues import CeleryQueue
from jobs.models import JobKind, JobState, Stage

SEQUENCES = {
    JobKind.TEXT_TO_3D: (Stage.TEXT_TO_IMAGE, Stage.PREPARE, Stage.IMAGE_TO_3D, Stage.FINISH),
    JobKind.IMAGE_TO_3D: (Stage.PREPARE, Stage.IMAGE_TO_3D, Stage.FINISH),
    JobKind.PREVIEW: (Stage.PREVIEW,),
    JobKind.REMESH: (Stage.REMESH,),
}
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


def first(kind: str, *, has_preview: bool = False) -> Stage:
    """Where a job of ``kind`` begins; a text-to-3D job with a preview already made skips making
    one."""
    sequence = SEQUENCES[kind]
    if kind == JobKind.TEXT_TO_3D and has_preview:
        return sequence[1]
    return sequence[0]


def after(kind: str, stage: str) -> Stage | None:
    """The stage that follows ``stage`` in a job of ``kind``; None after the last."""
    sequence = SEQUENCES[kind]
    position = sequence.index(stage)
    return sequence[position + 1] if position + 1 < len(sequence) else None


def begins_attempt(kind: str, stage: str, state: str) -> bool:
    """Whether claiming ``stage`` of a job in ``state`` begins an attempt at it: a waiting job at
    the first stage of its sequence (a text-to-3D job waits at ``prepare`` only when it starts
    there, with a preview already made)."""
    return state == JobState.PENDING and stage in (first(kind), first(kind, has_preview=True))


def starts_job(stage: str) -> bool:
    """Whether claiming ``stage`` moves a waiting job to running (every stage but preparing)."""
    return stage not in BEFORE_START
