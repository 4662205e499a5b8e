"""Turn a raw generated mesh into a clean, compact, web-ready GLB with a texture map.

Post-processing is a chain of steps, each taking a mesh and returning it (as Hunyuan3D-2 chains
``FloaterRemover``, ``DegenerateFaceRemover`` and ``FaceReducer``), then one export step.
"""

import io
from collections.abc import Callable, Iterable

import numpy as np
import PIL.Image
import trimesh
from trimesh.visual.color import ColorVisuals
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

from jobs.options import GenerateType

from . import texture
from .errors import ModelError

DEFAULT_FACE_COUNT = 40_000
LOW_POLY_FACE_COUNT = 2_000
DEFAULT_TEXTURE_SIZE = 1024
GENERATE_TYPES = tuple(word.value for word in GenerateType)
# Pieces with less area than this share of the largest piece are reconstruction debris.
FLOATER_AREA_SHARE = 0.05
UNCOLOURED = (180, 180, 180, 255)
# No model here predicts PBR texture maps, so enable_pbr means constant factors that light like
# painted plastic; the plain material is fully rough, showing the colours as they are.
PBR_FACTORS = {"metallicFactor": 0.0, "roughnessFactor": 0.5}
PLAIN_FACTORS = {"metallicFactor": 0.0, "roughnessFactor": 1.0}

MeshStep = Callable[[trimesh.Trimesh], trimesh.Trimesh]


