"""A weight-free, CPU-only backend: the cut-out's silhouette inflated into a solid, painted with the
photo.

The solid is the union of the balls inscribed in the silhouette, each centred in the image plane:
a disc becomes a sphere, a bar a cylinder, a ring a torus. Its front and back are mirror images,
and the photo is projected onto both along the viewing axis.
"""

from collections.abc import Callable

import numpy as np
import PIL.Image
import torch
import trimesh
from scipy import ndimage

from ..denoising import OnDenoisingStep
from ..errors import BadInputImage
from ..marching_cubes import marching_cubes_table
from ..texture import photo_colours
from .base import ImageTo3DBackend, register_backend

PHASES = 4  # reported as its denoising steps: it has no sampling loop
MARGIN = 2  # empty cells around the silhouette, so the surface closes inside the grid
# Taubin smoothing evens out the grid's small steps without shrinking the solid.
SMOOTHING = {"lamb": 0.5, "nu": 0.52, "iterations": 10}


@register_backend
class SilhouetteBackend(ImageTo3DBackend):
    name = "silhouette"

    def __init__(self, *, grid_size: int = 128, thickness: float = 1.0):
        """``grid_size``: cells along the silhouette's longer side (cost grows with its cube).
        ``thickness``: depth relative to the inscribed balls; 1.0 turns a disc into a sphere."""
        if grid_size < 8 or thickness <= 0:
            raise ValueError("grid_size must be at least 8 and thickness positive")
        self.grid_size = grid_size
        self.thickness = thickness
        cases, masks = marching_cubes_table()
        self.cases, self.masks = cases.numpy(), masks.numpy()

    @classmethod
    def load(
        cls, model: str | None, device: torch.device, dtype: torch.dtype, **options
    ) -> "SilhouetteBackend":
        """Needs no weights and runs on the CPU: ``model``, ``device`` and ``dtype`` are ignored,
        and
        so are the sampling options (``steps``, ``guidance_scale``) one configuration gives every
        backend."""
        return cls(
            **{name: options[name] for name in ("grid_size", "thickness") if name in options}
        )

    def __call__(
        self,
        image_rgba: PIL.Image.Image,
        seed: int,
        on_denoising_step: OnDenoisingStep | None = None,
    ) -> trimesh.Trimesh:
        """The same solid for every ``seed``: there is nothing to sample."""
        report = on_denoising_step or (lambda done, total: None)
        alpha = image_rgba.getchannel("A")
        grid, to_pixels = _silhouette_grid(alpha, self.grid_size)
        squared_height = _squared_height(grid)
        report(1, PHASES)

        half_depth = np.sqrt(squared_height.max()) * self.thickness
        z = np.arange(-np.ceil(half_depth) - MARGIN, np.ceil(half_depth) + MARGIN + 1)
        # Positive inside the solid: |z| below the half-depth at (x, y).
        field = squared_height[:, :, None] - (z / self.thickness)[None, None, :] ** 2
        vertices, faces = _marching_cubes(field, self.cases, self.masks)
        pixels = to_pixels(vertices, z[0])
        report(2, PHASES)

        side = max(image_rgba.size)
        # Centred on the image, in image sides: x right, y up, z towards the viewer.
        positions = (pixels - [side / 2, side / 2, 0]) * [1, -1, 1] / side
        colours = photo_colours(image_rgba, pixels)
        mesh = trimesh.Trimesh(positions, faces, vertex_colors=colours, process=False)
        report(3, PHASES)

        trimesh.smoothing.filter_taubin(mesh, **SMOOTHING)
        report(4, PHASES)
        return mesh


def _silhouette_grid(alpha: PIL.Image.Image, grid_size: int) -> tuple[np.ndarray, Callable]:
    """The alpha of the object's box, ``grid_size`` cells along its longer side (never more than its
    pixels), with a clear margin; and the function that maps grid cells back to image pixels.

    The grid is indexed (column, row counted from the bottom), so that with depth as third axis it
    is
    a right-handed frame, like the mesh's.
    """
    box = alpha.point(lambda a: 255 if a > 127 else 0).getbbox()
    if box is None:
        raise BadInputImage(
            "The cut-out is empty. Use a photo of a single object on a plain background."
        )
    left, top, right, bottom = box
    scale = min(1.0, grid_size / max(right - left, bottom - top))
    width, height = max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale))
    box = (left, top, left + width / scale, top + height / scale)  # keeps one scale for both axes
    cells = np.asarray(
        alpha.resize((width, height), PIL.Image.Resampling.BOX, box=box), dtype=np.float32
    )
    grid = np.pad(cells[::-1].T / 255, MARGIN)

    def to_pixels(points: np.ndarray, first_depth: float) -> np.ndarray:
        """Grid indices (column, row from the bottom, depth index) to image pixels (x, y down,
        depth)."""
        column, row_up, depth = points.T
        x = left + (column - MARGIN + 0.5) / scale
        y = top + (height - 1 - (row_up - MARGIN) + 0.5) / scale
        return np.column_stack([x, y, (depth + first_depth) / scale])

    return grid, to_pixels


