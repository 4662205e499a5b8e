"""The progress a client sees through each kind of job: the point and message written as each step
begins, stage after stage, as the job's plan states them. The models are stand-ins, and the points a
model call writes between its step's ends are left out: they depend on timing."""

import io

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from generation import progress, registry, runner
from generation.pipelines import prepare_mesh, save_source_mesh
from jobs import storage
from jobs.models import JobKind, JobState, Stage
from jobs.services import workers
from tests.factories import JobFactory
from tests.helpers.jobs import run_inline

pytestmark = pytest.mark.django_db

PREVIEW = [(0, "Generating preview image…"), (30, "Generating preview image…")]
CUT_OUT_PREVIEW = [(30, "Reading the preview image…"), (30, "Removing background…")]
MESH_FROM_PREVIEW = [(35, "Generating 3D mesh…"), (35, "Generating 3D mesh…")]
FINISH = [
    (85, "Optimizing mesh…"),  # the raw mesh stored, on the GPU worker
    (85, "Optimizing mesh…"),  # and read, on the CPU worker
    (85, "Optimizing mesh…"),
    (93, "Optimizing mesh…"),
    (95, "Uploading…"),
]
PROGRESS = {
    JobKind.TEXT_TO_3D: PREVIEW + CUT_OUT_PREVIEW + MESH_FROM_PREVIEW + FINISH,
    JobKind.IMAGE_TO_3D: [
        (0, "Downloading image…"),
        (5, "Removing background…"),
        (10, "Generating 3D mesh…"),
        (10, "Generating 3D mesh…"),
        *FINISH,
    ],
    JobKind.PREVIEW: [(0, "Generating preview image…"), (90, "Uploading…")],
    JobKind.REMESH: [
        (0, "Reading the full-resolution mesh…"),
        (10, "Remeshing…"),
        (93, "Optimizing mesh…"),
        (95, "Uploading…"),
    ],
}


def object_photo(*_, **__) -> Image.Image:
    image = Image.new("RGB", (128, 128), (240, 240, 236))
    ImageDraw.Draw(image).ellipse((30, 25, 100, 105), fill=(30, 90, 200))
    return image


def sphere(*_, **__) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=3)
    colours = np.tile(np.array([200, 40, 40, 255], dtype=np.uint8), (len(mesh.vertices), 1))
    return trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_colors=colours, process=False)


@pytest.fixture
def written(monkeypatch):
    """Each (progress, message) the job's stages write as their steps begin."""
    points, report = [], workers.report_progress

    def recording(lease, percent, message):
        points.append((percent, message))
        return report(lease, percent, message)

    monkeypatch.setattr(workers, "report_progress", recording)
    monkeypatch.setattr(progress.ProgressReporter, "on_denoising_step", lambda *_: None)
    monkeypatch.setattr(registry, "text_to_image_pipeline", lambda: object_photo)
    monkeypatch.setattr(registry, "image_to_3d_pipeline", lambda: sphere)
    return points


def job_of(kind):
    if kind == JobKind.IMAGE_TO_3D:
        data = save_png(object_photo())
        return JobFactory(
            kind=kind, prompt=None, input_image=storage.save("uploads", "p.png", data)
        )
    if kind == JobKind.REMESH:
        source = save_source_mesh(prepare_mesh(sphere()))
        return JobFactory(kind=kind, source_mesh=storage.save("jobs/source", "source.ply", source))
    return JobFactory(kind=kind)


def save_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", PROGRESS)
def test_each_step_of_a_job_begins_at_its_point_with_its_message(written, kind):
    job = run_inline(job_of(kind).pk)

    assert (job.state, job.progress, job.message) == (JobState.COMPLETED, 100, "Completed")
    assert written == PROGRESS[kind]


def test_a_text_to_3d_job_with_its_preview_made_begins_where_the_preview_ends(written):
    preview = storage.save("jobs/preview", "preview.png", save_png(object_photo()))

    made = JobFactory(kind=JobKind.TEXT_TO_3D, preview_image=preview, stage=Stage.PREPARE)

    job = run_inline(made.pk)

    assert job.state == JobState.COMPLETED
    assert written == CUT_OUT_PREVIEW + MESH_FROM_PREVIEW + FINISH


def test_every_stage_of_the_plan_has_its_function_on_the_workers():
    assert set(runner.STAGES) == set(Stage)
