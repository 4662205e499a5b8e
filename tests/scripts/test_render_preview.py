"""The pictures `make demo` puts beside its models (scripts/render_preview.py): a finished GLB,
drawn from the front and from three quarters, shows the model in its texture's colours."""

import numpy as np
import trimesh

from generation.pipelines import finish_mesh, prepare_mesh
from scripts import render_preview

RED, BLUE = (220, 20, 20, 255), (20, 20, 220, 255)  # linear vertex colours, baked into a texture


def test_a_finished_model_is_drawn_in_its_colours_from_the_front_and_three_quarters():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    colours = np.where(sphere.vertices[:, 1:2] > 0, RED, BLUE).astype(np.uint8)
    glb = finish_mesh(
        prepare_mesh(trimesh.Trimesh(sphere.vertices, sphere.faces, vertex_colors=colours)),
        face_count=None,
        texture_size=256,
    )

    picture = np.asarray(render_preview.picture(glb)).astype(int)

    panel = render_preview.PANEL
    assert picture.shape == (panel + 24, 2 * panel, 3)  # two panels, labelled underneath
    for left in (0, panel):  # the front, then three quarters
        view = picture[:panel, left : left + panel]
        top, bottom = view[panel // 3, panel // 2], view[2 * panel // 3, panel // 2]
        assert top[0] > 2 * top[2], f"the upper half is red: {top}"
        assert bottom[2] > 2 * bottom[0], f"the lower half is blue: {bottom}"
        assert tuple(view[5, 5]) == render_preview.BACKGROUND
