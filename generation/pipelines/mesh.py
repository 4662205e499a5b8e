"""Turn a raw generated mesh into a clean, compact, web-ready GLB with a texture map."""

import io

import numpy as np
import PIL.Image
import trimesh
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

from . import texture
from .errors import ModelError

DEFAULT_FACE_COUNT = 40_000
LOW_POLY_FACE_COUNT = 2_000
DEFAULT_TEXTURE_SIZE = 1024
# "Sketch" differs only in how its input image is cut out; its mesh is finished like "Normal".
GENERATE_TYPES = ("Normal", "LowPoly", "Geometry", "Sketch")
# Pieces with less area than this share of the largest piece are reconstruction debris.
FLOATER_AREA_SHARE = 0.05
UNCOLOURED = (180, 180, 180, 255)
# No model here predicts PBR texture maps, so enable_pbr means constant factors that light like
# painted plastic; the plain material is fully rough, showing the colours as they are.
PBR_FACTORS = {"metallicFactor": 0.0, "roughnessFactor": 0.5}
PLAIN_FACTORS = {"metallicFactor": 0.0, "roughnessFactor": 1.0}


def prepare_mesh(mesh: trimesh.Trimesh, *, photo: PIL.Image.Image | None = None) -> trimesh.Trimesh:
    """The full-resolution mesh every finished model of a job is made from: cleaned, centred,
    scaled into the unit cube, with linear per-vertex colours when it has any.

    A mesh without colours (hunyuan3d) is painted from ``photo``, the cut-out it was made from,
    when one is given (see ``texture.paint_from_photo``).
    """
    mesh = _cleaned(mesh)
    _centre_in_unit_cube(mesh)
    colours = None
    if mesh.visual.kind in ("vertex", "face"):
        colours = mesh.visual.vertex_colors
    elif photo is not None:
        colours = texture.paint_from_photo(mesh, photo)
    return trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_colors=colours, process=False)


def save_source_mesh(mesh: trimesh.Trimesh) -> bytes:
    """A prepared mesh as stored for later finishes: binary PLY, which keeps the vertex colours."""
    return mesh.export(file_type="ply", encoding="binary")


def load_source_mesh(data: bytes) -> trimesh.Trimesh:
    return trimesh.load(io.BytesIO(data), file_type="ply", process=False)


def finish_mesh(
    mesh: trimesh.Trimesh,
    *,
    face_count: int | None,
    generate_type: str = "Normal",
    enable_pbr: bool = False,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> bytes:
    """Clean, centre, scale into the unit cube, decimate and texture ``mesh``; return GLB bytes.

    ``face_count`` caps the faces (``DEFAULT_FACE_COUNT`` when None). ``generate_type`` is one of
    ``GENERATE_TYPES``: "LowPoly" caps at ``LOW_POLY_FACE_COUNT`` too and shades each face flat in
    one colour; "Geometry" drops the colours for a plain grey surface. The colours, taken from
    per-vertex or per-face colours, are baked into a ``texture_size`` square base-colour texture
    over a UV atlas; a mesh without colours comes out grey and untextured.
    """
    if generate_type not in GENERATE_TYPES:
        raise ValueError(f"Unknown generate_type {generate_type!r}; use one of {GENERATE_TYPES}")
    max_faces = face_count or DEFAULT_FACE_COUNT
    if generate_type == "LowPoly":
        max_faces = min(max_faces, LOW_POLY_FACE_COUNT)

    mesh = _cleaned(mesh)
    _centre_in_unit_cube(mesh)
    reduced = _reduced(mesh, max_faces)
    factors = PBR_FACTORS if enable_pbr else PLAIN_FACTORS
    if generate_type == "Geometry" or mesh.visual.kind not in ("vertex", "face"):
        reduced.visual = TextureVisuals(
            material=PBRMaterial(name="plain", baseColorFactor=UNCOLOURED, **factors)
        )
        if generate_type == "LowPoly":
            _shade_flat(reduced)
    else:
        # Decimation drops the colours: take each new vertex's from the nearest original vertex.
        _, nearest = mesh.kdtree.query(reduced.vertices)
        reduced = _textured(reduced, mesh.visual.vertex_colors[nearest], generate_type, texture_size, factors)
    glb = reduced.export(file_type="glb", include_normals=True)
    _check_glb(glb, max_faces)
    return glb


def _textured(
    mesh: trimesh.Trimesh, colours: np.ndarray, generate_type: str, size: int, factors: dict
) -> trimesh.Trimesh:
    """``mesh`` with a UV atlas and its vertex colours baked into a base-colour texture; for
    "LowPoly", one colour and one normal per face."""
    cut, uv = texture.unwrap(mesh, size)
    corner_colours = colours[cut.metadata["source_vertex"]][cut.faces][:, :, :3]
    if generate_type == "LowPoly":
        corner_colours[:] = corner_colours.mean(axis=1, keepdims=True).round()
        uv = _shade_flat(cut, uv)
    material = PBRMaterial(
        name="textured",
        baseColorTexture=texture.bake(uv, cut.faces, corner_colours, size),
        baseColorFactor=(255, 255, 255, 255),
        **factors,
    )
    cut.visual = TextureVisuals(uv=uv, material=material)
    return cut


def _cleaned(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A copy without degenerate or repeated faces, floating debris, or inconsistent winding."""
    mesh = mesh.copy()
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    if len(mesh.faces) == 0:
        raise ModelError("The model produced an empty shape. Try again with another seed or image.")
    piece = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    piece_area = np.bincount(piece, weights=mesh.area_faces)
    mesh.update_faces(piece_area[piece] >= FLOATER_AREA_SHARE * piece_area.max())
    mesh.remove_unreferenced_vertices()
    mesh.fix_normals()
    return mesh


def _centre_in_unit_cube(mesh: trimesh.Trimesh) -> None:
    """Centre the bounding box on the origin and scale its longest side to 1.

    Backends already deliver y-up meshes (glTF's convention), so no rotation is needed.
    """
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    mesh.apply_scale(1.0 / mesh.extents.max())


def _reduced(mesh: trimesh.Trimesh, max_faces: int) -> trimesh.Trimesh:
    """Quadric decimation down to ``max_faces``; geometry only, without visuals."""
    if len(mesh.faces) <= max_faces:
        return trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False)
    return mesh.simplify_quadric_decimation(face_count=max_faces)


def _shade_flat(mesh: trimesh.Trimesh, uv: np.ndarray | None = None) -> np.ndarray | None:
    """Give every face its own vertices, so normals are per face; returns the new vertices' UVs."""
    corners = mesh.faces.reshape(-1)
    mesh.vertices = mesh.vertices[corners]  # vertex i now belongs to face i // 3
    mesh.faces = np.arange(len(corners)).reshape(-1, 3)
    return None if uv is None else uv[corners]


def _check_glb(glb: bytes, max_faces: int) -> None:
    """Read the file back as a viewer would, so a broken export never reaches a user."""
    try:
        faces = len(trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh").faces)
    except Exception as exc:
        raise ModelError("The 3D file could not be written. Try again.") from exc
    if not 0 < faces <= max_faces:
        raise ModelError(f"The 3D file came out with {faces} faces (allowed 1 to {max_faces}). Try again.")
