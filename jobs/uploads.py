"""User-uploaded images: decoded in full, then stored re-encoded (upright, without metadata)."""

import io
import time
import warnings

from django.conf import settings
from PIL import Image, ImageOps

from jobs import storage
from jobs.services import clients

# Pillow names a JPEG that carries a Multi-Picture index (many cameras and phones write one) "MPO".
ALLOWED_FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}
# About 40 megapixels: any real photo fits, a decompression bomb does not.
MAX_PIXELS = 40_000_000
# What a re-encoded image keeps of the original's extra data: how to show it, nothing about it.
KEPT_INFO = ("icc_profile", "transparency")
SAVE_OPTIONS = {
    "jpg": ("JPEG", {"quality": 95}),
    "png": ("PNG", {}),
    "webp": ("WEBP", {"quality": 95}),
}


class InvalidImage(ValueError):
    pass


class UploadTooLarge(ValueError):
    """Larger than ``UPLOAD_MAX_BYTES``."""


def _decoded(data: bytes) -> tuple[Image.Image, str]:
    """The fully decoded image and its file extension, for an acceptable JPEG/PNG/WEBP image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise InvalidImage("Only JPEG, PNG and WEBP images are accepted")
            if image.width * image.height > MAX_PIXELS:
                raise InvalidImage("Image dimensions are too large")
            image.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("Image dimensions are too large") from None
    except Exception:
        raise InvalidImage("File is not a valid image") from None
    return image, ALLOWED_FORMATS[image.format]


def validate_image(data: bytes) -> str:
    """Return the file extension for an acceptable JPEG/PNG/WEBP image, else raise InvalidImage."""
    image, extension = _decoded(data)
    image.close()
    return extension


def clean_image(data: bytes) -> tuple[bytes, str]:
    """An acceptable image re-encoded for publishing, and its file extension.

    Uploads are served at public URLs, and a phone's photo carries where it was taken (GPS), the
    phone's make and more in EXIF and XMP. The copy keeps the pixels, turned as the EXIF
    orientation says (viewers and the models then see the same thing), the colour profile and
    transparency; nothing else of the file, not even bytes after its end.
    """
    image, extension = _decoded(data)
    with image:
        upright = ImageOps.exif_transpose(image)
        upright.info = {key: image.info[key] for key in KEPT_INFO if key in image.info}
    image_format, options = SAVE_OPTIONS[extension]
    buffer = io.BytesIO()
    upright.save(buffer, image_format, **options)
    return buffer.getvalue(), extension


def upload_filename(extension: str) -> str:
    return f"image-{int(time.time() * 1000)}.{extension}"


def store(upload) -> str:
    """Validate an uploaded file (its size, a real JPEG/PNG/WEBP image) and store it under
    ``uploads/``, re-encoded without its metadata (``clean_image``); its storage name."""
    if upload.size > settings.UPLOAD_MAX_BYTES:
        raise UploadTooLarge()
    data, extension = clean_image(upload.read())
    name = storage.save("uploads", upload_filename(extension), data)
    clients.record_upload(name)
    return name
