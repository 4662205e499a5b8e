"""Texture maps: a UV atlas (xatlas) and a baked base-colour texture, and colours painted from a
photo.

Many viewers and importers ignore glTF vertex colours (AR Quick Look, most game engines), so every
coloured mesh leaves the worker with a ``baseColorTexture`` instead. Colours stay linear on meshes
(glTF's vertex colours are) and become sRGB in the texture (glTF's base-colour textures are).
"""

import numpy as np
import PIL.Image
import scipy.sparse
import trimesh
import xatlas
from scipy import ndimage

# Empty texels between charts, so that bilinear filtering and mipmaps never mix two charts.
ATLAS_PADDING = 4
# A surface point sees the camera when it is no further than this (in unit-cube sizes) behind
# the nearest surface along its line of sight.
VISIBILITY_TOLERANCE = 0.01
DEPTH_MAP_SIZE = 512


def unwrap(mesh: trimesh.Trimesh, texture_size: int) -> tuple[trimesh.Trimesh, np.ndarray]:
    """``mesh`` cut along the atlas seams, and each new vertex's UV (origin bottom left, trimesh's
    convention). ``result.metadata["source_vertex"][i]`` is the vertex of ``mesh`` that vertex
    ``i`` of the result was cut from."""
    atlas = xatlas.Atlas()
    atlas.add_mesh(mesh.vertices, mesh.faces)
    packing = xatlas.PackOptions()
    packing.resolution = texture_size
    packing.padding = ATLAS_PADDING
    atlas.generate(xatlas.ChartOptions(), packing)
    source_vertex, faces, uv = atlas[0]
    cut = trimesh.Trimesh(mesh.vertices[source_vertex], faces, process=False)
    cut.metadata["source_vertex"] = source_vertex
    return cut, uv


def bake(
    uv: np.ndarray, faces: np.ndarray, corner_colours: np.ndarray, texture_size: int
) -> PIL.Image.Image:
    """The texture whose texels are the colours interpolated over each face.

    ``corner_colours`` (faces, 3, 3) are linear RGB bytes at each face's corners: a face with three
    equal corners is flat. Texels outside every chart take the nearest chart texel's colour, so
    that filtering at a chart's edge never pulls in black.
    """
    pixels = np.column_stack([uv[:, 0], 1 - uv[:, 1]]) * texture_size
    texel, face, weights = rasterize(pixels, faces, (texture_size, texture_size))
    colour = np.einsum("nk,nkc->nc", weights, corner_colours[face].astype(np.float64))
    image = np.zeros((texture_size * texture_size, 3))
    image[texel] = colour
    covered = np.zeros(texture_size * texture_size, dtype=bool)
    covered[texel] = True
    covered = covered.reshape(texture_size, texture_size)
    image = image.reshape(texture_size, texture_size, 3)
    _, (rows, columns) = ndimage.distance_transform_edt(~covered, return_indices=True)
    srgb = linear_to_srgb(image[rows, columns] / 255)
    return PIL.Image.fromarray(np.round(srgb * 255).astype(np.uint8), "RGB")


def rasterize(points: np.ndarray, faces: np.ndarray, shape: tuple[int, int]):
    """Every (pixel, face) pair where a pixel centre lies in a 2-D triangle.

    ``points`` are (x, y) in pixels, ``shape`` (height, width). Returns the flat pixel indices,
    the faces, and the barycentric weights of the pixel centres (n, 3).
    """
    height, width = shape
    corners = points[faces]  # (f, 3, 2)
    low = np.clip(np.floor(corners.min(axis=1) - 0.5).astype(np.int64), 0, [width - 1, height - 1])
    high = np.clip(np.ceil(corners.max(axis=1) - 0.5).astype(np.int64), 0, [width - 1, height - 1])
    spans = high - low + 1
    counts = spans[:, 0] * spans[:, 1]
    face = np.repeat(np.arange(len(faces)), counts)
    # The k-th candidate pixel of each face's bounding box, row by row.
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    x = low[face, 0] + k % spans[face, 0]
    y = low[face, 1] + k // spans[face, 0]
    a, b, c = (corners[face, i] for i in range(3))
    centre = np.column_stack([x, y]) + 0.5
    area = _cross(b - a, c - a)
    with np.errstate(divide="ignore", invalid="ignore"):
        wa = _cross(b - centre, c - centre) / area
        wb = _cross(c - centre, a - centre) / area
        wc = 1 - wa - wb
    inside = (area != 0) & (wa >= -1e-9) & (wb >= -1e-9) & (wc >= -1e-9)
    weights = np.column_stack([wa, wb, wc])[inside]
    return (y * width + x)[inside], face[inside], weights


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]


