"""A model the user brings (``POST /api/3d/upload-mesh``): checked within limits, read, and turned
into what a finished job holds (a textured GLB and the coloured source mesh remeshes start from).

Django-free and torch-free: the web process reads the upload. Every limit that can be read off
the file's own header (bytes, vertices, faces, images, archive members) is checked before any
parser sees the file: a GLB's JSON chunk, a binary STL's triangle count, a PLY's header, an OBJ's
lines, a zipped OBJ's directory; the counts are checked again on what the parser made. FBX is
read by ufbx, whose allocator is capped. GLB, OBJ, STL and PLY are read by trimesh.
"""

import io
import json
import re
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import trimesh


class MeshRefused(ValueError):
    """The file is no model we read, or is over a limit: the message says which."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024
    max_vertices: int = 1_000_000
    max_faces: int = 2_000_000
    max_textures: int = 4
    max_texture_pixels: int = 4096 * 4096
    # A zipped OBJ: its members (OBJ, MTL, textures), their size once unpacked, and how much
    # smaller than that each may be packed (a zip bomb packs far tighter).
    max_archive_members: int = 16
    max_unpacked_bytes: int = 200 * 1024 * 1024
    max_compression_ratio: int = 100


ACCEPTED = "GLB, OBJ (alone or zipped with its MTL and textures), STL, PLY or FBX"
ARCHIVES = (b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh")
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class UploadedModel:
    mesh: trimesh.Trimesh
    file_type: str  # glb, obj, stl, ply or fbx

    def glb(self) -> bytes:
        return trimesh.Scene(self.mesh).export(file_type="glb")

    def source_mesh(self) -> bytes:
        """The coloured source mesh (binary PLY, vertex colours) that remeshes start from."""
        coloured = self.mesh.copy()
        if isinstance(self.mesh.visual, trimesh.visual.TextureVisuals):
            coloured.visual = self.mesh.visual.to_color()
        return coloured.export(file_type="ply", encoding="binary")


def read_model(data: bytes, limits: Limits = Limits()) -> UploadedModel:
    """The upload as one mesh, or MeshRefused."""
    if len(data) > limits.max_bytes:
        raise MeshRefused(f"The file is larger than {limits.max_bytes // (1024 * 1024)} MB")
    file_type = _file_type(data)
    checked = _HEADER_CHECKS[file_type](data, limits)
    try:
        mesh = _READERS[file_type](checked, limits)
    except MeshRefused:
        raise
    except Exception as exc:  # every parser raises its own kinds on a broken file
        raise MeshRefused(f"The {file_type.upper()} file could not be read: {exc}") from None
    _check_counts(len(mesh.vertices), len(mesh.faces), limits)
    if not len(mesh.faces) or mesh.extents.max() <= 0:
        raise MeshRefused("The file holds no triangles")
    # Centred in the unit cube, as generated models are (every unit and offset comes out alike).
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    mesh.apply_scale(1 / mesh.extents.max())
    return UploadedModel(mesh, file_type.removesuffix("-ascii").removesuffix("-zip"))


def _file_type(data: bytes) -> str:
    head = data[:256]
    if head.startswith(b"glTF"):
        return "glb"
    if head.startswith(b"Kaydara FBX Binary"):
        return "fbx"
    if head.startswith(b"PK\x03\x04"):
        return "obj-zip"
    if head.startswith(b"ply"):
        return "ply"
    if head.startswith(ARCHIVES):
        raise MeshRefused(f"Archives other than a zipped OBJ are not accepted: send {ACCEPTED}")
    if len(data) >= 84 and 84 + 50 * struct.unpack_from("<I", data, 80)[0] == len(data):
        return "stl"
    if head.lstrip().startswith(b"solid"):
        return "stl-ascii"
    if re.search(rb"^v\s", data[:65536], re.MULTILINE):
        return "obj"
    raise MeshRefused(f"The file is no model we read: send {ACCEPTED}")


def _check_counts(vertices: int, faces: int, limits: Limits) -> None:
    if vertices > limits.max_vertices:
        raise MeshRefused(f"The model has more than {limits.max_vertices} vertices")
    if faces > limits.max_faces:
        raise MeshRefused(f"The model has more than {limits.max_faces} faces")


def _check_glb(data: bytes, limits: Limits) -> bytes:
    """The JSON chunk's accessors (vertex and index counts) and images, before trimesh reads."""
    if len(data) < 20:
        raise MeshRefused("The GLB file is truncated")
    _, _, total = struct.unpack_from("<4sII", data)
    json_length, json_type = struct.unpack_from("<II", data, 12)
    if total != len(data) or json_type != 0x4E4F534A or 20 + json_length > len(data):
        raise MeshRefused("The GLB file is truncated or damaged")
    try:
        document = json.loads(data[20 : 20 + json_length])
    except ValueError:
        raise MeshRefused("The GLB file's JSON is damaged") from None
    accessors = document.get("accessors", [])
    vertices = faces = 0
    for mesh in document.get("meshes", []):
        for primitive in mesh.get("primitives", []):
            position = primitive.get("attributes", {}).get("POSITION")
            count = accessors[position]["count"] if position is not None else 0
            vertices += count
            indices = primitive.get("indices")
            faces += (accessors[indices]["count"] if indices is not None else count) // 3
    _check_counts(vertices, faces, limits)
    if len(document.get("images", [])) > limits.max_textures:
        raise MeshRefused(f"The model has more than {limits.max_textures} textures")
    return data


