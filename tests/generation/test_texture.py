"""Texture maps: the UV atlas and baked base-colour texture every coloured model gets, and the
photo painted onto a backend's uncoloured mesh. No weights, no database."""

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
import trimesh

from generation.pipelines import finish_mesh, prepare_mesh
from generation.pipelines.texture import linear_to_srgb
from tests.helpers.meshes import front_view, load_glb

RED, BLUE = (220, 20, 20, 255), (20, 20, 220, 255)  # linear vertex colours
# Mean per-channel difference (0-255) between the front views of the baked model and of the
# vertex-coloured one. Measured 0.58 on this sphere at 512 texels (1.00 at 256, 0.36 at 1024):
# each texel holds the colour at its centre, so the views differ by a texel's worth of gradient.
BAKED_VIEW_TOLERANCE = 2.0


@pytest.fixture(scope="module")
def painted_sphere():
    """A sphere whose colour runs from red on top to blue below, with a green band in front."""
    sphere = trimesh.creation.icosphere(subdivisions=4)  # 5120 faces
    up = (sphere.vertices[:, 1] + 1) / 2
    colours = np.column_stack(
        [220 * up + 20 * (1 - up), np.full(len(up), 20), 20 * up + 220 * (1 - up)]
    )
    band = (np.abs(sphere.vertices[:, 1]) < 0.2) & (sphere.vertices[:, 2] > 0)
    colours[band] = (20, 200, 20)
    rgba = np.column_stack([colours, np.full(len(up), 255)]).round().astype(np.uint8)
    return prepare_mesh(
        trimesh.Trimesh(sphere.vertices, sphere.faces, vertex_colors=rgba, process=False)
    )


def texture_at_face_centres(mesh: trimesh.Trimesh) -> np.ndarray:
    """The texel under each face's UV centroid and under points halfway from it to each corner."""
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    corners = mesh.visual.uv[mesh.faces]
    centre = corners.mean(axis=1, keepdims=True)
    points = np.concatenate([centre, (centre + corners) / 2], axis=1)  # (faces, 4, 2)
    size = image.shape[0]
    columns = np.clip((points[..., 0] * size).astype(int), 0, size - 1)
    rows = np.clip(((1 - points[..., 1]) * size).astype(int), 0, size - 1)
    return image[rows, columns]


def test_the_baked_model_looks_like_the_vertex_coloured_one_from_the_front(painted_sphere):
    baked = load_glb(finish_mesh(painted_sphere, face_count=10_000, texture_size=512))
    assert "color" not in baked.visual.vertex_attributes  # the colours live in the texture only
    assert baked.visual.material.baseColorTexture.size == (512, 512)

    expected, expected_covered = front_view(painted_sphere)
    seen, covered = front_view(baked)

    both = expected_covered & covered
    assert both.sum() > 0.95 * expected_covered.sum()  # same geometry: the same pixels
    difference = np.abs(seen[both] - expected[both]).mean()
    assert difference < BAKED_VIEW_TOLERANCE, f"mean colour difference {difference:.2f}"
    green = seen[both][:, 1] > 150
    assert green.any() and not (seen[both][:, 1] > 150).all()  # the band is there, and only there


def test_low_poly_keeps_one_flat_colour_and_one_normal_per_face(painted_sphere):
    mesh = load_glb(
        finish_mesh(painted_sphere, face_count=None, generate_type="LowPoly", texture_size=512)
    )

    assert 0 < len(mesh.faces) <= 2000
    assert len(mesh.vertices) == 3 * len(mesh.faces)  # unshared vertices: flat shading
    normals = mesh.vertex_normals[mesh.faces]
    assert np.allclose(normals, normals[:, :1], atol=1e-4)
    samples = texture_at_face_centres(mesh).astype(int)
    assert (np.abs(samples - samples[:, :1]).max(axis=2) <= 1).mean() > 0.99  # one colour per face


def test_geometry_stays_plain_and_pbr_keeps_its_factors(painted_sphere):
    plain = load_glb(finish_mesh(painted_sphere, face_count=500, generate_type="Geometry"))
    pbr = load_glb(finish_mesh(painted_sphere, face_count=500, enable_pbr=True, texture_size=256))

    assert (
        plain.visual.material.baseColorTexture is None
        and "color" not in plain.visual.vertex_attributes
    )
    assert tuple(plain.visual.material.baseColorFactor[:3]) == (180, 180, 180)
    assert (pbr.visual.material.metallicFactor, pbr.visual.material.roughnessFactor) == (0.0, 0.5)
    assert pbr.visual.material.baseColorTexture is not None


def drawn_photo() -> PIL.Image.Image:
    """A cut-out: a disc, red on its left half and blue on its right, on transparency."""
    photo = PIL.Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = PIL.ImageDraw.Draw(photo)
    draw.pieslice((28, 28, 228, 228), 90, 270, fill=(230, 20, 20, 255))
    draw.pieslice((28, 28, 228, 228), 270, 90, fill=(20, 20, 230, 255))
    return photo


def test_an_uncoloured_mesh_is_painted_from_its_photo_with_the_hidden_side_filled():
    """As the hunyuan3d backend's meshes are: no colours, y up, facing +z."""
    sphere = trimesh.creation.icosphere(subdivisions=4)

    painted = prepare_mesh(sphere, photo=drawn_photo())

    colours = painted.visual.vertex_colors[:, :3].astype(int)
    front = painted.vertices[:, 2] > 0.3
    left, right = painted.vertices[:, 0] < -0.2, painted.vertices[:, 0] > 0.2
    red = (colours[:, 0] > 150) & (colours[:, 2] < 60)
    blue = (colours[:, 2] > 150) & (colours[:, 0] < 60)
    assert red[front & left].all() and blue[front & right].all()
    # The back was not seen: it takes its colours from the visible rim, so every vertex has one
    # and the back's left stays red, its right blue.
    back = painted.vertices[:, 2] < -0.3
    assert red[back & left].mean() > 0.9 and blue[back & right].mean() > 0.9

    baked = load_glb(finish_mesh(painted, face_count=2000, texture_size=256))
    seen, covered = front_view(baked)
    columns = np.nonzero(covered.any(axis=0))[0]
    left_half = seen[:, columns[0] : columns[len(columns) // 3]][
        covered[:, columns[0] : columns[len(columns) // 3]]
    ]
    assert left_half[:, 0].mean() > 180 and left_half[:, 2].mean() < 90  # drawn as the photo showed


def test_srgb_conversion_matches_the_standard_curve():
    assert np.allclose(
        linear_to_srgb(np.array([0.0, 0.0031308, 0.5, 1.0])), [0, 0.04045, 0.7354, 1.0], atol=1e-3
    )
