"""Turn a raw generated mesh into a clean, compact, web-ready GLB."""

import io

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

from .errors import ModelError

DEFAULT_FACE_COUNT = 40_000
LOW_POLY_FACE_COUNT = 2_000
# "Sketch" differs only in how its input image is cut out; its mesh is finished like "Normal".
GENERATE_TYPES = ("Normal", "LowPoly", "Geometry", "Sketch")
# Pieces with less area than this share of the largest piece are reconstruction debris.
FLOATER_AREA_SHARE = 0.05
UNCOLOURED = (180, 180, 180, 255)
# No model here predicts PBR texture maps, so enable_pbr means constant factors that light like
# painted plastic; the plain material is fully rough, showing the colours as they are.
PBR_FACTORS = {"metallicFactor": 0.0, "roughnessFactor": 0.5}
PLAIN_FACTORS = {"metallicFactor": 0.0, "roughnessFactor": 1.0}


def finish_mesh(
    mesh: trimesh.Trimesh,
    *,
    face_count: int | None,
    generate_type: str = "Normal",
    enable_pbr: bool = False,
) -> bytes:
    """Clean, centre, scale into the unit cube and decimate ``mesh``; return it as GLB bytes.

    ``face_count`` caps the faces (``DEFAULT_FACE_COUNT`` when None). ``generate_type`` is one of
    ``GENERATE_TYPES``: "LowPoly" caps at ``LOW_POLY_FACE_COUNT`` too and shades each face flat in
    one colour; "Geometry" drops the colours for a plain grey surface. Colours are taken from
    per-vertex or per-face colours; a textured mesh comes out grey (no backend makes one yet).
    """
    if generate_type not in GENERATE_TYPES:
        raise ValueError(f"Unknown generate_type {generate_type!r}; use one of {GENERATE_TYPES}")
    max_faces = face_count or DEFAULT_FACE_COUNT
    if generate_type == "LowPoly":
        max_faces = min(max_faces, LOW_POLY_FACE_COUNT)

    mesh = _cleaned(mesh)
    _centre_in_unit_cube(mesh)
    reduced = _reduced(mesh, max_faces)
    colours = None
    if generate_type != "Geometry" and mesh.visual.kind in ("vertex", "face"):
        # Decimation drops the colours: take each new vertex's from the nearest original vertex.
        _, nearest = mesh.kdtree.query(reduced.vertices)
        colours = mesh.visual.vertex_colors[nearest]
    if generate_type == "LowPoly":
        colours = _shade_flat(reduced, colours)

    material = PBRMaterial(
        name="pbr" if enable_pbr else "plain",
        baseColorFactor=UNCOLOURED if colours is None else (255, 255, 255, 255),
        **(PBR_FACTORS if enable_pbr else PLAIN_FACTORS),
    )
    reduced.visual = TextureVisuals(material=material)
    if colours is not None:
        reduced.visual.vertex_attributes["color"] = colours
    glb = reduced.export(file_type="glb", include_normals=True)
    _check_glb(glb, max_faces)
    return glb


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


def _shade_flat(mesh: trimesh.Trimesh, vertex_colours: np.ndarray | None) -> np.ndarray | None:
    """Give every face its own vertices, so normals (and colours) are per face.

    Returns the colours of the new vertices.
    """
    face_colours = None
    if vertex_colours is not None:
        face_colours = vertex_colours[mesh.faces].mean(axis=1).round().astype(np.uint8)
    mesh.unmerge_vertices()  # vertex i now belongs to face i // 3
    return None if face_colours is None else np.repeat(face_colours, 3, axis=0)


def _check_glb(glb: bytes, max_faces: int) -> None:
    """Read the file back as a viewer would, so a broken export never reaches a user."""
    try:
        faces = len(trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh").faces)
    except Exception as exc:
        raise ModelError("The 3D file could not be written. Try again.") from exc
    if not 0 < faces <= max_faces:
        raise ModelError(f"The 3D file came out with {faces} faces (allowed 1 to {max_faces}). Try again.")
