"""POST /api/3d/upload-mesh, and a finished model's FBX, quads, print heights and print report
through the job API, as a client sees them."""

import io
import zipfile

import pytest
import trimesh
import ufbx
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import fbx, quads, storage
from jobs.models import Job, JobKind, JobState
from tests.factories import JobFactory
from tests.helpers.meshes import glb, textured_sphere

pytestmark = pytest.mark.django_db(transaction=True)

SPHERE_FACES = len(textured_sphere().faces)


def upload(client, data: bytes, filename="model.glb", **fields):
    mesh = SimpleUploadedFile(filename, data, content_type="application/octet-stream")
    return client.post("/api/3d/upload-mesh", {"mesh": mesh, **fields}, format="multipart")


def stored(s3_media) -> list[str]:
    listing = s3_media.client.list_objects_v2(Bucket=s3_media.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


MODELS = {
    "glb": lambda: glb(textured_sphere()),
    "obj": lambda: trimesh.exchange.obj.export_obj(
        textured_sphere(), include_texture=False
    ).encode(),
    "stl": lambda: trimesh.exchange.stl.export_stl(textured_sphere()),
    "ply": lambda: trimesh.exchange.ply.export_ply(
        trimesh.Trimesh(textured_sphere().vertices, textured_sphere().faces)
    ),
    "fbx": lambda: fbx.write_fbx(glb(textured_sphere()), ".glb"),
}


@pytest.mark.parametrize("kind", MODELS)
def test_an_uploaded_model_is_a_done_job_with_every_format_and_its_print_report(
    s3_media, auth_client, user, kind
):
    client = auth_client(user)

    response = upload(client, MODELS[kind](), f"model.{kind}", name="my sphere")

    assert response.status_code == 200 and list(response.json()) == ["jobId"]
    body = client.get(f"/api/3d/status/{response.json()['jobId']}").json()
    assert (body["job"]["status"], body["job"]["name"]) == ("DONE", "my sphere")
    assert body["printability"]["watertight"] and not body["printability"]["repaired"]
    assert [entry["format"] for entry in body["formats"]] == [
        "glb", "obj", "stl", "ply", "3mf", "usdz", "fbx",
    ]  # fmt: skip
    glb_file = client.get(f"/api/3d/jobs/{response.json()['jobId']}/download")
    (mesh,) = trimesh.load(io.BytesIO(glb_file.content), file_type="glb").geometry.values()
    assert len(mesh.faces) == SPHERE_FACES


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (glb(textured_sphere())[:3000], 400, "truncated"),
        (b"PK\x03\x04" + bytes(200), 400, "zip archive is damaged"),
        (b"\x1f\x8b\x08\x00" + bytes(200), 400, "Archives other than a zipped OBJ"),
        (b"just some text", 400, "no model we read"),
        (bytes(2 * 1024 * 1024), 413, "larger than 1 MB"),
    ],
    ids=["truncated", "broken zip", "gzip", "text", "too large"],
)
def test_a_hostile_upload_is_refused_clearly_and_leaves_nothing(
    s3_media, auth_client, user, settings, data, status, error
):
    settings.UPLOAD_MESH_MAX_BYTES = 1024 * 1024

    response = upload(auth_client(user), data)

    assert response.status_code == status and error in response.json()["error"]
    assert set(response.json()) == {"error"}
    assert not Job.objects.exists() and stored(s3_media) == []


def test_uploading_a_model_needs_a_sign_in_and_a_file(s3_media, api_client, auth_client, user):
    assert upload(api_client, glb(textured_sphere())).status_code == 401
    missing = auth_client(user).post("/api/3d/upload-mesh", {}, format="multipart")
    assert missing.status_code == 400 and missing.json()["error"].startswith("mesh: ")


@pytest.fixture
def finished(s3_media, user):
    return JobFactory(
        user=user,
        kind=JobKind.IMAGE_TO_3D,
        state=JobState.COMPLETED,
        result_glb=storage.save("jobs/test", "model.glb", glb(textured_sphere())),
    )


def test_the_fbx_download_is_read_back_by_ufbx_with_its_faces_and_texture(
    finished, auth_client, tmp_path
):
    response = auth_client(finished.user).get(
        f"/api/3d/jobs/{finished.pk}/download", {"format": "fbx"}
    )

    assert response.status_code == 200
    path = tmp_path / "model.fbx"
    path.write_bytes(response.content)
    scene = ufbx.load_file(str(path))
    (mesh,) = scene.meshes
    assert mesh.num_faces == SPHERE_FACES
    assert [texture for texture in scene.textures if texture.content]


@pytest.mark.parametrize(("height", "expected"), [(None, 100.0), ("42.5", 42.5)])
def test_the_stl_download_stands_at_the_height_asked(finished, auth_client, height, expected):
    query = {"format": "stl"} | ({"heightMm": height} if height else {})

    response = auth_client(finished.user).get(f"/api/3d/jobs/{finished.pk}/download", query)

    model = trimesh.load(io.BytesIO(response.content), file_type="stl")
    assert model.bounds[0][2] == pytest.approx(0)
    assert model.extents[2] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("height", ["0", "10001", "tall"])
def test_a_print_height_out_of_range_is_a_400(finished, auth_client, height):
    response = auth_client(finished.user).get(
        f"/api/3d/jobs/{finished.pk}/download", {"format": "stl", "heightMm": height}
    )

    assert response.status_code == 400 and response.json()["error"].startswith("heightMm: ")


def test_a_quad_models_status_says_which_formats_hold_its_quads(s3_media, auth_client, user):
    quad_model = quads.remesh(textured_sphere(), 800)
    job = JobFactory(
        user=user,
        state=JobState.COMPLETED,
        polygon_type="quadrilateral",
        result_glb=storage.save("jobs/test", "model.glb", glb(quad_model.triangulated())),
        quad_mesh=storage.save("jobs/test", "quads.zip", quads.obj_zip(quad_model)),
    )
    client = auth_client(user)

    body = client.get(f"/api/3d/status/{job.pk}").json()
    obj = client.get(f"/api/3d/jobs/{job.pk}/download", {"format": "obj"})

    holding = [entry["format"] for entry in body["formats"] if entry["holdsQuads"]]
    assert holding == ["obj", "usdz", "fbx"]
    with zipfile.ZipFile(io.BytesIO(obj.content)) as archive:
        text = archive.read("model.obj").decode()
    faces = [line.split()[1:] for line in text.splitlines() if line.startswith("f ")]
    assert {len(face) for face in faces} == {4}
    assert abs(len(faces) - 800) <= 80
