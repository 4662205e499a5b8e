"""FBX written by Blender and read back by ufbx (a reader that shares no code with it); quad
models remeshed by Instant Meshes, read back from OBJ, FBX and USDZ with their quads, and the
print formats made from a model with a hole."""

import io
import zipfile

import numpy as np
import PIL.Image
import pytest
import trimesh
import ufbx

from jobs import formats, quads
from tests.helpers.meshes import BLUE, RED, glb, textured_sphere

QUAD_COUNT = 1200


@pytest.fixture(scope="module")
def sphere_glb():
    return glb(textured_sphere())


@pytest.fixture(scope="module")
def quad_model():
    return quads.remesh(textured_sphere(), QUAD_COUNT)


def read_fbx(data: bytes, tmp_path):
    """(faces, largest face's corner count, embedded texture PNGs) as ufbx reads the file."""
    path = tmp_path / "model.fbx"
    path.write_bytes(data)
    scene = ufbx.load_file(str(path))
    (mesh,) = scene.meshes
    textures = [bytes(texture.content) for texture in scene.textures if texture.content]
    return mesh.num_faces, mesh.max_face_triangles, textures


def test_fbx_is_binary_and_read_back_by_ufbx_with_every_face_and_its_texture(sphere_glb, tmp_path):
    data = formats.convert(sphere_glb, "fbx")

    assert data.startswith(b"Kaydara FBX Binary")
    faces, triangles_per_face, textures = read_fbx(data, tmp_path)
    assert faces == len(textured_sphere().faces) and triangles_per_face == 1
    (png,) = textures
    texture = np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"))
    assert (tuple(texture[0, 0]), tuple(texture[-1, 0])) == (RED, BLUE)


def test_the_remesher_makes_quads_at_the_face_count_asked_for(quad_model):
    assert quad_model.quads.shape[1] == 4
    assert abs(len(quad_model.quads) - QUAD_COUNT) <= 0.1 * QUAD_COUNT
    # On the sphere's surface, and coloured as the model was: red on top, blue below.
    np.testing.assert_allclose(np.linalg.norm(quad_model.vertices, axis=1), 1, atol=0.03)
    colours = quad_model.triangulated().visual.to_color().vertex_colors[:, :3]
    top, bottom = quad_model.vertices[:, 1] > 0.2, quad_model.vertices[:, 1] < -0.2
    assert np.all(colours[top] == RED) and np.all(colours[bottom] == BLUE)


def test_the_quad_obj_is_read_back_with_its_quads_and_texture(quad_model, sphere_glb, tmp_path):
    data = formats.convert(sphere_glb, "obj", quad_obj=quads.obj_zip(quad_model))

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path)
    text = (tmp_path / "model.obj").read_text()
    faces = [line.split()[1:] for line in text.splitlines() if line.startswith("f ")]
    assert {len(face) for face in faces} == {4}
    assert abs(len(faces) - QUAD_COUNT) <= 0.1 * QUAD_COUNT
    # trimesh, as a viewer, reads the quads (as triangles) and the texture through the MTL.
    mesh = trimesh.load(tmp_path / "model.obj", process=False)
    assert len(mesh.faces) == 2 * len(faces)
    assert mesh.visual.material.image.size == (64, 64)


def test_the_quad_fbx_holds_the_quads_and_the_texture(quad_model, sphere_glb, tmp_path):
    data = formats.convert(sphere_glb, "fbx", quad_obj=quads.obj_zip(quad_model))

    faces, triangles_per_face, textures = read_fbx(data, tmp_path)
    assert faces == len(quad_model.quads) and triangles_per_face == 2
    assert len(textures) == 1


def test_the_quad_usdz_holds_the_quads(quad_model, sphere_glb, tmp_path):
    from pxr import Usd, UsdGeom

    path = tmp_path / "model.usdz"
    path.write_bytes(formats.convert(sphere_glb, "usdz", quad_obj=quads.obj_zip(quad_model)))

    stage = Usd.Stage.Open(str(path))
    mesh = UsdGeom.Mesh(stage.GetPrimAtPath("/Model/Geometry"))
    counts = list(mesh.GetFaceVertexCountsAttr().Get())
    assert counts == [4] * len(quad_model.quads)


def test_the_glb_of_a_quad_model_is_its_triangulation(quad_model):
    mesh = quad_model.triangulated()

    assert len(mesh.faces) == 2 * len(quad_model.quads)
    assert mesh.is_watertight


def test_formats_that_hold_quads_are_named():
    assert formats.QUAD_FORMATS == ("obj", "fbx", "usdz")
    assert set(formats.QUAD_FORMATS) <= set(formats.FORMATS)


def test_the_stl_of_a_model_with_a_hole_is_repaired_standing_at_its_height():
    holed = textured_sphere()
    holed.update_faces(np.arange(len(holed.faces)) >= 10)
    data = glb(holed)

    report = formats.print_report(data, height_mm=80)
    stl = trimesh.load(io.BytesIO(formats.convert(data, "stl", height_mm=80)), file_type="stl")

    assert not report.watertight and report.repaired
    assert stl.is_watertight
    assert stl.bounds[0][2] == pytest.approx(0) and stl.extents[2] == pytest.approx(80, rel=1e-3)


def test_the_3mf_of_a_repaired_model_keeps_its_colours():
    from tests.jobs.test_printing import near, read_3mf

    holed = textured_sphere()
    holed.update_faces(np.arange(len(holed.faces)) >= 10)

    vertices, faces, colours = read_3mf(formats.convert(glb(holed), "3mf", height_mm=30))

    heights = vertices[:, 2]
    assert heights.min() == pytest.approx(0) and heights.max() == pytest.approx(30, rel=1e-3)
    assert near(colours[heights[faces] > 20], RED).all()
