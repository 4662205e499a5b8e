"""The weight-free "silhouette" backend on photos the tests draw: no weights, no GPU, no
database."""

import io

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
import torch
import trimesh

from generation import registry
from generation.pipelines import (
    BACKENDS,
    BadInputImage,
    JobCancelled,
    cut_out,
    finish_mesh,
    load_backend,
)
from generation.pipelines.image_to_3d.silhouette import SilhouetteBackend

CPU = torch.device("cpu")
SIDE = 256  # cut_out's square
RED, BLUE = (200, 30, 30), (30, 60, 200)
SPHERE_VOLUME_TOLERANCE = 0.04  # measured 1-3% at grid sizes 64 to 128


@pytest.fixture(scope="module")
def backend():
    return load_backend("silhouette", None, CPU, torch.float32)


@pytest.fixture(scope="module")
def coarse():
    """Faster, for the tests that do not measure the shape."""
    return load_backend("silhouette", None, CPU, torch.float32, grid_size=48)


def drawn_disc(top_colour=RED, bottom_colour=RED):
    photo = PIL.Image.new("RGB", (300, 300), "white")
    draw = PIL.ImageDraw.Draw(photo)
    draw.pieslice((40, 60, 240, 260), 180, 360, fill=top_colour)
    draw.pieslice((40, 60, 240, 260), 0, 180, fill=bottom_colour)
    return cut_out(photo)


def drawn_mug():
    """A mug with a ring handle on the right, on a transparent background (so the handle's hole is
    kept)."""
    photo = PIL.Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    draw = PIL.ImageDraw.Draw(photo)
    draw.ellipse((230, 140, 330, 260), outline=RED + (255,), width=20)
    draw.rectangle((80, 100, 260, 300), fill=RED + (255,))
    return cut_out(photo)


def box_of(alpha):
    """The object's box in the mesh's frame: (x0, y0, x1, y1), in image sides, y up."""
    rows, columns = np.nonzero(np.asarray(alpha) > 127)
    return (
        np.array([columns.min(), SIDE - rows.max() - 1, columns.max() + 1, SIDE - rows.min()])
        / SIDE
        - 0.5
    )


def assert_closed_solid(mesh):
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # faces turned outward


def hit_by_ray_along_z(mesh, x, y):
    """Whether a ray parallel to z through (x, y) crosses any face."""
    a, b, c = (mesh.vertices[mesh.faces[:, k], :2] - (x, y) for k in range(3))
    sides = np.array([p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0] for p, q in ((a, b), (b, c), (c, a))])
    return bool(((sides >= 0).all(axis=0) | (sides <= 0).all(axis=0)).any())


def linear(colour):
    """An sRGB colour's linear bytes."""
    srgb = np.array(colour) / 255
    return 255 * np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def test_a_disc_becomes_a_sphere(backend):
    cutout = drawn_disc()
    mesh = backend(cutout, seed=0)
    assert_closed_solid(mesh)
    assert mesh.euler_number == 2  # one piece, no handles
    radius = np.sqrt((np.asarray(cutout.getchannel("A")) / 255).sum() / np.pi) / SIDE
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=SPHERE_VOLUME_TOLERANCE)
    assert mesh.extents == pytest.approx([2 * radius] * 3, rel=0.03)
    assert mesh.bounds[:, 2] == pytest.approx([-radius, radius], rel=0.03)  # front and back alike


def test_thickness_scales_the_depth_only():
    thin = load_backend("silhouette", None, CPU, torch.float32, thickness=0.5, grid_size=64)
    mesh = thin(drawn_disc(), seed=0)
    assert_closed_solid(mesh)
    width, height, depth = mesh.extents
    assert depth / width == pytest.approx(0.5, rel=0.05) and height == pytest.approx(
        width, rel=0.01
    )


