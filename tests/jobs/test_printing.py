"""The print report, the repairs, the size on the build plate, and the colour 3MF read back by
lib3mf (the 3MF consortium's library)."""

import lib3mf
import numpy as np
import pytest
import trimesh

from jobs import printing
from tests.helpers.meshes import BLUE, RED, textured_sphere


def sphere(radius=1.0, centre=(0, 0, 0)):
    return trimesh.creation.icosphere(4, radius=radius).apply_translation(centre)


def test_a_closed_model_stands_on_the_plate_at_its_height_and_is_not_repaired():
    printed, report = printing.for_print(sphere(), height_mm=50)

    assert report == printing.PrintReport(
        watertight=True,
        manifold=True,
        self_intersecting=False,
        thin_walls=False,
        volume_mm3=pytest.approx(4 / 3 * np.pi * 25**3, rel=0.01),
        repaired=False,
    )
    np.testing.assert_allclose(printed.bounds, [[-25, -25, 0], [25, 25, 50]], atol=1e-6)


def test_the_model_turns_from_glb_y_up_to_the_printers_z_up():
    tall = trimesh.creation.box((1, 4, 2))  # 4 tall in glTF's Y

    printed = printing.standing(tall, height_mm=40)

    np.testing.assert_allclose(printed.extents, [10, 20, 40], atol=1e-6)
    assert printed.bounds[0][2] == pytest.approx(0)


def test_a_model_with_a_hole_is_reported_and_repaired_to_watertight():
    whole = sphere()
    holed = trimesh.Trimesh(whole.vertices, whole.faces[20:], process=False)

    printed, report = printing.for_print(holed, height_mm=50)

    assert (report.watertight, report.manifold, report.repaired) == (False, False, True)
    assert printed.is_watertight and printing.is_manifold(printed)
    assert report.volume_mm3 == pytest.approx(4 / 3 * np.pi * 25**3, rel=0.02)


def test_crossing_parts_are_united_keeping_both_volumes():
    crossing = trimesh.util.concatenate([sphere(), sphere(centre=(0.5, 0, 0))])

    printed, report = printing.for_print(crossing, height_mm=50)

    assert report.watertight and report.self_intersecting and report.repaired
    assert not printing.self_intersecting(printed)
    # Two spheres of radius 25 whose centres are 12.5 apart: both, less the lens they share.
    r, d = 25.0, 12.5
    union = 2 * 4 / 3 * np.pi * r**3 - np.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
    assert report.volume_mm3 == pytest.approx(union, rel=0.02)


def test_separate_parts_are_kept():
    apart = trimesh.util.concatenate([sphere(), sphere(centre=(3, 0, 0))])

    _, report = printing.for_print(apart, height_mm=50)

    assert not report.repaired
    assert report.volume_mm3 == pytest.approx(2 * 4 / 3 * np.pi * 25**3, rel=0.01)


def test_a_plate_thinner_than_the_minimum_wall_is_reported():
    plate = trimesh.creation.box((10, 10, 0.2))  # standing: 0.2 mm thick at 10 mm high...
    _, thin = printing.for_print(plate, height_mm=10, min_wall_mm=0.8)
    _, thick = printing.for_print(plate, height_mm=200, min_wall_mm=0.8)  # ...4 mm at 200 mm

    assert thin.thin_walls and not thick.thin_walls


@pytest.mark.parametrize("height", [0.5, 10_001])
def test_heights_outside_the_range_are_refused(height):
    with pytest.raises(ValueError, match="between 1 and 10000"):
        printing.standing(sphere(), height_mm=height)


def test_the_report_uses_the_apis_names():
    report = printing.PrintReport(True, True, False, False, 12.5, False)

    assert report.as_api() == {
        "watertight": True,
        "manifold": True,
        "selfIntersecting": False,
        "thinWalls": False,
        "volumeMm3": 12.5,
        "repaired": False,
    }


def read_3mf(data: bytes):
    """The first mesh object's vertices, triangles and each triangle corner's colour, as lib3mf
    reads them."""
    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.QueryReader("3mf").ReadFromBuffer(data)
    objects = model.GetMeshObjects()
    assert objects.MoveNext()
    mesh = objects.GetCurrentMeshObject()
    vertices = np.array([list(v.Coordinates) for v in mesh.GetVertices()])
    colours = []
    for triangle in mesh.GetAllTriangleProperties():
        group = model.GetColorGroupByID(triangle.ResourceID)
        corners = [group.GetColor(pid) for pid in triangle.PropertyIDs]
        colours.append([(c.Red, c.Green, c.Blue) for c in corners])
    triangles = np.array([list(t.Indices) for t in mesh.GetTriangleIndices()])
    return vertices, triangles, np.array(colours)


def near(colours, colour):
    return np.all(np.abs(colours - colour) <= 255 / (printing.COLOUR_LEVELS - 1), axis=-1)


def test_the_colour_3mf_is_read_back_by_lib3mf_with_its_colours():
    model = textured_sphere()
    printed = printing.standing(model, height_mm=30)
    colours = model.visual.to_color().vertex_colors

    vertices, triangles, corner_colours = read_3mf(printing.colour_3mf(printed, colours))

    np.testing.assert_array_equal(triangles, printed.faces)
    np.testing.assert_allclose(vertices, printed.vertices, atol=1e-4)
    top = vertices[printed.faces].mean(axis=1)[:, 2] > 20  # the red half is on top
    bottom = vertices[printed.faces].mean(axis=1)[:, 2] < 10
    assert near(corner_colours[top], RED).all()
    assert near(corner_colours[bottom], BLUE).all()


def test_thin_walls_are_found_on_a_surface_manifold_refuses_too():
    plate = printing.standing(trimesh.creation.box((10, 10, 0.2)), height_mm=10)
    open_plate = trimesh.Trimesh(plate.vertices, plate.faces[1:])
    thick = printing.standing(trimesh.creation.box((10, 10, 4)), height_mm=10)
    open_thick = trimesh.Trimesh(thick.vertices, thick.faces[1:])

    assert printing.thin_walls(open_plate, 0.8) and not printing.thin_walls(open_thick, 0.8)