def _check_stl(data: bytes, limits: Limits) -> bytes:
    triangles = struct.unpack_from("<I", data, 80)[0]
    _check_counts(3 * triangles, triangles, limits)
    return data


def _check_ascii_stl(data: bytes, limits: Limits) -> bytes:
    triangles = data.count(b"facet")
    _check_counts(3 * triangles, triangles, limits)
    return data


def _check_ply(data: bytes, limits: Limits) -> bytes:
    end = data.find(b"end_header", 0, 65536)
    if end < 0:
        raise MeshRefused("The PLY file has no header")
    counts = dict(re.findall(rb"^element\s+(\w+)\s+(\d+)", data[:end], re.MULTILINE))
    _check_counts(int(counts.get(b"vertex", 0)), int(counts.get(b"face", 0)), limits)
    return data


def _check_obj(data: bytes, limits: Limits) -> bytes:
    vertices = len(re.findall(rb"^v\s", data, re.MULTILINE))
    faces = len(re.findall(rb"^f\s", data, re.MULTILINE))
    _check_counts(vertices, faces, limits)
    return data


def _check_obj_zip(data: bytes, limits: Limits) -> dict[str, bytes]:
    """The archive's members by name, each within the limits before it is unpacked."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
    except zipfile.BadZipFile:
        raise MeshRefused("The zip archive is damaged") from None
    if len(members) > limits.max_archive_members:
        raise MeshRefused(f"The archive holds more than {limits.max_archive_members} files")
    if sum(info.file_size for info in members) > limits.max_unpacked_bytes:
        raise MeshRefused("The archive unpacks to more than the limit")
    unpacked = {}
    for info in members:
        if info.file_size > limits.max_compression_ratio * max(info.compress_size, 1):
            raise MeshRefused("The archive is packed too tightly to be a model (a zip bomb?)")
        name = Path(info.filename).name
        if name.lower().endswith((".zip", ".gz", ".7z", ".rar", ".tar")):
            raise MeshRefused("Archives inside the archive are not accepted")
        with archive.open(info) as member:
            unpacked[name] = member.read(limits.max_unpacked_bytes + 1)
    objs = [name for name in unpacked if name.lower().endswith(".obj")]
    if len(objs) != 1:
        raise MeshRefused("A zipped OBJ must hold exactly one .obj file")
    textures = [name for name in unpacked if name.lower().endswith(TEXTURE_SUFFIXES)]
    if len(textures) > limits.max_textures:
        raise MeshRefused(f"The model has more than {limits.max_textures} textures")
    for name in textures:
        _check_texture(unpacked[name], limits)
    _check_obj(unpacked[objs[0]], limits)
    return unpacked


def _check_texture(data: bytes, limits: Limits) -> None:
    try:
        width, height = PIL.Image.open(io.BytesIO(data)).size  # the header only
    except Exception:
        raise MeshRefused("A texture is not a readable image") from None
    if width * height > limits.max_texture_pixels:
        raise MeshRefused("A texture is larger than the limit")


def _one_mesh(loaded) -> trimesh.Trimesh:
    if isinstance(loaded, trimesh.Scene):
        if not loaded.geometry:
            raise MeshRefused("The file holds no mesh")
        loaded = loaded.to_mesh() if len(loaded.geometry) > 1 else next(iter(loaded.dump()))
    if not isinstance(loaded, trimesh.Trimesh):
        raise MeshRefused("The file holds no triangle mesh")
    return loaded


def _read_glb(data: bytes, limits: Limits) -> trimesh.Trimesh:
    mesh = _one_mesh(trimesh.load(io.BytesIO(data), file_type="glb", process=False))
    material = getattr(mesh.visual, "material", None)
    image = getattr(material, "baseColorTexture", None)
    if image is not None and image.width * image.height > limits.max_texture_pixels:
        raise MeshRefused("A texture is larger than the limit")
    return mesh


def _read_with_trimesh(file_type: str):
    def read(data: bytes, limits: Limits) -> trimesh.Trimesh:
        return _one_mesh(trimesh.load(io.BytesIO(data), file_type=file_type, process=False))

    return read


def _read_obj_zip(members: dict[str, bytes], limits: Limits) -> trimesh.Trimesh:
    with tempfile.TemporaryDirectory(prefix="upload-obj-") as folder:
        for name, content in members.items():
            (Path(folder) / name).write_bytes(content)
        (obj,) = [name for name in members if name.lower().endswith(".obj")]
        return _one_mesh(trimesh.load(Path(folder) / obj, process=False))


def _read_fbx(data: bytes, limits: Limits) -> trimesh.Trimesh:
    """The FBX's meshes in world space, each polygon a fan of triangles (read by ufbx)."""
    import ufbx

    scene = ufbx.load_memory(data)
    parts = []
    for node in scene.nodes:
        mesh = node.mesh
        if mesh is None:
            continue
        _check_counts(mesh.num_vertices, mesh.num_triangles, limits)
        positions = np.array([tuple(p) for p in mesh.vertex_position.values], dtype=float)
        corners = np.array(list(mesh.vertex_position.indices), dtype=np.int64)
        fans = [
            (face.index_begin, face.index_begin + k, face.index_begin + k + 1)
            for face in mesh.faces
            for k in range(1, face.num_indices - 1)
        ]
        to_world = np.eye(4)
        to_world[:3] = np.array([tuple(column) for column in node.geometry_to_world]).T
        part = trimesh.Trimesh(positions, corners[np.array(fans)], process=False)
        parts.append(part.apply_transform(to_world))
    if not parts:
        raise MeshRefused("The FBX file holds no mesh")
    return trimesh.util.concatenate(parts)


_HEADER_CHECKS = {
    "glb": _check_glb,
    "stl": _check_stl,
    "stl-ascii": _check_ascii_stl,
    "ply": _check_ply,
    "obj": _check_obj,
    "obj-zip": _check_obj_zip,
    "fbx": lambda data, limits: data,
}
_READERS = {
    "glb": _read_glb,
    "stl": _read_with_trimesh("stl"),
    "stl-ascii": _read_with_trimesh("stl"),
    "ply": _read_with_trimesh("ply"),
    "obj": _read_with_trimesh("obj"),
    "obj-zip": _read_obj_zip,
    "fbx": _read_fbx,
}