def test_a_mug_keeps_its_proportions_and_the_hole_of_its_handle(backend):
    cutout = drawn_mug()
    mesh = backend(cutout, seed=0)
    assert_closed_solid(mesh)
    assert mesh.euler_number == 0  # one hole through the solid: the handle's

    x0, y0, x1, y1 = box_of(cutout.getchannel("A"))
    assert mesh.bounds[:, :2].ravel() == pytest.approx([x0, y0, x1, y1], abs=0.01)
    width, height, depth = mesh.extents
    assert width / height == pytest.approx((x1 - x0) / (y1 - y0), rel=0.02)
    body_width = (260 - 80) / (330 - 80) * width
    assert depth == pytest.approx(body_width, rel=0.05)  # the round body is as deep as it is wide

    # A ray through the handle's hole passes; the image's x and y are the mesh's.
    scale = (x1 - x0) / (330 - 80)
    hole_x, hole_y = x0 + (295 - 80) * scale, y1 - (200 - 100) * scale
    assert not hit_by_ray_along_z(mesh, hole_x, hole_y)
    assert hit_by_ray_along_z(
        mesh, hole_x, y1 - (154 - 100) * scale
    )  # the handle itself, above the hole
    assert hit_by_ray_along_z(mesh, x0 + (170 - 80) * scale, hole_y)  # the body


def test_the_photo_is_projected_front_and_back(coarse):
    mesh = coarse(drawn_disc(top_colour=RED, bottom_colour=BLUE), seed=0)
    colours = mesh.visual.vertex_colors.astype(float)
    x, y, z = mesh.vertices.T
    for front in (z > 0.05, z < -0.05):
        top, bottom = colours[front & (y > 0.05)], colours[front & (y < -0.05)]
        # Linear RGB, as glTF stores vertex colours: sRGB 200 -> 147, 30 -> 3.
        assert np.median(top[:, :3], axis=0) == pytest.approx(linear(RED), abs=2)
        assert np.median(bottom[:, :3], axis=0) == pytest.approx(linear(BLUE), abs=2)
    assert (colours[:, 3] == 255).all()


def test_reports_its_stages_and_stops_when_cancelled(coarse):
    steps = []
    coarse(drawn_disc(), seed=0, on_denoising_step=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]

    def cancel_at_stage_two(done, total):
        if done == 2:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        coarse(drawn_disc(), seed=0, on_denoising_step=cancel_at_stage_two)


def test_the_result_finishes_into_a_coloured_glb(coarse):
    glb = finish_mesh(coarse(drawn_mug(), seed=0), face_count=3000)
    (mesh,) = trimesh.load(io.BytesIO(glb), file_type="glb", process=False).geometry.values()
    assert 0 < len(mesh.faces) <= 3000
    assert mesh.bounds.mean(axis=0) == pytest.approx([0, 0, 0], abs=0.01)
    assert mesh.extents.max() == pytest.approx(1.0, abs=0.01)
    colours = mesh.visual.to_color().vertex_colors  # the baked texture under each vertex
    assert np.median(colours[:, 0]) > 4 * np.median(colours[:, 1:3])  # red


def test_an_empty_cut_out_is_refused(coarse):
    with pytest.raises(BadInputImage):
        coarse(PIL.Image.new("RGBA", (64, 64), (255, 0, 0, 0)), seed=0)


def test_load_takes_its_options_and_ignores_the_sampling_ones():
    assert "silhouette" in BACKENDS
    loaded = load_backend(
        "silhouette", None, CPU, torch.float32, steps=64, guidance_scale=3.0, grid_size=48
    )
    assert isinstance(loaded, SilhouetteBackend)
    assert (loaded.grid_size, loaded.thickness) == (48, 1.0)
    with pytest.raises(ValueError):
        load_backend("silhouette", None, CPU, torch.float32, thickness=0)


def test_the_registry_loads_it_without_any_weights(settings, monkeypatch):
    settings.IMAGE_TO_3D_BACKEND = "silhouette"
    settings.IMAGE_TO_3D_MODEL = ""
    settings.MESH_GRID_SIZE = 40

    def no_tiny_models():
        raise AssertionError("a weight-free backend must not build the tiny models")

    monkeypatch.setattr(registry, "tiny_models_dir", no_tiny_models)
    registry.image_to_3d_pipeline.cache_clear()
    try:
        loaded = registry.image_to_3d_pipeline()
    finally:
        registry.image_to_3d_pipeline.cache_clear()
    assert isinstance(loaded, SilhouetteBackend) and loaded.grid_size == 40
