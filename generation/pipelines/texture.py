"""Texture maps: a UV atlas (uvunwrap) and a baked base-colour texture, and colours painted from
a photo.

Many viewers and importers ignore glTF vertex colours (AR Quick Look, most game engines), so every
coloured mesh leaves the worker with a ``baseColorTexture`` instead. Colours stay linear on meshes
(glTF's vertex colours are) and become sRGB in the texture (glTF's base-colour textures are).
"""

import itertools

import numpy as np
import PIL.Image
import scipy.sparse
import scipy.sparse.csgraph
import trimesh
import uvunwrap
from scipy import ndimage

# Empty texels between charts, so that bilinear filtering and mipmaps never mix two charts.
ATLAS_PADDING = 4
# A surface point sees the camera when it is no further than this (in unit-cube sizes) behind
# the nearest surface along its line of sight.
VISIBILITY_TOLERANCE = 0.01
DEPTH_MAP_SIZE = 512
# A pixel centre on a triangle's edge belongs to it (both faces of a shared edge draw it).
EDGE_TOLERANCE = 1e-9


def unwrap(mesh: trimesh.Trimesh, texture_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A UV atlas of ``mesh``, cut along its seams: for each vertex of the cut mesh, the vertex of
    ``mesh`` it was cut from; the cut mesh's faces (those of ``mesh``, in order); and each cut
    vertex's UV (origin bottom left, trimesh's convention).

    uvunwrap grows charts within a normal cone, flattens each by least-squares conformal maps and
    packs them into one square page at the highest texel density that fits, ``ATLAS_PADDING``
    texels apart, with the same texel size along u and v.
    """
    atlas = uvunwrap.generate(
        [uvunwrap.Mesh(mesh.vertices, mesh.faces)],
        page_size=texture_size,
        padding=ATLAS_PADDING,
    )
    out = atlas.meshes[0]
    source_vertex = np.frombuffer(out.xref, dtype=np.uint32).astype(np.int64)
    faces = np.frombuffer(out.indices, dtype=np.uint32).astype(np.int64).reshape(-1, 3)
    uv = np.frombuffer(out.uv, dtype=np.float32).astype(np.float64).reshape(-1, 2)
    return source_vertex, faces, uv


def bake(
    uv: np.ndarray, faces: np.ndarray, corner_colours: np.ndarray, texture_size: int
) -> PIL.Image.Image:
    """The texture whose texels are the colours interpolated over each face.

    ``corner_colours`` (faces, 3, 3) are linear RGB bytes at each face's corners: a face with three
    equal corners is flat. Each chart's padding continues the colours of its edge faces (their
    linear interpolation carried on, within the colours of their corners), so that filtering and
    mipmaps across a chart's edge read what the face itself would show, and the two sides of a
    seam look alike. Texels beyond the padding take the colour of a nearest chart texel (in
    chessboard distance, a sixth of the Euclidean transform's time): never black.
    """
    size = texture_size
    pixels = np.column_stack([uv[:, 0], 1 - uv[:, 1]]) * size
    texel, face, weights = rasterize(pixels, faces, (size, size))
    sliver_texel, sliver = _sliver_texels(pixels, faces, face, size)
    covered = np.zeros(size * size, dtype=bool)
    covered[texel] = covered[sliver_texel] = True
    distance, (rows, columns) = ndimage.distance_transform_cdt(
        ~covered.reshape(size, size), metric="chessboard", return_indices=True
    )
    distance, nearest = distance.ravel(), (rows * size + columns).ravel()
    face_at = np.zeros(size * size, dtype=np.int64)
    face_at[sliver_texel], face_at[texel] = sliver, face
    padding = np.nonzero((distance > 0) & (distance <= ATLAS_PADDING))[0]
    # Outside its face, a face's interpolation carried on.
    outside, outside_face = np.r_[sliver_texel, padding], np.r_[sliver, face_at[nearest[padding]]]
    centres = np.column_stack([outside % size, outside // size]) + 0.5
    corners = corner_colours[outside_face].astype(np.float64)
    carried = np.einsum("nk,nkc->nc", _barycentric(pixels[faces[outside_face]], centres), corners)
    image = np.zeros((size * size, 3), dtype=np.uint8)
    image[outside] = _srgb_bytes(carried.clip(corners.min(axis=1), corners.max(axis=1)))
    image[texel] = _srgb_bytes(np.einsum("nk,nkc->nc", weights, corner_colours[face].astype(float)))
    image = image[np.where(distance > ATLAS_PADDING, nearest, np.arange(size * size))]
    return PIL.Image.fromarray(image.reshape(size, size, 3), "RGB")


def _sliver_texels(pixels: np.ndarray, faces: np.ndarray, drawn: np.ndarray, size: int):
    """For each face with an area but no texel centre in it (a sliver, or a chart of slivers),
    the texels under its corners, and the face, three times."""
    corners = pixels[faces]
    area = _cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    slivers = np.nonzero((np.bincount(drawn, minlength=len(faces)) == 0) & (area != 0))[0]
    spots = np.clip(corners[slivers].astype(np.int64), 0, size - 1).reshape(-1, 2)
    return spots[:, 1] * size + spots[:, 0], np.repeat(slivers, 3)


def _srgb_bytes(linear_bytes: np.ndarray) -> np.ndarray:
    return np.round(linear_to_srgb(linear_bytes / 255) * 255).astype(np.uint8)


def _barycentric(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The weights (n, 3) of ``points`` (n, 2) in ``triangles`` (n, 3, 2), inside or not."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area = _cross(b - a, c - a)
    wa = _cross(b - points, c - points) / area
    wb = _cross(c - points, a - points) / area
    return np.column_stack([wa, wb, 1 - wa - wb])


def rasterize(points: np.ndarray, faces: np.ndarray, shape: tuple[int, int]):
    """Every (pixel, face) pair where a pixel centre lies in a 2-D triangle.

    ``points`` are (x, y) in pixels, ``shape`` (height, width). Returns the flat pixel indices,
    the faces, and the barycentric weights of the pixel centres (n, 3).

    Scanline by scanline: each corner's weight is affine in the pixel centre, so on one row of
    pixels a triangle covers the span where no weight is negative, found in closed form; only
    the pixels inside are enumerated.
    """
    height, width = shape
    x, y = points[:, 0][faces.T], points[:, 1][faces.T]  # (3, f): corner by corner
    area = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])
    drawn = np.nonzero(area)[0]
    x, y, area = x[:, drawn], y[:, drawn], area[drawn]
    # Corner i's weight at (px, py) is px * slope_x[i] + py * slope_y[i] + at_origin[i]: the share
    # of the triangle's area that the point spans with the edge opposite corner i. Arrays are
    # (3, ...), corner by corner, so that every sum over corners adds three contiguous rows.
    x1, y1, x2, y2 = x[[1, 2, 0]], y[[1, 2, 0]], x[[2, 0, 1]], y[[2, 0, 1]]
    slope_x, slope_y, at_origin = (y1 - y2) / area, (x2 - x1) / area, (x1 * y2 - y1 * x2) / area
    low = np.clip(np.floor(np.minimum.reduce(y) - 0.5), 0, height - 1).astype(np.int64)
    high = np.clip(np.ceil(np.maximum.reduce(y) - 0.5), 0, height - 1).astype(np.int64)
    row_face, row_y = _runs(low, high - low + 1)
    # Each weight along a row's centre line is offset + px * slope.
    offset = slope_y[:, row_face] * (row_y + 0.5) + at_origin[:, row_face]
    slope = slope_x[:, row_face]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -(offset + EDGE_TOLERANCE) / slope
    left = np.maximum.reduce(np.where(slope > 0, bound, -np.inf))
    right = np.minimum.reduce(np.where(slope < 0, bound, np.inf))
    # A little slack against rounding at the span's ends; the weights below decide.
    first = np.clip(np.ceil(left - 0.5 - 1e-6), 0, width - 1).astype(np.int64)
    last = np.clip(np.floor(right - 0.5 + 1e-6), -1, width - 1).astype(np.int64)
    count = np.maximum(last - first + 1, 0)
    count[np.logical_or.reduce((slope == 0) & (offset < -EDGE_TOLERANCE))] = (
        0  # outside a level edge
    )
    row, column = _runs(first, count)
    centre = column + 0.5
    wa = offset[0, row] + slope[0, row] * centre
    wb = offset[1, row] + slope[1, row] * centre
    wc = 1 - wa - wb
    inside = (wa >= -EDGE_TOLERANCE) & (wb >= -EDGE_TOLERANCE) & (wc >= -EDGE_TOLERANCE)
    weights = np.column_stack([wa, wb, wc])[inside]
    return (row_y[row] * width + column)[inside], drawn[row_face[row]][inside], weights


def _runs(first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs of ``count[i]`` consecutive integers from ``first[i]``: each member's run, and the
    member."""
    run = np.repeat(np.arange(len(first)), count)
    step = np.arange(len(run)) - np.repeat(np.cumsum(count) - count, count)
    return run, first[run] + step


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The 2-D cross products of the last axis' (x, y) pairs."""
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


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
    """Give every unknown vertex the mean colour of its known neighbours, ring after ring.

    A vertex's ring is its distance in edges from the nearest known vertex (one breadth-first
    search from all of them), so each ring reads only the edges that come in from the ring
    before it.
    """
    if not known.any():
        return colours
    n = len(mesh.vertices)
    edges = mesh.edges_unique
    source, target = np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]]
    graph = scipy.sparse.csr_matrix((np.ones(len(source)), (source, target)), shape=(n, n))
    ring = scipy.sparse.csgraph.dijkstra(
        graph, indices=np.nonzero(known)[0], unweighted=True, min_only=True
    )
    inward = ring[source] + 1 == ring[target]
    order = np.argsort(ring[target][inward], kind="stable")
    source, target = source[inward][order], target[inward][order]
    ends = np.searchsorted(ring[target], np.arange(ring[np.isfinite(ring)].max() + 1), "right")
    values = np.where(known[:, None], colours[:, :3].astype(np.float64), 0.0)
    for begin, end in itertools.pairwise(ends):
        into = target[begin:end]
        count = np.bincount(into, minlength=n)
        reached = np.nonzero(count)[0]
        for channel in range(3):
            total = np.bincount(into, weights=values[source[begin:end], channel], minlength=n)
            values[reached, channel] = total[reached] / count[reached]
    unreached = ~np.isfinite(ring)
    values[unreached] = values[~unreached].mean(axis=0)
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
