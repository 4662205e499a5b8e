"""Several views of one object (front, and any of left, back, right) carved into its visual hull:
the cells every view sees as the object, smoothed as the one-view silhouette solid is, and each
side coloured from the view that faces it.

Views are taken as orthographic and level, all of one object standing upright, so its height
is the one measure they share: each silhouette is scaled to the grid by its own height, and its
width then gives the object's width (front, back) or depth (left, right). Cameras, in the mesh's
frame (glTF: x right, y up, z towards the front camera): front at +z, back at -z, left at -x (on
the front camera's left; its image runs from the back to the front), right at +x.
"""

import numpy as np
import PIL.Image
import trimesh
from scipy import ndimage

from ..errors import BadInputImage
from ..marching_cubes import marching_cubes_table
from ..texture import photo_colours
from .silhouette import SMOOTHING, _marching_cubes

VIEWS = ("front", "left", "back", "right")
# Per view: the mesh axis its image's x runs along (0 x, 2 z), that direction's sign, and the
# direction from the object towards its camera.
CAMERAS = {
    "front": (0, 1, np.array([0.0, 0.0, 1.0])),
    "back": (0, -1, np.array([0.0, 0.0, -1.0])),
    "left": (2, 1, np.array([-1.0, 0.0, 0.0])),
    "right": (2, -1, np.array([1.0, 0.0, 0.0])),
}
MARGIN = 2


class Silhouette:
    """One view's cut-out, cropped to the object and measured in grid cells of its height."""

    def __init__(self, image_rgba: PIL.Image.Image, cells_high: int):
        alpha = image_rgba.getchannel("A")
        box = alpha.point(lambda a: 255 if a > 127 else 0).getbbox()
        if box is None:
            raise BadInputImage("A view's cut-out is empty: use a photo of the object from there.")
        self.image = image_rgba
        self.cells_high = cells_high
        self.left, self.top, right, bottom = box
        self.scale = cells_high / (bottom - self.top)  # cells per pixel
        self.width_cells = (right - self.left) * self.scale
        self.alpha = np.asarray(alpha, dtype=np.float32) / 255

    def pixels(self, across: np.ndarray, up: np.ndarray) -> np.ndarray:
        """Image (x, y) of grid coordinates measured across the view from its left and up."""
        return np.column_stack(
            [self.left + across / self.scale, self.top + (self.cells_high - up) / self.scale]
        )

    def coverage(self, across: np.ndarray, up: np.ndarray) -> np.ndarray:
        xy = self.pixels(across, up)
        columns = np.clip(np.floor(xy[:, 0]).astype(int), 0, self.alpha.shape[1] - 1)
        rows = np.clip(np.floor(xy[:, 1]).astype(int), 0, self.alpha.shape[0] - 1)
        outside = (xy[:, 0] < 0) | (xy[:, 0] >= self.alpha.shape[1]) | (xy[:, 1] < 0)
        return np.where(outside, 0.0, self.alpha[rows, columns])


def carve(views: dict[str, PIL.Image.Image], cells_high: int = 96) -> trimesh.Trimesh:
    """The visual hull of ``views`` (cut-outs by view name, ``front`` required), y up, its height
    1, with per-vertex colours from the view each vertex faces most."""
    if "front" not in views or set(views) - set(VIEWS):
        raise ValueError(f"views must include front, and only {', '.join(VIEWS)}")
    silhouettes = {name: Silhouette(image, cells_high) for name, image in views.items()}
    width = _extent(silhouettes, ("front", "back"))
    depth = _extent(silhouettes, ("left", "right"))
    if depth is None:
        depth = width  # one view says nothing about the depth: as deep as it is wide
    shape = np.ceil([width, cells_high, depth]).astype(int) + 2 * MARGIN
    x, y, z = np.meshgrid(*[np.arange(n) + 0.5 - MARGIN for n in shape], indexing="ij")
    # Cell centres from the box's corner: x across the front view, z from the back towards it.
    inside = np.ones(shape, dtype=np.float32)
    for name, silhouette in silhouettes.items():
        axis, sign, _ = CAMERAS[name]
        along = x if axis == 0 else z
        extent = width if axis == 0 else depth
        across = along if sign > 0 else extent - along
        # Scaled to this view's own width, so views that disagree slightly still meet.
        across = across * silhouette.width_cells / extent
        cover = silhouette.coverage(across.reshape(-1), y.reshape(-1)).reshape(shape)
        inside = np.minimum(inside, cover)
    # Half a cell of blur: the hull's faces come out flat instead of in the grid's steps (a flat
    # face stays where the 0.5 level crosses it).
    field = ndimage.gaussian_filter(inside, sigma=0.7) - 0.5
    field[:MARGIN], field[-MARGIN:] = -0.5, -0.5
    field[:, :MARGIN], field[:, -MARGIN:] = -0.5, -0.5
    field[:, :, :MARGIN], field[:, :, -MARGIN:] = -0.5, -0.5
    cases, masks = marching_cubes_table()
    vertices, faces = _marching_cubes(field, cases.numpy(), masks.numpy())
    grid_points = vertices - MARGIN + 0.5  # back to cell coordinates from the box's corner
    mesh = trimesh.Trimesh(grid_points, faces, process=False)
    trimesh.smoothing.filter_taubin(mesh, **SMOOTHING)
    mesh.visual = trimesh.visual.ColorVisuals(
        mesh, vertex_colors=_colours(mesh, silhouettes, width, depth)
    )
    centre = np.array([width, cells_high, depth]) / 2
    mesh.apply_translation(-centre)
    mesh.apply_scale(1 / cells_high)
    return mesh


def _extent(silhouettes: dict[str, Silhouette], names: tuple[str, str]) -> float | None:
    widths = [silhouettes[name].width_cells for name in names if name in silhouettes]
    return float(np.mean(widths)) if widths else None


def _colours(mesh, silhouettes, width, depth) -> np.ndarray:
    """Each vertex coloured from the view its normal faces most (the views it turns away from see
    another side of the object)."""
    normals = mesh.vertex_normals
    names = list(silhouettes)
    facing = np.stack([normals @ CAMERAS[name][2] for name in names], axis=1)
    best = np.argmax(facing, axis=1)
    colours = np.zeros((len(mesh.vertices), 4), dtype=np.uint8)
    x, y, z = mesh.vertices.T
    for index, name in enumerate(names):
        chosen = best == index
        if not chosen.any():
            continue
        axis, sign, _ = CAMERAS[name]
        silhouette = silhouettes[name]
        along, extent = (x, width) if axis == 0 else (z, depth)
        across = (along if sign > 0 else extent - along) * silhouette.width_cells / extent
        pixels = silhouette.pixels(across[chosen], y[chosen])
        colours[chosen] = photo_colours(silhouette.image, pixels)
    return colours
