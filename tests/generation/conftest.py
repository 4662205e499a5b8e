import io

import pytest
from PIL import Image, ImageDraw

from jobs import storage
from jobs.models import JobKind
from tests.factories import JobFactory


@pytest.fixture
def photo_job():
    """A waiting image-to-3D job of an uploaded photo of one object."""
    image = Image.new("RGB", (128, 128), (240, 240, 236))
    ImageDraw.Draw(image).ellipse((30, 25, 100, 105), fill=(30, 90, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    name = storage.save("uploads", "photo.png", buffer.getvalue())
    return JobFactory(
        kind=JobKind.IMAGE_TO_3D, prompt=None, input_image=name, image_url=storage.url(name)
    )
