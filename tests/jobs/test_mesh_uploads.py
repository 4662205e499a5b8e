"""Models users bring: every accepted format read into one mesh in the unit cube, and hostile
files (truncated, oversized, bomb-like, not a model) refused before or while they are read."""

import io
import struct
import zipfile

import numpy as np
import pytest
import trimesh

from jobs import fbx, mesh_uploads
from jobs.mesh_uploads import Limits, MeshRefused
from tests.helpers.meshes import glb, textured_sphere

FACES = len(textured_sphere().faces)


def obj_zip(mesh) -> bytes:
    text, files = trimesh.exchange.obj.export_obj(mesh, return_texture=True, mtl_name="model.mtl")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.obj", text)
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def plain(mesh) -> trimesh.Trimesh:
    return trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)


UPLOADS = {
    "glb": lambda: glb(textured_sphere()),
    "obj-zip": lambda: obj_zip(textured_sphere()),
    "obj": lambda: trimesh.exchange.obj.export_obj(plain(textured_sphere())).encode(),
    "stl": lambda: trimesh.exchange.stl.export_stl(textured_sphere()),
    "stl-ascii": lambda: trimesh.exchange.stl.export_stl_ascii(textured_sphere()).encode(),
    "ply": lambda: trimesh.exchange.ply.export_ply(plain(textured_sphere())),
    "fbx": lambda: fbx.write_fbx(glb(textured_sphere()), ".glb"),
}


@pytest.mark.parametrize("kind", UPLOADS)
def test_every_accepted_format_becomes_one_mesh_in_the_unit_cube(kind):
    model = mesh_uploads.read_model(UPLOADS[kind]())

    assert model.file_type == kind.split("-")[0]
    assert len(model.mesh.faces) == FACES
    np.testing.assert_allclose(model.mesh.extents.max(), 1.0)
    np.testing.assert_allclose(model.mesh.bounds.mean(axis=0), 0, atol=1e-6)
    reloaded = trimesh.load(io.BytesIO(model.glb()), file_type="glb", process=False)
    (mesh,) = reloaded.geometry.values()
    assert len(mesh.faces) == FACES
    source = trimesh.load(io.BytesIO(model.source_mesh()), file_type="ply", process=False)
    assert len(source.faces) == FACES


@pytest.mark.parametrize("kind", ["glb", "obj-zip"])
def test_textured_formats_keep_their_texture(kind):
    model = mesh_uploads.read_model(UPLOADS[kind]())

    colours = model.mesh.visual.to_color().vertex_colors
    assert len(np.unique(colours[:, :3], axis=0)) >= 2  # both halves' colours


def zipped(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


HOSTILE = {
    "truncated glb": (lambda: truncated(glb(textured_sphere())), "truncated"),
    "truncated binary stl": (
        lambda: truncated(trimesh.exchange.stl.export_stl(textured_sphere())),
        "could not be read|no model",
    ),
    "truncated ply": (
        lambda: truncated(trimesh.exchange.ply.export_ply(plain(textured_sphere()))),
        "could not be read",
    ),
    "truncated fbx": (lambda: truncated(UPLOADS["fbx"]()), "could not be read"),
    "zip bomb": (
        lambda: zipped({"model.obj": b"v 0 0 0\n" + b" " * 50_000_000}),
        "packed too tightly",
    ),
    "nested archive": (
        lambda: zipped({"model.obj": b"v 0 0 0\n", "more.zip": zipped({"a.obj": b"v 0 0 0"})}),
        "inside the archive",
    ),
    "many members": (
        lambda: zipped({f"{i}.png": b"x" for i in range(40)} | {"m.obj": b"v 0 0 0\n"}),
        "more than 16 files",
    ),
    "gzip": (lambda: b"\x1f\x8b\x08\x00" + bytes(100), "Archives other than"),
    "random bytes": (lambda: np.random.default_rng(0).bytes(5000), "no model we read"),
    "a photo": (lambda: b"\xff\xd8\xff\xe0" + bytes(2000), "no model we read"),
    "lying glb header": (
        lambda: b"glTF" + struct.pack("<II", 2, 10**9) + bytes(40),
        "truncated",
    ),
    "lying stl count": (
        lambda: bytes(80) + struct.pack("<I", 10**8) + bytes(50 * 10**8 % 7),
        "no model we read",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_files_are_refused_clearly(case):
    make, message = HOSTILE[case]

    with pytest.raises(MeshRefused, match=message):
        mesh_uploads.read_model(make())


@pytest.mark.parametrize("kind", ["glb", "stl", "ply", "obj", "obj-zip"])
def test_vertex_and_face_limits_are_read_off_the_header_before_parsing(kind, monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed a file over the limits")

    monkeypatch.setattr(mesh_uploads.trimesh, "load", no_parsing)

    with pytest.raises(MeshRefused, match="more than 100 (vertices|faces)"):
        mesh_uploads.read_model(UPLOADS[kind](), Limits(max_vertices=100, max_faces=100))


def test_files_over_the_byte_limit_are_refused_unread():
    with pytest.raises(MeshRefused, match="larger than 1 MB"):
        mesh_uploads.read_model(b"glTF" + bytes(2 * 1024 * 1024), Limits(max_bytes=1024 * 1024))


def test_textures_over_the_pixel_limit_are_refused():
    with pytest.raises(MeshRefused, match="texture is larger"):
        mesh_uploads.read_model(UPLOADS["obj-zip"](), Limits(max_texture_pixels=32 * 32))
