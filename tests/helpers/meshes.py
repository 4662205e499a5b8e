"""The GLBs the pipelines write, as a viewer reads them, and a small orthographic z-buffer renderer
for tests: the front view (along -z, y up) of a unit-cube mesh, unlit, in sRGB, from its vertex
colours or from its base-colour texture."""

import io

import numpy as np
import trimesh

from generation.pipelines.texture import linear_to_srgb, rasterize

SIZE = 256


def front_view(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """The sRGB colour (SIZE, SIZE, 3, 0-255) of each pixel, and which pixels the mesh covers.

    A textured mesh is sampled at its interpolated UVs (nearest texel); a vertex-coloured one
    interpolates its linear colours, shown in sRGB as a viewer would."""
    pixels = (mesh.vertices[:, :2] * [1, -1] + 0.5) * (SIZE - 1)
    pixel, face, weights = rasterize(pixels, mesh.faces, (SIZE, SIZE))
    depth = np.einsum("nk,nk->n", weights, mesh.vertices[mesh.faces[face], 2])
    # The nearest surface wins: sort by depth, keep each pixel's last (largest z) sample.
    order = np.argsort(depth, kind="stable")
    pixel, face, weights = pixel[order], face[order], weights[order]
    _, last = np.unique(pixel[::-1], return_index=True)
    keep = len(pixel) - 1 - last
    pixel, face, weights = pixel[keep], face[keep], weights[keep]

    material = getattr(mesh.visual, "material", None)
    texture = getattr(material, "baseColorTexture", None)
    if texture is not None:
        uv = np.einsum("nk,nkc->nc", weights, mesh.visual.uv[mesh.faces[face]])
        image = np.asarray(texture.convert("RGB"), dtype=np.float64)
        height, width = image.shape[:2]
        columns = np.clip((uv[:, 0] * width).astype(int), 0, width - 1)
        rows = np.clip(((1 - uv[:, 1]) * height).astype(int), 0, height - 1)
        colour = image[rows, columns]
    else:
        linear = mesh.visual.vertex_colors[:, :3] / 255.0
        colour = 255 * linear_to_srgb(np.einsum("nk,nkc->nc", weights, linear[mesh.faces[face]]))
    frame = np.zeros((SIZE * SIZE, 3))
    covered = np.zeros(SIZE * SIZE, dtype=bool)
    frame[pixel], covered[pixel] = colour, True
    return frame.reshape(SIZE, SIZE, 3), covered.reshape(SIZE, SIZE)


def load_glb(glb: bytes) -> trimesh.Trimesh:
    """The GLB's only mesh, as a viewer reads it (the scene's geometry keeps vertex attributes)."""
    (mesh,) = trimesh.load(io.BytesIO(glb), file_type="glb", process=False).geometry.values()
    return mesh
