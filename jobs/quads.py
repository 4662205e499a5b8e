"""Quad meshes (``polygonType: "quadrilateral"``): a finished model remeshed by Instant Meshes.

Instant Meshes (its Python bindings, pyinstantmeshes) lays quads along the surface's principal
directions at about the face count asked for; the quads keep the model's texture through UVs read
off the textured model at their corners. A quad mesh travels as the OBJ download (OBJ, MTL and
PNG, zipped), the one format here that stores quads as they are; FBX and USDZ are made from it,
and the GLB holds its triangulation.

Django-free and torch-free; remeshing takes seconds, so it runs on the ``cpu`` queue.
"""

import contextlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import pyinstantmeshes
import trimesh

OBJ_STEM = "model"
# Instant Meshes' pure-quad output splits each face of its extraction into four.
QUADS_PER_EXTRACTED_FACE = 4
FACE_COUNT_TOLERANCE = 0.05  # a result this close to the count asked for is kept...
MAX_TRIES = 3  # ...else the request is scaled by how far off it was, and tried again


@dataclass(frozen=True)
class QuadMesh:
    vertices: np.ndarray  # (n, 3)
    quads: np.ndarray  # (m, 4), counter-clockwise seen from outside
    uv: np.ndarray  # (n, 2): one texture coordinate per vertex
    texture: PIL.Image.Image | None

    def triangulated(self) -> trimesh.Trimesh:
        """Each quad as two triangles, textured as the quads are (the GLB holds these)."""
        a, b, c, d = self.quads.T
        faces = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
        mesh = trimesh.Trimesh(self.vertices, faces, process=False)
        if self.texture is not None:
            material = trimesh.visual.material.PBRMaterial(baseColorTexture=self.texture)
            mesh.visual = trimesh.visual.TextureVisuals(uv=self.uv, material=material)
        return mesh


@contextlib.contextmanager
def _quiet_stdout():
    """Instant Meshes prints its progress on the process's standard output: sent to /dev/null."""
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def remesh(mesh: trimesh.Trimesh, face_count: int) -> QuadMesh:
    """``mesh`` as about ``face_count`` quads (within FACE_COUNT_TOLERANCE when the remesher
    gets there in MAX_TRIES), textured with ``mesh``'s base-colour texture when it has one."""
    from jobs.formats import base_colour_texture

    with tempfile.TemporaryDirectory(prefix="quads-") as folder:
        source, result = Path(folder) / "in.obj", Path(folder) / "out.obj"
        source.write_text(trimesh.exchange.obj.export_obj(mesh, include_texture=False))
        request = max(1, round(face_count / QUADS_PER_EXTRACTED_FACE))
        for _ in range(MAX_TRIES):
            with _quiet_stdout():
                pyinstantmeshes.remesh_file(
                    str(source),
                    str(result),
                    target_face_count=request,
                    pure_quad=True,
                    deterministic=True,
                )
            vertices, quads = _read_quads(result.read_text())
            if abs(len(quads) - face_count) <= FACE_COUNT_TOLERANCE * face_count:
                break
            request = max(1, round(request * face_count / len(quads)))
    texture = base_colour_texture(mesh)
    uv = _uv_at(mesh, vertices) if texture is not None else np.zeros((len(vertices), 2))
    return QuadMesh(vertices, quads, uv, texture)


def quad_model(glb: bytes, face_count: int) -> tuple[bytes, bytes]:
    """A finished model (``glb``) remeshed into about ``face_count`` quads: the GLB of their
    triangulation, and the quad OBJ download (``obj_zip``)."""
    from jobs.formats import single_mesh

    quads = remesh(single_mesh(glb), face_count)
    return trimesh.Scene(quads.triangulated()).export(file_type="glb"), obj_zip(quads)


def _read_quads(obj_text: str) -> tuple[np.ndarray, np.ndarray]:
    """The vertices and faces of an OBJ whose faces are all quads (Instant Meshes' output)."""
    vertices, faces = [], []
    for line in obj_text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "v":
            vertices.append([float(x) for x in rest.split()[:3]])
        elif kind == "f":
            faces.append([int(corner.split("/")[0]) - 1 for corner in rest.split()])
    if not faces or any(len(face) != 4 for face in faces):
        raise ValueError("The remesher did not return a mesh of quads")
    return np.array(vertices, dtype=float), np.array(faces, dtype=np.int64)


def _uv_at(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """The textured model's UV at the point of its surface nearest to each of ``points``."""
    closest, _, triangle = trimesh.proximity.closest_point(mesh, points)
    weights = trimesh.triangles.points_to_barycentric(mesh.triangles[triangle], closest)
    corner_uv = np.asarray(mesh.visual.uv)[mesh.faces[triangle]]
    return np.einsum("ij,ijk->ik", weights, corner_uv)


def obj_zip(quads: QuadMesh) -> bytes:
    """OBJ (quads, a UV per vertex), its MTL and PNG texture, zipped: the OBJ download."""
    lines = [f"mtllib {OBJ_STEM}.mtl", "usemtl material0"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in quads.vertices]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in quads.uv]
    lines += ["f " + " ".join(f"{i}/{i}" for i in quad + 1) for quad in quads.quads]
    material = ["newmtl material0", "Kd 1.000 1.000 1.000"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if quads.texture is not None:
            material.append("map_Kd texture.png")
            png = io.BytesIO()
            quads.texture.save(png, format="PNG")
            archive.writestr("texture.png", png.getvalue())
        archive.writestr(f"{OBJ_STEM}.mtl", "\n".join(material) + "\n")
        archive.writestr(f"{OBJ_STEM}.obj", "\n".join(lines) + "\n")
    return buffer.getvalue()


def from_obj_zip(data: bytes) -> QuadMesh:
    """What ``obj_zip`` wrote."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text = archive.read(f"{OBJ_STEM}.obj").decode()
        names = set(archive.namelist())
        texture = (
            PIL.Image.open(io.BytesIO(archive.read("texture.png"))).convert("RGB")
            if "texture.png" in names
            else None
        )
    vertices, quads = _read_quads(text)
    uv = [[float(x) for x in line.split()[1:3]] for line in text.splitlines() if line[:3] == "vt "]
    return QuadMesh(vertices, quads, np.array(uv, dtype=float).reshape(-1, 2), texture)
