"""Several views carved into one solid: a box's three dimensions from its front and side, a
mug's depth from its side (no longer a copy of its width), each side coloured from its view."""

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest

from generation.pipelines import BadInputImage
from generation.pipelines.image_to_3d.silhouette import SilhouetteBackend
from generation.pipelines.image_to_3d.visual_hull import carve

SIZE = 256
RED, BLUE, GREEN, YELLOW = (
    (200, 30, 30, 255),
    (30, 30, 200, 255),
    (30, 160, 30, 255),
    (220, 200, 0, 255),
)


def rectangle(width, height, colour):
    """A level, centred photo's cut-out of a box side ``width`` x ``height`` pixels."""
    image = PIL.Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    left, top = (SIZE - width) // 2, (SIZE - height) // 2
    PIL.ImageDraw.Draw(image).rectangle((left, top, left + width - 1, top + height - 1), colour)
    return image


def mug(with_handle: bool):
    """The mug seen from the front (its handle on the right) or from its side (the body only)."""
    image = PIL.Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = PIL.ImageDraw.Draw(image)
    draw.rectangle((78, 60, 158, 196), fill=RED)
    if with_handle:
        draw.ellipse((140, 90, 200, 166), fill=RED)
        draw.ellipse((156, 106, 184, 150), fill=(0, 0, 0, 0))
        draw.rectangle((78, 90, 158, 166), fill=RED)
    return image


def test_a_box_from_its_front_and_side_has_its_three_dimensions():
    # 60 x 100 x 30 (width, height, depth): the front shows 120 x 200 pixels, the side 60 x 200.
    mesh = carve({"front": rectangle(120, 200, RED), "left": rectangle(60, 200, BLUE)})

    width, height, depth = mesh.extents / mesh.extents[1]
    assert width == pytest.approx(0.6, rel=0.05) and depth == pytest.approx(0.3, rel=0.05)
    assert height == 1 and mesh.is_watertight


def test_each_side_is_coloured_from_the_view_that_faces_it():
    views = {
        "front": rectangle(120, 200, RED),
        "left": rectangle(60, 200, BLUE),
        "back": rectangle(120, 200, GREEN),
        "right": rectangle(60, 200, YELLOW),
    }
    mesh = carve(views)

    colours, normals = mesh.visual.vertex_colors[:, :3].astype(int), mesh.vertex_normals
    for direction, colour in (((0, 0, 1), RED), ((-1, 0, 0), BLUE), ((0, 0, -1), GREEN)):
        side = normals @ np.array(direction) > 0.9
        # Linear RGB bytes (the texture module's photo_colours): the view's hue dominates.
        assert np.argmax(colours[side].mean(axis=0)) == np.argmax(colour[:3])
    right = normals @ np.array([1, 0, 0]) > 0.9
    red, green, blue = colours[right].mean(axis=0)
    assert red > 100 and green > 100 and blue < 20  # yellow


def test_a_mugs_depth_comes_from_its_side_not_its_width():
    one_view = SilhouetteBackend(grid_size=64)(mug(with_handle=True), seed=0)
    two_views = carve({"front": mug(with_handle=True), "left": mug(with_handle=False)})

    one_width, _, one_depth = one_view.extents
    width, _, depth = two_views.extents
    assert one_depth == pytest.approx(one_width, rel=0.5)  # inflated: round, handle and all
    # The body is 80 pixels across, the mug with its handle 122: its depth is the body's.
    assert depth / width == pytest.approx(80 / 122, rel=0.05)


def test_the_silhouette_backend_takes_views_and_one_view_stays_its_inflated_solid():
    backend = SilhouetteBackend(grid_size=64)
    front = mug(with_handle=True)

    assert backend.takes_views
    alone = backend.from_views({"front": front}, seed=0)
    inflated = backend(front, seed=0)
    np.testing.assert_allclose(alone.vertices, inflated.vertices)
    carved = backend.from_views({"front": front, "right": mug(with_handle=False)}, seed=0)
    assert carved.extents[2] < 0.8 * carved.extents[0]


def test_views_must_include_the_front_and_name_known_sides():
    with pytest.raises(ValueError, match="front"):
        carve({"left": rectangle(60, 200, BLUE)})
    with pytest.raises(ValueError, match="front"):
        carve({"front": rectangle(60, 200, BLUE), "top": rectangle(60, 60, BLUE)})


def test_an_empty_view_is_a_clear_bad_input():
    empty = PIL.Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))

    with pytest.raises(BadInputImage, match="A view's cut-out is empty"):
        carve({"front": rectangle(120, 200, RED), "back": empty})
