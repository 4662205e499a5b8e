"""A job's work, step by step, without Django: what each stage of the worker's runner does between
its storage reads and writes (``generation.runner``), and what ``benchmarks/gpu_pipeline.py``
times. Each step is announced by name (``jobs.plan.Step``) to a ``StepReporter`` (the runner's
progress reporter, which knows the step's share of the job from the plan; the benchmark's clock)."""

import io
from dataclasses import dataclass
from typing import Protocol

import PIL.Image
import trimesh

from jobs.options import GenerateType
from jobs.plan import Step

from .foreground import cut_out
from .mesh import DEFAULT_TEXTURE_SIZE, export_glb, finishing_steps, post_processed, prepare_mesh


class StepReporter(Protocol):
    def step(self, name: Step) -> None:
        """Step ``name`` of the job begins."""

    def on_denoising_step(self, done: int, total: int) -> None:
        """A model reports ``done`` of its ``total`` denoising steps."""


@dataclass(frozen=True)
class Finish:
    """How a job's model is finished (the request's ``faceCount``, ``generateType``,
    ``enablePBR``)."""

    face_count: int | None = None
    generate_type: str = GenerateType.NORMAL
    enable_pbr: bool = False
    texture_size: int = DEFAULT_TEXTURE_SIZE


def prompt_image(pipeline, prompt: str, seed: int, steps: StepReporter) -> PIL.Image.Image:
    """The text-to-image model's picture of ``prompt``."""
    steps.step(Step.TEXT_TO_IMAGE)
    return pipeline(prompt, seed=seed, on_denoising_step=steps.on_denoising_step)


def object_cut_out(image: PIL.Image.Image, steps: StepReporter) -> PIL.Image.Image:
    """The object of a photo on a transparent square (``foreground.cut_out``)."""
    steps.step(Step.CUT_OUT)
    return cut_out(image)


def raw_mesh(
    backend, foreground: PIL.Image.Image, seed: int, steps: StepReporter
) -> trimesh.Trimesh:
    """The image-to-3D model's mesh of a cut-out."""
    steps.step(Step.IMAGE_TO_3D)
    return backend(foreground, seed=seed, on_denoising_step=steps.on_denoising_step)


def finished_model(
    raw: trimesh.Trimesh, photo: PIL.Image.Image, finish: Finish, steps: StepReporter
) -> tuple[trimesh.Trimesh, bytes]:
    """The full-resolution mesh every finish of this model starts from (kept for remeshing), and
    the job's GLB."""
    steps.step(Step.POST_PROCESSING)
    source = prepare_mesh(raw, photo=photo)
    return source, _exported(source, finish, steps)


def finished_glb(source: trimesh.Trimesh, finish: Finish, steps: StepReporter) -> bytes:
    """GLB bytes of a prepared mesh (a job's kept full-resolution one) finished again as ``finish``
    says."""
    steps.step(Step.POST_PROCESSING)
    return _exported(source, finish, steps)


def _exported(source: trimesh.Trimesh, finish: Finish, steps: StepReporter) -> bytes:
    finishing, max_faces = finishing_steps(
        face_count=finish.face_count,
        generate_type=finish.generate_type,
        enable_pbr=finish.enable_pbr,
        texture_size=finish.texture_size,
    )
    finished = post_processed(source, finishing)
    steps.step(Step.EXPORT)
    return export_glb(finished, max_faces)


def png(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
