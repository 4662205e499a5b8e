"""A finished model's GLB in the other formats users download: OBJ, STL, PLY, 3MF, USDZ and FBX.

Django-free and torch-free: the web service converts on the first download of a format (see
``jobs.services.clients.download``), so this module must never import torch. Conversions read the
GLB with trimesh; USDZ is written with Pixar's usd-core, an ARKit package (AR Quick Look); FBX by
Blender (``jobs.fbx``, in a child process: the heavy one). A quad model (``jobs.quads``) comes
with its quad OBJ, from which the formats that hold quads are made. STL and 3MF are for printing
(``jobs.printing``): standing on z = 0, in millimetres, repaired to watertight when they are not.
"""

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import trimesh

from jobs import fbx, printing, quads


@dataclass(frozen=True)
class Format:
    name: str
    extension: str  # of the downloaded file
    content_type: str
    description: str


FORMATS = {
    format.name: format
    for format in (
        Format(
            "glb",
            "glb",
            "model/gltf-binary",
            "glTF binary with its base-colour texture (the job's result)",
        ),
        Format(
            "obj",
            "zip",
            "application/zip",
            "Wavefront OBJ with its MTL material and PNG texture, zipped",
        ),
        Format("stl", "stl", "model/stl", "binary STL: geometry only, the format has no colour"),
        Format(
            "ply",
            "ply",
            "application/x-ply",
            "binary PLY with the texture sampled to vertex colours",
        ),
        Format(
            "3mf",
            "3mf",
            "model/3mf",
            "3MF (3D printing) in millimetres, coloured with the materials extension",
        ),
        Format("usdz", "usdz", "model/vnd.usdz+zip", "USDZ for AR Quick Look, with its texture"),
        Format("fbx", "fbx", "application/octet-stream", "binary FBX with its embedded texture"),
    )
}
# The formats that store a quad model's quads as they are; the others hold its triangulation.
QUAD_FORMATS = ("obj", "fbx", "usdz")
# The formats a printer reads: sized by ``height_mm``, standing on z = 0, repaired.
PRINT_FORMATS = ("stl", "3mf")
# The formats that take seconds to make (Blender): made on the cpu queue once a job is finished.
HEAVY_FORMATS = ("fbx",)
DEFAULT_FORMAT = "glb"
OBJ_STEM = "model"


class ConversionFailed(Exception):
    """The GLB could not be read or written in the format asked for."""


def convert(
    glb: bytes,
    format_name: str,
    *,
    quad_obj: bytes | None = None,
    height_mm: float = printing.DEFAULT_HEIGHT_MM,
) -> bytes:
    """``glb`` (a finished job's model) in ``format_name``, one of ``FORMATS``.

    ``quad_obj``: a quad model's quads (``quads.obj_zip``), which the QUAD_FORMATS are made from.
    ``height_mm``: the printed height of the PRINT_FORMATS.
    """
    if format_name == "glb":
        return glb
    try:
        if quad_obj is not None and format_name in QUAD_FORMATS:
            return _QUAD_WRITERS[format_name](quad_obj)
        if format_name == "fbx":
            return fbx.write_fbx(glb, ".glb")
        mesh = single_mesh(glb)
        if format_name in PRINT_FORMATS:
            return _PRINT_WRITERS[format_name](mesh, height_mm)
        return _WRITERS[format_name](mesh)
    except ConversionFailed:
        raise
    except Exception as exc:  # the writers raise many kinds; all mean "could not convert"
        raise ConversionFailed(f"The model could not be converted to {format_name}: {exc}") from exc


def print_report(glb: bytes, height_mm: float = printing.DEFAULT_HEIGHT_MM, **options):
    """The finished model's ``printing.PrintReport`` (``options``: ``min_wall_mm``)."""
    return printing.for_print(single_mesh(glb), height_mm, **options)[1]


def single_mesh(glb: bytes) -> trimesh.Trimesh:
    scene = trimesh.load(io.BytesIO(glb), file_type="glb", process=False)
    meshes = list(scene.geometry.values()) if isinstance(scene, trimesh.Scene) else [scene]
    if len(meshes) != 1:
        raise ConversionFailed(f"Expected one mesh in the model, found {len(meshes)}")
    return meshes[0]


def base_colour_texture(mesh: trimesh.Trimesh) -> PIL.Image.Image | None:
    material = getattr(mesh.visual, "material", None)
    image = getattr(material, "baseColorTexture", None)
    uv = getattr(mesh.visual, "uv", None)
    return image.convert("RGB") if image is not None and uv is not None else None


