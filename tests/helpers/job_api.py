"""The job API's (/api/3d/) upload and the fields of its job records."""

from django.core.files.uploadedfile import SimpleUploadedFile

UPLOAD_URL = "/api/3d/upload-image"

# The fields of a job record in the job API's answers.
BACKEND_JOB_FIELDS = {
    "id",
    "userId",
    "status",
    "prompt",
    "imageUrl",
    "generateType",
    "faceCount",
    "enablePBR",
    "polygonType",
    "resultGlbUrl",
    "previewImageUrl",
    "errorCode",
    "errorMessage",
    "name",
    "createdAt",
    "updatedAt",
}


def upload(client, data: bytes, filename="photo.png", field="image"):
    return client.post(UPLOAD_URL, {field: SimpleUploadedFile(filename, data)}, format="multipart")