def paint_from_photo(mesh: trimesh.Trimesh, image_rgba: PIL.Image.Image) -> np.ndarray:
    """Linear RGBA vertex colours for an uncoloured y-up mesh that faces +z, as its photo showed it.

    The cut-out's box is laid over the mesh's front (x right, y up); the vertices the camera sees
    take the photo's colour in front of them. The hidden ones take the colours of their visible
    neighbours, spread over the surface (as Hunyuan3D-2's own texture pipeline fills the parts
    its views miss); a piece of the mesh that shows nowhere takes the mean visible colour.
    """
    alpha = np.asarray(image_rgba.getchannel("A"))
    rows, columns = np.nonzero(alpha > 127)
    if len(rows) == 0:
        return np.tile(np.array([180, 180, 180, 255], dtype=np.uint8), (len(mesh.vertices), 1))
    box_low = np.array([columns.min(), rows.min()], dtype=float)
    box_size = np.array([columns.max() + 1, rows.max() + 1]) - box_low
    low, size = mesh.bounds[0, :2], np.maximum(mesh.extents[:2], 1e-9)
    # x right, y down in the photo; x right, y up on the mesh.
    share = (mesh.vertices[:, :2] - low) / size
    pixels = box_low + np.column_stack([share[:, 0], 1 - share[:, 1]]) * box_size

    colours = photo_colours(image_rgba, pixels)
    visible = _seen_from_front(mesh)
    return _spread(mesh, colours, visible)


def _seen_from_front(mesh: trimesh.Trimesh) -> np.ndarray:
    """Which vertices an orthographic camera on +z sees: the ones not behind the nearest surface."""
    size = DEPTH_MAP_SIZE
    low, extent = mesh.bounds[0, :2], mesh.extents[:2].max()
    pixels = (mesh.vertices[:, :2] - low) / extent * (size - 1)
    pixels[:, 1] = size - 1 - pixels[:, 1]
    pixel, face, weights = rasterize(pixels, mesh.faces, (size, size))
    depth = np.full(size * size, -np.inf)
    np.maximum.at(depth, pixel, np.einsum("nk,nk->n", weights, mesh.vertices[mesh.faces[face], 2]))
    column, row = np.clip(np.round(pixels - 0.5), 0, size - 1).astype(np.int64).T
    # Four neighbouring depth texels: a vertex on a silhouette edge sits between pixel centres.
    nearest = np.full(len(mesh.vertices), -np.inf)
    for dx in (0, 1):
        for dy in (0, 1):
            index = np.clip(row + dy, 0, size - 1) * size + np.clip(column + dx, 0, size - 1)
            nearest = np.maximum(nearest, depth[index])
    return mesh.vertices[:, 2] >= nearest - VISIBILITY_TOLERANCE * mesh.extents.max()


def _spread(mesh: trimesh.Trimesh, colours: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Give every unknown vertex the mean colour of its known neighbours, ring after ring."""
    if not known.any():
        return colours
    edges = mesh.edges_unique
    n = len(mesh.vertices)
    adjacency = scipy.sparse.coo_matrix(
        (
            np.ones(2 * len(edges)),
            (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]]),
        ),
        shape=(n, n),
    ).tocsr()
    values = np.where(known[:, None], colours[:, :3].astype(np.float64), 0.0)
    known = known.copy()
    while not known.all():
        counts = adjacency @ known.astype(np.float64)
        reached = ~known & (counts > 0)
        if not reached.any():
            break
        values[reached] = (adjacency @ values)[reached] / counts[reached, None]
        known |= reached
    values[~known] = values[known].mean(axis=0)
    return np.column_stack([np.round(values), np.full(n, 255)]).astype(np.uint8)


def photo_colours(image_rgba: PIL.Image.Image, pixels: np.ndarray) -> np.ndarray:
    """The photo's colour at each point (x, y in image pixels), as linear RGBA bytes.

    The outline's half-transparent pixels carry the background's colour, so every pixel takes the
    colour of the nearest opaque one.
    """
    image = np.asarray(image_rgba)
    alpha = image[..., 3]
    _, nearest = ndimage.distance_transform_edt(alpha < min(250, alpha.max()), return_indices=True)
    rgb = image[nearest[0], nearest[1], :3]
    height, width = rgb.shape[:2]
    columns = np.clip(pixels[:, 0].astype(int), 0, width - 1)
    rows = np.clip(pixels[:, 1].astype(int), 0, height - 1)
    linear = srgb_to_linear(rgb[rows, columns] / 255.0)
    return np.column_stack([np.round(linear * 255), np.full(len(pixels), 255)]).astype(np.uint8)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    return np.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * np.clip(linear, 0, None) ** (1 / 2.4) - 0.055
    )