def _obj_zip(mesh: trimesh.Trimesh) -> bytes:
    text, files = trimesh.exchange.obj.export_obj(
        mesh, include_normals=True, return_texture=True, mtl_name=f"{OBJ_STEM}.mtl"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{OBJ_STEM}.obj", text)
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _stl(mesh: trimesh.Trimesh, height_mm: float) -> bytes:
    printed, _ = printing.for_print(mesh, height_mm)
    return trimesh.exchange.stl.export_stl(printed)


def _ply(mesh: trimesh.Trimesh) -> bytes:
    coloured = mesh.copy()
    if base_colour_texture(mesh) is not None:
        coloured.visual = mesh.visual.to_color()
    return trimesh.exchange.ply.export_ply(coloured, encoding="binary", include_attributes=False)


def _3mf(mesh: trimesh.Trimesh, height_mm: float) -> bytes:
    """Coloured by the model's colour at each corner: the printed model's corners are joined at
    the texture's seams, or new where it was repaired, so each takes the colour of the nearest
    corner of the model as it was."""
    printed, _ = printing.for_print(mesh, height_mm)
    colours = _vertex_colours(mesh)
    if colours is not None:
        _, nearest = printing.standing(mesh, height_mm).kdtree.query(printed.vertices)
        colours = colours[nearest]
    return printing.colour_3mf(printed, colours)


def _vertex_colours(mesh: trimesh.Trimesh) -> np.ndarray | None:
    if base_colour_texture(mesh) is not None:
        return np.asarray(mesh.visual.to_color().vertex_colors)
    if mesh.visual.kind == "vertex":
        return np.asarray(mesh.visual.vertex_colors)
    return None


def _usdz(mesh: trimesh.Trimesh, quad_model: quads.QuadMesh | None = None) -> bytes:
    """A Y-up, metre-unit USDZ holding the mesh, a UsdPreviewSurface and the PNG texture.

    ARKit's rules: the package's first file is a USD layer, textures are PNG or JPEG inside the
    package, shaders are UsdPreviewSurface, UsdUVTexture and UsdPrimvarReader_float2 only.
    """
    from pxr import Gf, Kind, Sdf, Usd, UsdGeom, UsdShade, UsdUtils, Vt

    image = base_colour_texture(mesh)
    faces = mesh.faces if quad_model is None else quad_model.quads
    with tempfile.TemporaryDirectory(prefix="usdz-") as folder:
        layer_path = str(Path(folder) / f"{OBJ_STEM}.usdc")
        stage = Usd.Stage.CreateNew(layer_path)
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        root = UsdGeom.Xform.Define(stage, "/Model")
        Usd.ModelAPI(root).SetKind(Kind.Tokens.component)
        stage.SetDefaultPrim(root.GetPrim())

        geometry = UsdGeom.Mesh.Define(stage, "/Model/Geometry")
        geometry.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(mesh.vertices.astype(np.float32)))
        geometry.CreateFaceVertexCountsAttr(
            Vt.IntArray.FromNumpy(np.full(len(faces), faces.shape[1], dtype=np.int32))
        )
        geometry.CreateFaceVertexIndicesAttr(
            Vt.IntArray.FromNumpy(faces.reshape(-1).astype(np.int32))
        )
        geometry.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(mesh.vertex_normals.astype(np.float32)))
        geometry.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
        geometry.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        geometry.CreateExtentAttr(
            Vt.Vec3fArray([Gf.Vec3f(*corner) for corner in mesh.bounds.astype(float)])
        )

        material = UsdShade.Material.Define(stage, "/Model/Material")
        surface = UsdShade.Shader.Define(stage, "/Model/Material/Surface")
        surface.CreateIdAttr("UsdPreviewSurface")
        pbr = mesh.visual.material if hasattr(mesh.visual, "material") else None
        surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(
            float(getattr(pbr, "metallicFactor", None) or 0.0)
        )
        roughness = getattr(pbr, "roughnessFactor", None)
        surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(
            float(1.0 if roughness is None else roughness)
        )
        material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
        diffuse = surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f)
        if image is None:
            factor = getattr(pbr, "baseColorFactor", None)
            colour = (
                (np.asarray(factor[:3], dtype=float) / 255)
                if factor is not None
                else np.full(3, 0.7)
            )
            diffuse.Set(Gf.Vec3f(*colour.tolist()))
        else:
            image.save(Path(folder) / "texture.png")
            uv = np.asarray(mesh.visual.uv, dtype=np.float32)
            st = UsdGeom.PrimvarsAPI(geometry).CreatePrimvar(
                "st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex
            )
            st.Set(Vt.Vec2fArray.FromNumpy(uv))
            reader = UsdShade.Shader.Define(stage, "/Model/Material/TextureCoordinates")
            reader.CreateIdAttr("UsdPrimvarReader_float2")
            reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
            reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)
            texture = UsdShade.Shader.Define(stage, "/Model/Material/BaseColour")
            texture.CreateIdAttr("UsdUVTexture")
            texture.CreateInput("file", Sdf.ValueTypeNames.Asset).Set("texture.png")
            texture.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
            texture.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(
                reader.ConnectableAPI(), "result"
            )
            texture.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
            diffuse.ConnectToSource(texture.ConnectableAPI(), "rgb")
        UsdShade.MaterialBindingAPI.Apply(geometry.GetPrim()).Bind(material)
        stage.GetRootLayer().Save()

        package = Path(folder) / f"{OBJ_STEM}.usdz"
        if not UsdUtils.CreateNewARKitUsdzPackage(Sdf.AssetPath(layer_path), str(package)):
            raise ConversionFailed("usd-core could not write the USDZ package")
        return package.read_bytes()


def _quad_usdz(quad_obj: bytes) -> bytes:
    """The quad model's USDZ: its triangulation gives the normals and material, its quads the
    faces."""
    quad_model = quads.from_obj_zip(quad_obj)
    return _usdz(quad_model.triangulated(), quad_model)


_WRITERS = {"obj": _obj_zip, "ply": _ply, "usdz": _usdz}
_PRINT_WRITERS = {"stl": _stl, "3mf": _3mf}
_QUAD_WRITERS = {
    "obj": lambda quad_obj: quad_obj,
    "fbx": lambda quad_obj: fbx.write_fbx(quad_obj, ".zip"),
    "usdz": _quad_usdz,
}