def remove_degenerate_faces(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Merge repeated vertices; drop degenerate and repeated faces. An empty result is the model's
    failure."""
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    if len(mesh.faces) == 0:
        raise ModelError("The model produced an empty shape. Try again with another seed or image.")
    return mesh


class FloaterRemover:
    """Drop the pieces with less area than ``area_share`` of the largest piece: reconstruction
    debris."""

    def __init__(self, area_share: float = FLOATER_AREA_SHARE):
        self.area_share = area_share

    def __call__(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        piece = trimesh.graph.connected_component_labels(
            mesh.face_adjacency, node_count=len(mesh.faces)
        )
        piece_area = np.bincount(piece, weights=mesh.area_faces)
        mesh.update_faces(piece_area[piece] >= self.area_share * piece_area.max())
        mesh.remove_unreferenced_vertices()
        return mesh


def fix_winding(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Wind every face consistently, outwards: a closed mesh whose signed volume is negative is
    turned inside out (as ``Trimesh.fix_normals`` does, without its volume's inertia tensor, a
    third of the clean-up's time)."""
    trimesh.repair.fix_winding(mesh)
    if mesh.is_watertight and _signed_volume(mesh) < 0:
        mesh.invert()
    return mesh


def _signed_volume(mesh: trimesh.Trimesh) -> float:
    """Six times the volume: positive when the faces wind counter-clockwise seen from outside."""
    corners = mesh.vertices[mesh.faces]
    return np.einsum("ij,ij->", corners[:, 0], np.cross(corners[:, 1], corners[:, 2]))


def fit_unit_cube(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Centre the bounding box on the origin and scale its longest side to 1.

    Backends already deliver y-up meshes (glTF's convention), so no rotation is needed.
    """
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    mesh.apply_scale(1.0 / mesh.extents.max())
    return mesh


def drop_colours(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """For "Geometry": a plain surface, and decimation needs no colours carried over."""
    mesh.visual = ColorVisuals(mesh)
    return mesh


class FaceReducer:
    """Quadric decimation down to ``max_faces``. Decimation drops the colours: each new vertex
    takes that of the nearest original vertex."""

    def __init__(self, max_faces: int):
        self.max_faces = max_faces

    def __call__(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        if len(mesh.faces) <= self.max_faces:
            reduced = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False)
        else:
            reduced = mesh.simplify_quadric_decimation(face_count=self.max_faces)
        if _is_coloured(mesh):
            _, nearest = mesh.kdtree.query(reduced.vertices)
            reduced.visual = ColorVisuals(reduced, vertex_colors=mesh.visual.vertex_colors[nearest])
        return reduced


class Texturer:
    """The material: a coloured mesh's colours baked into a ``texture_size`` square base-colour
    texture over a UV atlas, plain grey for a mesh without colours; "LowPoly" shades each face flat
    in one colour. ``enable_pbr`` picks ``PBR_FACTORS`` over ``PLAIN_FACTORS``."""

    def __init__(self, *, generate_type: str, enable_pbr: bool, texture_size: int):
        self.flat = generate_type == GenerateType.LOW_POLY
        self.factors = PBR_FACTORS if enable_pbr else PLAIN_FACTORS
        self.texture_size = texture_size

    def __call__(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        if not _is_coloured(mesh):
            plain = PBRMaterial(name="plain", baseColorFactor=UNCOLOURED, **self.factors)
            mesh.visual = TextureVisuals(material=plain)
            if self.flat:
                _shade_flat(mesh)
            return mesh
        source_vertex, faces, uv = texture.unwrap(mesh, self.texture_size)
        cut = trimesh.Trimesh(mesh.vertices[source_vertex], faces, process=False)
        corner_colours = mesh.visual.vertex_colors[source_vertex][faces][:, :, :3]
        if self.flat:
            corner_colours[:] = corner_colours.mean(axis=1, keepdims=True).round()
            uv = _shade_flat(cut, uv)
        material = PBRMaterial(
            name="textured",
            baseColorTexture=texture.bake(uv, cut.faces, corner_colours, self.texture_size),
            baseColorFactor=(255, 255, 255, 255),
            **self.factors,
        )
        cut.visual = TextureVisuals(uv=uv, material=material)
        return cut


CLEAN_UP: tuple[MeshStep, ...] = (
    remove_degenerate_faces,
    FloaterRemover(),
    fix_winding,
    fit_unit_cube,
)


def post_processed(mesh: trimesh.Trimesh, steps: Iterable[MeshStep]) -> trimesh.Trimesh:
    """``mesh`` through ``steps`` in order; ``mesh`` itself stays as it was."""
    mesh = mesh.copy()
    for step in steps:
        mesh = step(mesh)
    return mesh


def export_glb(mesh: trimesh.Trimesh, max_faces: int) -> bytes:
    """GLB bytes with normals, read back as a viewer would, so a broken export never reaches a
    user."""
    glb = mesh.export(file_type="glb", include_normals=True)
    try:
        faces = len(trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh").faces)
    except Exception as exc:
        raise ModelError("The 3D file could not be written. Try again.") from exc
    if not 0 < faces <= max_faces:
        raise ModelError(
            f"The 3D file came out with {faces} faces (allowed 1 to {max_faces}). Try again."
        )
    return glb


def prepare_mesh(mesh: trimesh.Trimesh, *, photo: PIL.Image.Image | None = None) -> trimesh.Trimesh:
    """The full-resolution mesh every finished model of a job is made from: cleaned, centred,
    scaled into the unit cube, with linear per-vertex colours when it has any.

    A mesh without colours (hunyuan3d) is painted from ``photo``, the cut-out it was made from,
    when one is given (see ``texture.paint_from_photo``).
    """
    mesh = post_processed(mesh, CLEAN_UP)
    colours = None
    if _is_coloured(mesh):
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
    generate_type: str = GenerateType.NORMAL,
    enable_pbr: bool = False,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> bytes:
    """Clean, centre, scale into the unit cube, decimate and texture ``mesh``; return GLB bytes.

    ``face_count`` caps the faces (``DEFAULT_FACE_COUNT`` when None). ``generate_type`` is one of
    ``GENERATE_TYPES``: "LowPoly" caps at ``LOW_POLY_FACE_COUNT`` too and shades each face flat in
    one colour; "Geometry" drops the colours for a plain grey surface; "Normal" and "Sketch" are
    finished alike. The colours, taken from per-vertex or per-face colours, are baked into a
    ``texture_size`` square base-colour texture over a UV atlas; a mesh without colours comes out
    grey and untextured.
    """
    finishing, max_faces = finishing_steps(
        face_count=face_count,
        generate_type=generate_type,
        enable_pbr=enable_pbr,
        texture_size=texture_size,
    )
    return export_glb(post_processed(mesh, [*CLEAN_UP, *finishing]), max_faces)


def finishing_steps(
    *, face_count: int | None, generate_type: str, enable_pbr: bool, texture_size: int
) -> tuple[list[MeshStep], int]:
    """The steps that finish a mesh already cleaned up (``CLEAN_UP``, as ``prepare_mesh`` leaves
    every kept mesh), and the most faces its GLB may have."""
    if generate_type not in GENERATE_TYPES:
        raise ValueError(f"Unknown generate_type {generate_type!r}; use one of {GENERATE_TYPES}")
    max_faces = face_count or DEFAULT_FACE_COUNT
    if generate_type == GenerateType.LOW_POLY:
        max_faces = min(max_faces, LOW_POLY_FACE_COUNT)
    steps = [
        *([drop_colours] if generate_type == GenerateType.GEOMETRY else []),
        FaceReducer(max_faces),
        Texturer(generate_type=generate_type, enable_pbr=enable_pbr, texture_size=texture_size),
    ]
    return steps, max_faces


def _is_coloured(mesh: trimesh.Trimesh) -> bool:
    return mesh.visual.kind in ("vertex", "face")


def _shade_flat(mesh: trimesh.Trimesh, uv: np.ndarray | None = None) -> np.ndarray | None:
    """Give every face its own vertices, so normals are per face; returns the new vertices' UVs."""
    corners = mesh.faces.reshape(-1)
    mesh.vertices = mesh.vertices[corners]  # vertex i now belongs to face i // 3
    mesh.faces = np.arange(len(corners)).reshape(-1, 3)
    return None if uv is None else uv[corners]