def _squared_height(coverage: np.ndarray) -> np.ndarray:
    """max over inside cells s of r(s)² - |p - s|², r(s) being the distance from s to the outline.

    Its square root is the half-depth of the union of inscribed balls; it is negative outside the
    silhouette. The maximum splits into one pass per axis.
    """
    inside = coverage > 0.5
    to_outside, nearest = ndimage.distance_transform_edt(inside, return_indices=True)
    # The outline runs where the coverage crosses one half: (0.5 - coverage) before an outside
    # cell's centre.
    radius = to_outside - (0.5 - coverage[nearest[0], nearest[1]])
    squared_radius = np.where(inside, radius**2, -np.inf).astype(np.float32)
    result = squared_radius
    for axis in (0, 1):
        n = inside.shape[axis]
        squared_offsets = (np.arange(n)[:, None] - np.arange(n)[None, :]).astype(np.float32) ** 2
        moved = np.moveaxis(result, axis, 0)  # (n, m): cells along the axis first
        result = np.moveaxis((moved[None, :, :] - squared_offsets[:, :, None]).max(axis=1), 0, axis)
    return result


def _marching_cubes(field: np.ndarray, cases: np.ndarray, masks: np.ndarray):
    """The closed surface where ``field`` (positive inside, negative on the grid's border) is zero.

    Returns vertices in grid indices and faces wound counter-clockwise seen from outside. ``cases``
    and ``masks`` are ``marching_cubes.marching_cubes_table``: corner c of a cube sits at offset
    (c & 1, c >> 1 & 1, c >> 2 & 1); edges 0-3 run along the first axis, 4-7 the second, 8-11 the
    third, the two other coordinates of their start counting up, the lower axis fastest.
    """
    shape = np.array(field.shape)
    inside = (field > 0).astype(np.uint8)
    bits = np.zeros(shape - 1, dtype=np.uint8)
    for corner in range(8):
        dx, dy, dz = corner & 1, corner >> 1 & 1, corner >> 2 & 1
        bits |= (
            inside[dx : dx + bits.shape[0], dy : dy + bits.shape[1], dz : dz + bits.shape[2]]
            << corner
        )
    cubes = np.argwhere((bits != 0) & (bits != 255))
    case = bits[tuple(cubes.T)]

    # Every grid edge gets one global id, so that neighbouring cubes share the vertex on it.
    axes = np.eye(3, dtype=np.int64)
    edge_shapes = [shape - axes[axis] for axis in range(3)]
    first_id = np.cumsum([0] + [np.prod(s) for s in edge_shapes])
    edge_ids = np.empty((len(cubes), 12), dtype=np.int64)
    for edge in range(12):
        axis, k = divmod(edge, 4)
        lower, upper = [a for a in range(3) if a != axis]
        start = cubes + (k & 1) * axes[lower] + (k >> 1) * axes[upper]
        edge_ids[:, edge] = first_id[axis] + np.ravel_multi_index(tuple(start.T), edge_shapes[axis])
    triangles = np.take_along_axis(edge_ids, cases[case].reshape(len(cubes), 15), axis=1)
    used_ids, faces = np.unique(triangles.reshape(-1, 5, 3)[masks[case]], return_inverse=True)

    vertices = np.empty((len(used_ids), 3))
    for axis in range(3):
        on_axis = (used_ids >= first_id[axis]) & (used_ids < first_id[axis + 1])
        start = np.column_stack(
            np.unravel_index(used_ids[on_axis] - first_id[axis], edge_shapes[axis])
        )
        here, there = field[tuple(start.T)], field[tuple((start + axes[axis]).T)]
        vertices[on_axis] = start + (here / (here - there))[:, None] * axes[axis]
    return vertices, faces.reshape(-1, 3)
