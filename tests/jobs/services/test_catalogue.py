"""The services behind issue 22's additions, against PostgreSQL, RabbitMQ and S3 (moto): a model
the user brings becomes a finished job (or nothing at all), heavy formats are made on the cpu
queue, print downloads come at the height asked, a quad model's formats hold its quads, and
deleting a job deletes every file it gained."""

import io
import zipfile

import pytest
import trimesh
from django.db import transaction

from jobs import formats, quads, storage
from jobs.mesh_uploads import MeshRefused
from jobs.models import Job, JobKind, JobState
from jobs.services import clients
from tests.factories import JobFactory
from tests.helpers.broker import job_ids
from tests.helpers.meshes import glb, textured_sphere

pytestmark = pytest.mark.django_db(transaction=True)


def stored(s3_media) -> list[str]:
    listing = s3_media.client.list_objects_v2(Bucket=s3_media.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_an_uploaded_model_becomes_a_finished_job_with_its_print_report(s3_media, cpu_queue, user):
    job = clients.upload_mesh(user=user, data=glb(textured_sphere()), name="my sphere")

    job = Job.objects.get(pk=job.pk)
    assert (job.kind, job.state, job.name, job.progress) == (
        JobKind.UPLOADED_MESH,
        JobState.COMPLETED,
        "my sphere",
        100,
    )
    assert job.printability == {
        "watertight": True,
        "manifold": True,
        "selfIntersecting": False,
        "thinWalls": False,
        "volumeMm3": pytest.approx(4 / 3 * 3.14159 * 50**3, rel=0.02),
        "repaired": False,
    }
    model = trimesh.load(io.BytesIO(storage.read(job.result_glb)), file_type="glb")
    assert len(next(iter(model.geometry.values())).faces) == len(textured_sphere().faces)
    assert sorted(stored(s3_media)) == sorted([job.result_glb, job.source_mesh])
    # Its FBX is made by a cpu-queue worker, not by the web process on the first download.
    (message,) = cpu_queue.wait()
    assert message.headers["task"] == "jobs.make_heavy_downloads"
    assert job_ids([message]) == [str(job.pk)]


def test_a_remesh_can_start_from_an_uploaded_model(s3_media, user, enqueued):
    source = clients.upload_mesh(user=user, data=glb(textured_sphere()))

    remesh = clients.remesh_job(source, clients.JobOptions(face_count=500))

    assert remesh.source_mesh == source.source_mesh and enqueued == [str(remesh.pk)]


@pytest.mark.parametrize(
    "data",
    [
        glb(textured_sphere())[:5000],
        b"\x1f\x8b\x08\x00" + bytes(100),
        trimesh.exchange.stl.export_stl(trimesh.creation.box((1, 0, 1))),
        trimesh.exchange.stl.export_stl(trimesh.creation.box((1, 1, 0))),
    ],
    ids=["truncated", "archive", "flat", "no volume"],
)
def test_a_refused_upload_leaves_no_row_and_no_file(s3_media, user, data):
    with pytest.raises(MeshRefused):
        clients.upload_mesh(user=user, data=data)

    assert not Job.objects.exists() and stored(s3_media) == []


def test_an_upload_over_the_byte_limit_is_refused_unread(s3_media, user, settings):
    settings.UPLOAD_MESH_MAX_BYTES = 1000

    with pytest.raises(MeshRefused, match="larger than"):
        clients.upload_mesh(user=user, data=glb(textured_sphere()))

    assert not Job.objects.exists() and stored(s3_media) == []


def test_the_heavy_downloads_are_made_once_and_kept(s3_media, user, cpu_queue):
    job = clients.upload_mesh(user=user, data=glb(textured_sphere()))

    clients.make_heavy_downloads(job.pk)

    job.refresh_from_db()
    assert list(job.downloads) == ["fbx"]
    assert storage.read(job.downloads["fbx"]).startswith(b"Kaydara FBX Binary")
    assert clients.download(job, "fbx") == job.downloads["fbx"]


def test_print_downloads_come_at_each_height_asked_and_the_jobs_own_by_default(s3_media, user):
    job = JobFactory(
        user=user,
        state=JobState.COMPLETED,
        height_mm=40,
        result_glb=storage.save("jobs/test", "model.glb", glb(textured_sphere())),
    )

    default = clients.download(job, "stl")
    job.refresh_from_db()
    taller = clients.download(job, "stl", height_mm=120)
    job.refresh_from_db()

    def height(name):
        return trimesh.load(io.BytesIO(storage.read(name)), file_type="stl").extents[2]

    assert height(default) == pytest.approx(40) and height(taller) == pytest.approx(120)
    assert job.downloads == {"stl": default, "stl-120mm": taller}


def test_a_quad_models_obj_holds_its_quads_and_its_glb_stays_the_triangulation(s3_media, user):
    quad_model = quads.remesh(textured_sphere(), 600)
    job = JobFactory(
        user=user,
        state=JobState.COMPLETED,
        result_glb=storage.save("jobs/test", "model.glb", glb(quad_model.triangulated())),
        quad_mesh=storage.save("jobs/test", "quads.zip", quads.obj_zip(quad_model)),
    )

    obj = storage.read(clients.download(job, "obj"))

    with zipfile.ZipFile(io.BytesIO(obj)) as archive:
        text = archive.read("model.obj").decode()
    faces = [line.split()[1:] for line in text.splitlines() if line.startswith("f ")]
    assert len(faces) == len(quad_model.quads) and {len(face) for face in faces} == {4}
    assert clients.download(job, "glb") == job.result_glb


def test_deleting_a_job_deletes_its_views_quads_and_every_download(s3_media, user):
    names = {
        key: storage.save("jobs/test", f"{key}.bin", b"x")
        for key in ("glb", "quads", "left", "left-cut", "fbx")
    }
    job = JobFactory(
        user=user,
        state=JobState.COMPLETED,
        result_glb=names["glb"],
        quad_mesh=names["quads"],
        view_images={"left": names["left"]},
        processed_views={"left": names["left-cut"]},
        downloads={"fbx": names["fbx"]},
    )

    with transaction.atomic():
        clients.delete_job(job)

    assert stored(s3_media) == []


def test_heavy_formats_are_named():
    assert set(formats.HEAVY_FORMATS) <= set(formats.FORMATS)


# --- Several views ---------------------------------------------------------------------------


def test_extra_views_are_kept_by_name_beside_the_front_one(local_media, user, enqueued):
    names = {view: storage.save("uploads", f"{view}.png", b"png") for view in ("left", "back")}

    job = clients.create_job(
        api=clients.ApiHalf.JOB,
        kind="image-to-3d",
        user=user,
        input_image=storage.save("uploads", "front.png", b"png"),
        view_urls={"left": "https://images.example.com/left.png"},
        view_images=names,
    )

    job = Job.objects.get(pk=job.pk)
    assert job.view_images == names
    assert job.view_urls == {"left": "https://images.example.com/left.png"}
    assert enqueued == [str(job.pk)]


@pytest.mark.parametrize(
    ("backend", "subfolder", "taken"),
    [
        ("silhouette", None, True),
        ("hunyuan3d", "hunyuan3d-dit-v2-mv-turbo", True),
        ("hunyuan3d", "hunyuan3d-dit-v2-0", False),
        ("shap-e", None, False),
    ],
)
def test_a_backend_that_reads_one_view_refuses_views_and_writes_nothing(
    local_media, user, enqueued, settings, backend, subfolder, taken
):
    settings.IMAGE_TO_3D_BACKEND, settings.HUNYUAN3D_SUBFOLDER = backend, subfolder

    def create():
        return clients.create_job(
            api=clients.ApiHalf.JOB,
            kind="image-to-3d",
            user=user,
            input_image="f.png",
            view_images={"left": "l.png"},
        )

    if taken:
        assert create().view_images == {"left": "l.png"}
    else:
        with pytest.raises(clients.ViewsNotTaken, match="one photo: send the front view only"):
            create()
        assert not Job.objects.exists() and enqueued == []


def test_unknown_view_names_are_refused(local_media, user, enqueued):
    with pytest.raises(ValueError, match="Unknown views"):
        clients.create_job(
            api=clients.ApiHalf.JOB, kind="image-to-3d", user=user, view_images={"top": "x.png"}
        )

    assert not Job.objects.exists()
