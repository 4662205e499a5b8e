"""A finished model made ready for a 3D printer: checked, repaired, sized in millimetres, coloured.

Django-free and torch-free, like ``jobs.formats`` (which writes the ``stl`` and ``3mf`` downloads
through ``for_print``). The model stands on z = 0, Z up (printers' slicers), its height
``height_mm``. Repairs are Manifold's (crossing closed parts united) and MeshFix's (holes
closed). The colour 3MF is written by lib3mf, the 3MF consortium's own
library, with the materials extension's colour group (one colour per triangle corner).
"""

from dataclasses import asdict, dataclass

import manifold3d
import numpy as np
import pymeshfix
import trimesh

DEFAULT_HEIGHT_MM = 100.0
MIN_HEIGHT_MM, MAX_HEIGHT_MM = 1.0, 10_000.0
# Walls thinner than this break or do not print on common FDM printers (two 0.4 mm lines).
DEFAULT_MIN_WALL_MM = 0.8
# A model counts as having thin walls when more than this share of its sampled surface is thinner.
THIN_WALL_SHARE = 0.01
WALL_SAMPLES = 2000
# Colour 3MF: each channel rounded to one of this many levels, so the colour group stays small.
COLOUR_LEVELS = 32


@dataclass(frozen=True)
class PrintReport:
    """What ``/api/3d/status`` shows as ``printability`` (camelCase there)."""

    watertight: bool
    manifold: bool
    self_intersecting: bool
    thin_walls: bool
    volume_mm3: float
    repaired: bool

    def as_api(self) -> dict:
        names = {"self_intersecting": "selfIntersecting", "thin_walls": "thinWalls"}
        names |= {"volume_mm3": "volumeMm3"}
        return {names.get(key, key): value for key, value in asdict(self).items()}


def standing(mesh: trimesh.Trimesh, height_mm: float = DEFAULT_HEIGHT_MM) -> trimesh.Trimesh:
    """A copy of ``mesh`` (glTF's Y up, any unit) turned Z up, scaled to ``height_mm`` tall and
    standing on z = 0, centred on the origin in x and y."""
    if not MIN_HEIGHT_MM <= height_mm <= MAX_HEIGHT_MM:
        raise ValueError(f"height_mm must be between {MIN_HEIGHT_MM:g} and {MAX_HEIGHT_MM:g}")
    result = mesh.copy()
    result.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    low, high = result.bounds
    if high[2] - low[2] <= 0:
        raise ValueError("The model is flat: it has no height to print")
    result.apply_translation([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, -low[2]])
    result.apply_scale(height_mm / (high[2] - low[2]))
    return result


