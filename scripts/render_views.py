"""Render the README picture of several views against one: the demo's mug photographed from the
front and from its left, made by the silhouette backend from the front photo alone (inflated: as
deep as it is wide, handle and all) and from both photos (carved: its depth is the body's).

    .venv/bin/python scripts/render_views.py [docs/two-view-silhouette.png]
"""

import io
import sys
from pathlib import Path

import PIL.Image
import PIL.ImageDraw
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation.pipelines import cut_out, load_backend  # noqa: E402
from scripts.demo import draw_sample_photo  # noqa: E402
from scripts.render_preview import BACKGROUND, PANEL, render, turn  # noqa: E402


def draw_side_photo() -> PIL.Image.Image:
    """The same mug from its left: the body alone (the handle hides behind it), as tall."""
    image = PIL.Image.new("RGB", (512, 512), (236, 236, 232))
    draw = PIL.ImageDraw.Draw(image)
    draw.rounded_rectangle((150, 150, 360, 390), radius=28, fill=(200, 40, 40))
    draw.ellipse((150, 135, 360, 175), fill=(150, 25, 25))
    return image


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "two-view-silhouette.png"
    front = PIL.Image.open(io.BytesIO(draw_sample_photo())).convert("RGB")
    left = draw_side_photo()
    backend = load_backend("silhouette", None, torch.device("cpu"), torch.float32)
    one_view = backend(cut_out(front), seed=0)
    two_views = backend.from_views({"front": cut_out(front), "left": cut_out(left)}, seed=0)

    rows = [("front photo", "left photo"), ("one view: front", "one view: above the left")]
    rows += [("two views: front", "two views: above the left")]
    panels = [front.resize((PANEL, PANEL)), left.resize((PANEL, PANEL))]
    for mesh in (one_view, two_views):
        colours = mesh.visual.vertex_colors[:, :3] / 255.0  # linear RGB bytes
        panels += [render(mesh, colours, turn(yaw, pitch)) for yaw, pitch in ((0, 10), (90, 35))]
    sheet = PIL.Image.new("RGB", (2 * PANEL, 3 * (PANEL + 24)), BACKGROUND)
    draw = PIL.ImageDraw.Draw(sheet)
    labels = [label for row in rows for label in row]
    for index, (panel, label) in enumerate(zip(panels, labels, strict=True)):
        column, row = index % 2, index // 2
        sheet.paste(panel, (column * PANEL, row * (PANEL + 24)))
        draw.text((column * PANEL + 8, row * (PANEL + 24) + PANEL + 6), label, fill=(60, 60, 60))
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target, optimize=True)
    for name, mesh in (("one view", one_view), ("two views", two_views)):
        width, height, depth = mesh.extents
        print(f"{name}: width {width:.3f}, height {height:.3f}, depth {depth:.3f}")


if __name__ == "__main__":
    main()
