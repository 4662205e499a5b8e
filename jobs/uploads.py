"""User-uploaded images: decoded in full before a byte is stored."""

import io
import time
import warnings

from PIL import Image

# Pillow names a JPEG that carries a Multi-Picture index (many cameras and phones write one) "MPO".
ALLOWED_FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}
# About 40 megapixels: any real photo fits, a decompression bomb does not.
MAX_PIXELS = 40_000_000


class InvalidImage(ValueError):
    pass


def validate_image(data: bytes) -> str:
    """Return the file extension for an acceptable JPEG/PNG/WEBP image, else raise InvalidImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format
                if image_format not in ALLOWED_FORMATS:
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
    return ALLOWED_FORMATS[image_format]


def upload_filename(extension: str) -> str:
    return f"image-{int(time.time() * 1000)}.{extension}"
