"""GET /api/3d/jobs/:jobId/download?format=…: every format read back by its reference reader
(trimesh for OBJ, STL, PLY and 3MF; usd-core and its ARKit compliance checker for USDZ), made on
the first request, kept in storage and deleted with the job."""

import contextlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

from generation.pipelines import finish_mesh, prepare_mesh, save_source_mesh
from jobs import formats, storage
from jobs.models import Job, JobState
from jobs.services import clients
from tests.factories import JobFactory, UserFactory

FACES = 1280


@pytest.fixture(scope="module")
def model_files():
    """A finished model (textured GLB) and its full-resolution source: a sphere, red on top."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    top = sphere.vertices[:, 1] > 0
    colours = np.where(top[:, None], [220, 20, 20, 255], [20, 20, 220, 255]).astype(np.uint8)
    source = prepare_mesh(
        trimesh.Trimesh(sphere.vertices, sphere.faces, vertex_colors=colours, process=False)
    )
    return finish_mesh(source, face_count=FACES, texture_size=256), save_source_mesh(source)


@pytest.fixture
def finished_job(model_files, user):
    glb, source = model_files
    return JobFactory(
        user=user,
        state=JobState.COMPLETED,
        result_glb=storage.save("jobs/test", "model.glb", glb),
        source_mesh=storage.save("jobs/test", "source.ply", source),
    )


def download(client, job, format_name=None):
    query = {} if format_name is None else {"format": format_name}
    return client.get(f"/api/3d/jobs/{job.pk}/download", query)


def read_back(format_name: str, data: bytes, folder: Path):
    """The downloaded file as its reference reader sees it."""
    if format_name == "obj":
        zipfile.ZipFile(io.BytesIO(data)).extractall(folder)
        return trimesh.load(folder / "model.obj", process=False)
    scene = trimesh.load(io.BytesIO(data), file_type=format_name, process=False)
    if isinstance(scene, trimesh.Scene):
        (scene,) = scene.geometry.values()
    return scene


def red_on_top(colours: np.ndarray, vertices: np.ndarray) -> bool:
    top, bottom = vertices[:, 1] > 0.25, vertices[:, 1] < -0.25
    return (
        colours[top, 0].mean() > 200 > colours[bottom, 0].mean() and colours[bottom, 2].mean() > 200
    )


@pytest.mark.parametrize("format_name", ["glb", "obj", "stl", "ply", "3mf"])
def test_each_format_reads_back_with_every_face_and_its_colours_where_the_format_has_them(
    s3_media, auth_client, finished_job, format_name, tmp_path
):
    response = download(auth_client(finished_job.user), finished_job, format_name)

    assert response.status_code == 200
    assert response["Content-Type"] == formats.FORMATS[format_name].content_type
    assert response["Content-Disposition"].startswith("attachment; filename=")
    mesh = read_back(format_name, response.content, tmp_path)
    assert len(mesh.faces) == FACES
    if format_name in ("glb", "obj"):
        texture = (
            mesh.visual.material.baseColorTexture
            if format_name == "glb"
            else mesh.visual.material.image
        )
        assert texture is not None and texture.size == (256, 256)
        assert red_on_top(mesh.visual.to_color().vertex_colors, mesh.vertices)
    elif format_name == "ply":
        assert red_on_top(mesh.visual.vertex_colors, mesh.vertices)


def test_usdz_passes_the_arkit_compliance_checker_with_its_texture(
    s3_media, auth_client, finished_job, tmp_path
):
    from pxr import Sdr, Tf, Usd, UsdGeom, UsdShade, UsdUtils

    response = download(auth_client(finished_job.user), finished_job, "usdz")

    assert response.status_code == 200
    path = tmp_path / "model.usdz"
    path.write_bytes(response.content)
    # usd-core's wheel ships no shader definitions (OpenUSD issue 3983): the shader registry's
    # first look-up raises that they are missing, later ones find no node. So the checker's
    # ShaderPropertyTypeConformanceChecker finds none for UsdPreviewSurface and friends: that
    # rule, and only that rule and only for that reason, cannot pass here.
    with contextlib.suppress(Tf.ErrorException):
        Sdr.Registry().GetShaderNodeByIdentifier("UsdPreviewSurface")
    checker = UsdUtils.ComplianceChecker(arkit=True)
    checker.CheckCompliance(str(path))
    unrelated = [
        failure
        for failure in checker.GetFailedChecks()
        if not (
            "has invalid shader node" in failure
            and "ShaderPropertyTypeConformanceChecker" in failure
        )
    ]
    assert checker.GetErrors() == [] and unrelated == []
    with zipfile.ZipFile(path) as package:
        names = package.namelist()
    assert names[0].endswith(".usdc") and any(name.endswith(".png") for name in names)

    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    (mesh,) = [prim for prim in stage.Traverse() if prim.IsA(UsdGeom.Mesh)]
    assert len(UsdGeom.Mesh(mesh).GetFaceVertexCountsAttr().Get()) == FACES
    material, _ = UsdShade.MaterialBindingAPI(mesh).ComputeBoundMaterial()
    textures = [
        prim
        for prim in material.GetPrim().GetChildren()
        if UsdShade.Shader(prim).GetShaderId() == "UsdUVTexture"
    ]
    assert textures and str(UsdShade.Shader(textures[0]).GetInput("file").Get().path).endswith(
        ".png"
    )


def test_a_format_is_made_once_kept_in_storage_and_deleted_with_the_job(
    media, auth_client, finished_job, django_capture_on_commit_callbacks
):
    client = auth_client(finished_job.user)
    first = download(client, finished_job, "stl")
    finished_job.refresh_from_db()
    stored_name = finished_job.downloads["stl"]
    updated_at = finished_job.updated_at

    second = download(client, finished_job, "stl")

    assert first.content == second.content
    finished_job.refresh_from_db()
    assert finished_job.downloads == {"stl": stored_name} and media.exists(stored_name)
    assert finished_job.updated_at == updated_at  # downloading is no change to the job
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/3d/jobs/{finished_job.pk}").status_code == 200
    assert not media.exists(stored_name) and not media.exists(finished_job.source_mesh)


def test_glb_is_the_default_and_the_status_lists_every_format(
    local_media, auth_client, finished_job
):
    client = auth_client(finished_job.user)

    assert download(client, finished_job).content == storage.read(finished_job.result_glb)
    body = client.get(f"/api/3d/status/{finished_job.pk}").json()

    assert [entry["format"] for entry in body["formats"]] == [
        "glb",
        "obj",
        "stl",
        "ply",
        "3mf",
        "usdz",
        "fbx",
    ]
    assert body["formats"][1]["url"] == (
        f"http://testserver/api/3d/jobs/{finished_job.pk}/download?format=obj"
    )
    assert set(body) == {"job", "queue", "formats", "printability"}
    assert body["job"]["status"] == "DONE"


def test_downloads_follow_the_status_ownership_rules(
    local_media, auth_client, api_client, finished_job
):
    someone_else = download(auth_client(UserFactory()), finished_job, "stl")
    anonymous = download(api_client, finished_job, "stl")
    staff = download(auth_client(UserFactory(is_staff=True)), finished_job, "stl")

    assert someone_else.status_code == 403
    assert someone_else.json() == {"error": "You don't have permission to download this job"}
    assert anonymous.status_code == 403 and staff.status_code == 200
    assert (
        download(api_client, JobFactory(user=None), "stl").status_code == 409
    )  # ownerless: anyone


def test_unknown_formats_unfinished_jobs_and_unknown_ids_are_clear_errors(
    local_media, auth_client, finished_job, user
):
    client = auth_client(user)
    running = JobFactory(user=user, state=JobState.PROCESSING)

    unknown_format = download(client, finished_job, "step")
    unfinished = download(client, running, "obj")
    unknown_job = client.get("/api/3d/jobs/7d3c2f9e-0000-4000-8000-000000000000/download")

    assert unknown_format.status_code == 400
    assert unknown_format.json() == {
        "error": "Unknown format 'step'; use one of glb, obj, stl, ply, 3mf, usdz, fbx"
    }
    assert unfinished.status_code == 409
    assert unfinished.json() == {"error": "This job has no finished model to download"}
    assert unknown_job.status_code == 404
    finished_job.refresh_from_db()
    assert finished_job.downloads == {}


def test_a_job_deleted_while_its_download_is_made_leaves_no_file(
    local_media, finished_job, django_capture_on_commit_callbacks
):
    stale = Job.objects.get(pk=finished_job.pk)
    Job.objects.filter(pk=finished_job.pk).delete()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(clients.NoModel):
        clients.download(stale, "ply")

    assert local_media.names(storage.job_folder(finished_job.pk)) == set()


def test_storage_down_is_a_503(s3_down, auth_client, user):
    job = JobFactory(user=user, state=JobState.COMPLETED, result_glb="jobs/x/model.glb")

    response = download(auth_client(user), job, "obj")

    assert response.status_code == 503