def repaired(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A watertight copy of ``mesh`` without self-intersections. Geometry only: both repairs
    make new triangles, so the texture does not come along.

    Closed parts that only cross each other are united by Manifold (the union keeps every part's
    volume); a surface with holes or broken edges is closed by MeshFix, which also cuts away
    crossing triangles."""
    if mesh.is_watertight:
        parts = [
            manifold3d.Manifold(_manifold_mesh(part)) for part in mesh.split(only_watertight=False)
        ]
        union = manifold3d.Manifold.batch_boolean(parts, manifold3d.OpType.Add).to_mesh()
        return trimesh.Trimesh(union.vert_properties[:, :3], union.tri_verts, process=True)
    fix = pymeshfix.MeshFix(np.asarray(mesh.vertices, dtype=float), np.asarray(mesh.faces))
    fix.repair(remove_smallest_components=False)  # a model may be several parts
    return trimesh.Trimesh(fix.points, fix.faces, process=True)


def self_intersecting(mesh: trimesh.Trimesh) -> bool:
    tin = pymeshfix.PyTMesh()
    tin.set_quiet(1)
    tin.load_array(np.asarray(mesh.vertices, dtype=float), np.asarray(mesh.faces, dtype=np.int32))
    # Proper crossings only: triangles that merely share a vertex or edge do not count.
    return len(tin.select_intersecting_triangles(justproper=True)) > 0


def is_manifold(mesh: trimesh.Trimesh) -> bool:
    """Every edge between exactly two triangles that agree on their winding."""
    edges = mesh.edges_sorted
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return bool(len(edges) and np.all(counts == 2) and mesh.is_winding_consistent)


def thin_walls(mesh: trimesh.Trimesh, min_wall_mm: float, seed: int = 0) -> bool:
    """Whether more than THIN_WALL_SHARE of the surface is thinner than ``min_wall_mm``: from
    points sampled on it, whether the surface behind them, straight inwards, is that near.

    Manifold's ray casts (its own bounding-volume hierarchy) on a closed model; trimesh's, a
    hundred times slower, on one Manifold does not take."""
    points, faces = trimesh.sample.sample_surface(mesh, WALL_SAMPLES, seed=seed)
    inwards = -mesh.face_normals[faces]
    start = points + inwards * 1e-6 * mesh.scale  # off the surface the point lies on
    solid = manifold3d.Manifold(_manifold_mesh(mesh))
    if solid.status() == manifold3d.Error.NoError:
        ends = points + inwards * min_wall_mm
        thin = sum(
            bool(solid.ray_cast(tuple(a), tuple(b))) for a, b in zip(start, ends, strict=True)
        )
    else:
        hits, rays, _ = mesh.ray.intersects_location(start, inwards, multiple_hits=False)
        thin = int((np.linalg.norm(hits - points[rays], axis=1) < min_wall_mm).sum())
    return thin > THIN_WALL_SHARE * len(points)


def _manifold_mesh(mesh: trimesh.Trimesh) -> manifold3d.Mesh:
    return manifold3d.Mesh(
        vert_properties=np.asarray(mesh.vertices, dtype=np.float32),
        tri_verts=np.asarray(mesh.faces, dtype=np.uint32),
    )


def for_print(
    mesh: trimesh.Trimesh,
    height_mm: float = DEFAULT_HEIGHT_MM,
    min_wall_mm: float = DEFAULT_MIN_WALL_MM,
) -> tuple[trimesh.Trimesh, PrintReport]:
    """``mesh`` standing at ``height_mm``, repaired when it is not watertight, and the report on
    the model as it was (``repaired`` says whether the printed one was changed). Geometry only:
    corners that a texture's seams split are joined first, as a printer sees one surface."""
    placed = standing(mesh, height_mm)
    sized = trimesh.Trimesh(placed.vertices, placed.faces, process=True)
    watertight, manifold = sized.is_watertight, is_manifold(sized)
    crossing = self_intersecting(sized)
    needs_repair = not (watertight and manifold) or crossing
    printed = repaired(sized) if needs_repair else sized
    if needs_repair:
        if not len(printed.faces):
            raise ValueError("The model encloses no volume: it cannot be repaired into a solid")
        # A repair may cut away crossing or loose parts: the model stands again, at its height.
        low, high = printed.bounds
        printed.apply_translation([0, 0, -low[2]])
        printed.apply_scale(height_mm / (high[2] - low[2]))
    report = PrintReport(
        watertight=bool(watertight),
        manifold=manifold,
        self_intersecting=crossing,
        thin_walls=thin_walls(printed, min_wall_mm),
        volume_mm3=round(float(abs(printed.volume)), 1),
        repaired=needs_repair,
    )
    return printed, report


def colour_3mf(mesh: trimesh.Trimesh, colours: np.ndarray | None) -> bytes:
    """``mesh`` (millimetres) as a 3MF package written by lib3mf, coloured with the materials
    extension when ``colours`` (one RGB(A) row per vertex, 0-255) is given."""
    import lib3mf

    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.SetUnit(lib3mf.ModelUnit.MilliMeter)
    part = model.AddMeshObject()
    part.SetName("model")
    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
    triangles = np.ascontiguousarray(mesh.faces, dtype=np.uint32)
    part.SetGeometry(
        (lib3mf.Position * len(vertices)).from_buffer_copy(vertices.tobytes()),
        (lib3mf.Triangle * len(triangles)).from_buffer_copy(triangles.tobytes()),
    )
    if colours is not None:
        levels = np.round(np.asarray(colours)[:, :3] / 255 * (COLOUR_LEVELS - 1)).astype(int)
        palette, per_vertex = np.unique(levels, axis=0, return_inverse=True)
        group = model.AddColorGroup()
        ids = np.array(
            [
                group.AddColor(
                    wrapper.RGBAToColor(
                        *[int(round(c * 255 / (COLOUR_LEVELS - 1))) for c in row], 255
                    )
                )
                for row in palette
            ]
        )
        corner_ids = ids[per_vertex.reshape(-1)][triangles]
        group_id = group.GetResourceID()
        part.SetAllTriangleProperties(
            [
                lib3mf.TriangleProperties(group_id, (lib3mf.ctypes.c_uint32 * 3)(*row))
                for row in corner_ids
            ]
        )
        part.SetObjectLevelProperty(group_id, int(corner_ids[0, 0]))
    model.AddBuildItem(part, wrapper.GetIdentityTransform())
    buffer = model.QueryWriter("3mf").WriteToBuffer()
    return bytes(buffer)
