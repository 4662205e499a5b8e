"""A 3D job's work, step by step, without Django: what each stage of the worker's runner does
between its storage reads and writes (``generation.runner``), and what
``benchmarks/gpu_pipeline.py`` times. Every step is announced to a ``StepReporter`` (the runner's
progress reporter, the benchmark's clock) with the share of the job it covers."""

import io
from dataclasses import dataclass
from typing import Protocol

import PIL.Image
import trimesh

from .foreground import cut_out
from .mesh import DEFAULT_TEXTURE_SIZE, export_glb, finishing_steps, post_processed, prepare_mesh


class StepReporter(Protocol):
    def step(self, name: str, start: int, end: int, message: str) -> None:
        """Step ``name`` begins, covering ``start``–``end`` percent of the job."""

    def on_step(self, done: int, total: int) -> None:
        """A model reports ``done`` of its ``total`` steps."""


@dataclass(frozen=True)
class Finish:
    """How a job's model is finished (the request's ``faceCount``, ``generateType``,
    ``enablePBR``)."""

    face_count: int | None = None
    generate_type: str = "Normal"
    enable_pbr: bool = False
    texture_size: int = DEFAULT_TEXTURE_SIZE


def prompt_image(
    pipeline, prompt: str, seed: int, steps: StepReporter, *, until: int
) -> PIL.Image.Image:
    """The text-to-image model's picture of ``prompt``, as progress up to ``until`` percent."""
    steps.step("text_to_image", 0, until, "Generating preview image…")
    return pipeline(prompt, seed=seed, on_step=steps.on_step)


def object_cut_out(image: PIL.Image.Image, steps: StepReporter, *, at: int) -> PIL.Image.Image:
    """The object of a photo on a transparent square (``foreground.cut_out``)."""
    steps.step("cut_out", at, at + 5, "Removing background…")
    return cut_out(image)


def raw_mesh(
    backend, foreground: PIL.Image.Image, seed: int, steps: StepReporter, *, span
) -> trimesh.Trimesh:
    """The image-to-3D model's mesh of a cut-out, as progress over ``span`` (start, end) percent."""
    steps.step("image_to_3d", *span, "Generating 3D mesh…")
    return backend(foreground, seed=seed, on_step=steps.on_step)


def finished_model(
    raw: trimesh.Trimesh, photo: PIL.Image.Image, finish: Finish, steps: StepReporter
) -> tuple[trimesh.Trimesh, bytes]:
    """The full-resolution mesh every finish of this model starts from (kept for remeshing), and
    the job's GLB."""
    steps.step("post_processing", 85, 93, "Optimizing mesh…")
    source = prepare_mesh(raw, photo=photo)
    return source, _exported(source, finish, steps)


def finished_glb(
    source: trimesh.Trimesh, finish: Finish, steps: StepReporter, *, start: int
) -> bytes:
    """GLB bytes of a prepared mesh (a job's kept full-resolution one) finished again as ``finish``
    says."""
    steps.step("post_processing", start, 93, "Remeshing…")
    return _exported(source, finish, steps)


def _exported(source: trimesh.Trimesh, finish: Finish, steps: StepReporter) -> bytes:
    finishing, max_faces = finishing_steps(
        face_count=finish.face_count,
        generate_type=finish.generate_type,
        enable_pbr=finish.enable_pbr,
        texture_size=finish.texture_size,
    )
    finished = post_processed(source, finishing)
    steps.step("export", 93, 95, "Optimizing mesh…")
    return export_glb(finished, max_faces)


def png(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
