"""POST /api/3d/upload-image, and the request-size limit in front of every endpoint."""

import io
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from jobs.models import Job, JobKind
from tests.helpers import images
from tests.helpers.job_api import UPLOAD_URL, upload

TEN_MB = 10 * 1024 * 1024


@pytest.mark.parametrize(
    "data, extension",
    [
        (images.png(), "png"),
        (images.encoded("JPEG"), "jpg"),
        (images.encoded("WEBP"), "webp"),
        (images.mpo(), "jpg"),  # a camera JPEG with a Multi-Picture index
    ],
    ids=["png", "jpeg", "webp", "mpo"],
)
def test_an_image_is_stored_under_uploads_and_served_as_the_same_picture(
    media, api_client, db, data, extension
):
    response = upload(api_client, data, filename="anything.bin")

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    path = urlsplit(body["url"]).path
    assert "/uploads/image-" in path and path.endswith(f".{extension}")
    [name] = media.names("uploads")
    assert path.endswith(name)
    with (
        Image.open(io.BytesIO(data)) as sent,
        Image.open(io.BytesIO(media.fetch(body["url"], api_client))) as served,
    ):
        assert (served.format, served.size) == (
            "JPEG" if sent.format == "MPO" else sent.format,
            sent.size,
        )
        if extension == "png":
            assert served.tobytes() == sent.tobytes()  # lossless: the very same pixels


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_a_photo_is_served_upright_and_without_what_the_phone_wrote_about_it(
    media, api_client, db, image_format
):
    """Privacy first: no GPS position, no phone make, no XMP at a public URL."""
    data = images.phone_photo(image_format)
    assert images.PHONE.encode() in data and images.PLACE.encode() in data

    response = upload(api_client, data)

    assert response.status_code == 200
    served = media.fetch(response.json()["url"], api_client)
    assert images.PHONE.encode() not in served and images.PLACE.encode() not in served
    with Image.open(io.BytesIO(served)) as image:
        assert dict(image.getexif()) == {}
        assert "xmp" not in image.info and "XML:com.adobe.xmp" not in image.info
        assert image.size == (12, 16)  # turned as the orientation said, which is then dropped
        top_right = image.convert("RGB").getpixel((10, 1))  # the marked corner, a quarter turn on
        assert top_right[2] > 200 and top_right[0] < 60


@pytest.mark.parametrize(
    "data, message",
    [
        (images.encoded("GIF"), "Only JPEG, PNG and WEBP images are accepted"),
        (images.encoded("BMP"), "Only JPEG, PNG and WEBP images are accepted"),
        (images.truncated_png(), "File is not a valid image"),
        (b"just some text, not an image\n" * 10, "File is not a valid image"),
        (b"", "File is not a valid image"),
        (images.png_claiming(100_000, 100_000), "Image dimensions are too large"),
        (
            images.png_claiming(7_000, 7_000),
            "Image dimensions are too large",
        ),  # 49 Mpx: under Pillow's own limit
    ],
    ids=["gif", "bmp", "truncated-png", "text", "empty", "bomb", "49-megapixels"],
)
def test_anything_but_a_sound_jpeg_png_or_webp_is_refused(s3_media, api_client, db, data, message):
    response = upload(api_client, data)

    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert s3_media.names("uploads") == set()


@pytest.mark.parametrize("field", [None, "file"])
def test_the_image_field_is_required(api_client, db, field):
    payload = {field: SimpleUploadedFile("a.png", images.png())} if field else {}
    response = api_client.post(UPLOAD_URL, payload, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"error": "No image file provided (multipart field 'image')"}


def test_an_image_over_10_mb_is_refused(local_media, api_client, db):
    response = upload(api_client, images.png() + b"\0" * (TEN_MB + 1 - len(images.png())))

    assert response.status_code == 413
    assert response.json() == {"error": "Image is larger than 10 MB"}
    assert local_media.names("uploads") == set()


def test_an_image_of_exactly_10_mb_is_accepted(local_media, api_client, db):
    data = images.png()
    data += b"\0" * (TEN_MB - len(data))  # trailing bytes after IEND: still a sound PNG
    assert upload(api_client, data).status_code == 200


class Tripwire(io.RawIOBase):
    """A request body that records whether anyone read it."""

    touched = False

    def readable(self):
        return True

    def readinto(self, buffer):
        self.touched = True
        return 0


@pytest.mark.parametrize("path", [UPLOAD_URL, "/api/3d/generate", "/api/3d/register-job"])
def test_an_oversized_body_is_refused_before_it_is_read(api_client, db, path):
    body = Tripwire()
    response = api_client.generic(
        "POST",
        path,
        CONTENT_TYPE="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(django_settings.REQUEST_BODY_MAX_BYTES + 1),
        **{"wsgi.input": body},
    )

    assert response.status_code == 413
    assert response.json() == {"error": "Request body too large (maximum 10 MB)"}
    assert not body.touched


# --- Outages ---------------------------------------------------------------------------------


def test_s3_outage_is_a_503_and_nothing_is_stored(s3_media, s3_down, api_client, db):
    response = upload(api_client, images.png())

    assert response.status_code == 503
    assert response.json() == {"error": "External service unavailable. Please try again later."}
    assert s3_media.names("uploads") == set()


def test_unwritable_local_storage_is_a_503_and_nothing_is_stored(local_media, api_client, db):
    local_media.root.mkdir(parents=True)
    (local_media.root / "uploads").write_text("a file where the folder should be")

    response = upload(api_client, images.png())

    assert response.status_code == 503
    assert response.json() == {"error": "External service unavailable. Please try again later."}
    assert [path.name for path in local_media.root.rglob("*")] == ["uploads"]


# --- The spec's image-to-3D workflow ---------------------------------------------------------


def test_an_uploaded_image_url_is_accepted_by_generate(media, auth_client, user):
    client = auth_client(user)
    if media.kind == "local":
        client.defaults["SERVER_NAME"] = (
            "localhost"  # URL validation refuses the dotless "testserver"
        )
    url = upload(client, images.png()).json()["url"]

    response = client.post("/api/3d/generate", {"imageUrl": url}, format="json")

    assert response.status_code == 200, response.json()
    job = Job.objects.get(pk=response.json()["jobId"])
    assert (job.kind, job.image_url) == (JobKind.IMAGE_TO_3D, url)
