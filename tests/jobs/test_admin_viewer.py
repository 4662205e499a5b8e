"""The job's admin page shows its GLB in <model-viewer> beside the preview, checked in a real
headless browser: Debian's chromium (``apt-get install chromium``), driven by Playwright.

With ``ADMIN_SCREENSHOT=path`` the page is also saved there (the picture in docs/operations.md)."""

import io
import os
import shutil

import PIL.Image
import PIL.ImageDraw
import pytest
import torch

from generation.pipelines import cut_out, finish_mesh, load_backend, prepare_mesh
from jobs import storage
from jobs.admin import MODEL_VIEWER_SCRIPT
from jobs.models import JobState
from tests.factories import JobFactory

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
    ),
]
# WebGL with no GPU: Chromium's software renderer, which it no longer falls back to by itself.
SOFTWARE_WEBGL = [
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
]


def drawn_mug() -> PIL.Image.Image:
    photo = PIL.Image.new("RGB", (512, 512), (236, 236, 232))
    draw = PIL.ImageDraw.Draw(photo)
    draw.ellipse((330, 190, 430, 330), outline=(180, 30, 30), width=22)
    draw.rounded_rectangle((150, 150, 360, 390), radius=28, fill=(200, 40, 40))
    draw.ellipse((150, 135, 360, 175), fill=(150, 25, 25))
    return photo


@pytest.fixture
def finished_mug(local_media):
    photo = drawn_mug()
    foreground = cut_out(photo)
    backend = load_backend("silhouette", None, torch.device("cpu"), torch.float32, grid_size=64)
    glb = finish_mesh(prepare_mesh(backend(foreground, seed=0)), face_count=5000, texture_size=512)
    preview = io.BytesIO()
    photo.save(preview, format="PNG")
    return JobFactory(
        state=JobState.COMPLETED,
        prompt="a red mug",
        result_glb=storage.save("jobs/admin", "model.glb", glb),
        preview_image=storage.save("jobs/admin", "preview.png", preview.getvalue()),
    )


def test_the_change_page_shows_the_textured_model_beside_the_preview(
    live_server, admin_client, finished_mug, tmp_path
):
    from playwright.sync_api import sync_playwright

    session = admin_client.cookies["sessionid"].value
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=SOFTWARE_WEBGL)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        requested = []
        page.on("request", lambda request: requested.append(request.url))

        page.goto(f"{live_server.url}/admin/jobs/job/{finished_mug.pk}/change/")
        page.locator("model-viewer").scroll_into_view_if_needed()
        page.wait_for_function(
            "document.querySelector('model-viewer')?.loaded === true", timeout=60_000
        )
        texture = page.evaluate(
            "document.querySelector('model-viewer').model.materials[0]"
            ".pbrMetallicRoughness.baseColorTexture?.texture?.source?.uri ?? null"
        )
        viewer = page.locator("model-viewer").bounding_box()
        preview = page.locator("img[alt=preview]").bounding_box()
        shot = tmp_path / "admin.png"
        page.locator("fieldset", has=page.locator("model-viewer")).screenshot(path=shot)
        viewer_pixels = page.locator("model-viewer").screenshot()
        browser.close()
    if target := os.environ.get("ADMIN_SCREENSHOT"):
        shutil.copy(shot, target)

    assert texture is not None  # the baked base-colour texture reached the viewer
    assert (
        abs(viewer["y"] - preview["y"]) < 40 and preview["x"] > viewer["x"] + viewer["width"] - 1
    )  # side by side
    assert any(url.endswith(MODEL_VIEWER_SCRIPT) for url in requested)
    assert all(
        url.startswith(live_server.url) for url in requested if url.startswith("http")
    )  # no CDN
    # The model is drawn: many of the viewer's pixels are its red, not the grey background.
    drawn = PIL.Image.open(io.BytesIO(viewer_pixels)).convert("RGB")
    reddish = sum(1 for r, g, b in drawn.getdata() if r > g + 60 and r > b + 60)
    assert reddish > 0.05 * drawn.width * drawn.height
