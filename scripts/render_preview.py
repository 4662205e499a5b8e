"""Pictures of finished models, drawn with no display or OpenGL: `make demo`'s, and the picture of
the weight-free "silhouette" backend in docs/backends.md.

A GLB is read back and drawn by a small z-buffer rasteriser with Lambert shading, coloured from its
texture, from the front and from three quarters (``picture``). Run as a script, the demo's mug
photo goes through the worker's own steps (cut-out, the backend, GLB finishing with its baked
texture) and its model is drawn next to the photo and the texture atlas itself:

    .venv/bin/python scripts/render_preview.py [docs/silhouette-mug.png]
"""

import io
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch
import trimesh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation.pipelines import cut_out, finish_mesh, load_backend, prepare_mesh  # noqa: E402
from generation.pipelines.texture import srgb_to_linear  # noqa: E402

PANEL = 360
BACKGROUND = (245, 245, 242)
LIGHT = np.array([-0.4, 0.6, 0.7]) / np.linalg.norm([-0.4, 0.6, 0.7])
AMBIENT = 0.3
VIEWS = {"front": 0, "three quarters": -50}  # label: turn about y, in degrees


def turn(yaw_degrees: float, pitch_degrees: float) -> np.ndarray:
    """Turn the model by ``yaw`` about y, then tip it ``pitch`` towards the viewer about x."""
    yaw, pitch = np.radians([yaw_degrees, pitch_degrees])
    about_y = trimesh.transformations.rotation_matrix(yaw, [0, 1, 0])[:3, :3]
    about_x = trimesh.transformations.rotation_matrix(pitch, [1, 0, 0])[:3, :3]
    return about_x @ about_y


def render(mesh: trimesh.Trimesh, colours: np.ndarray, rotation: np.ndarray) -> PIL.Image.Image:
    """An orthographic view along -z of the (unit-cube) mesh turned by ``rotation``, y up."""
    vertices = mesh.vertices @ rotation.T
    normals = mesh.vertex_normals @ rotation.T
    scale = 0.8 * PANEL / np.linalg.norm(mesh.extents)
    x = PANEL / 2 + scale * vertices[:, 0]
    y = PANEL / 2 - scale * vertices[:, 1]
    depth = np.full((PANEL, PANEL), -np.inf)
    image = np.tile(np.array(BACKGROUND, dtype=float), (PANEL, PANEL, 1))

    corners = vertices[mesh.faces]
    facing = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])[:, 2] > 0
    for a, b, c in mesh.faces[facing]:
        area = (x[b] - x[a]) * (y[c] - y[a]) - (x[c] - x[a]) * (y[b] - y[a])
        if area == 0:
            continue
        left, top = np.maximum(0, np.floor([min(x[[a, b, c]]), min(y[[a, b, c]])])).astype(int)
        right, bottom = np.minimum(
            PANEL - 1, np.ceil([max(x[[a, b, c]]), max(y[[a, b, c]])])
        ).astype(int)
        px, py = np.meshgrid(np.arange(left, right + 1) + 0.5, np.arange(top, bottom + 1) + 0.5)
        # Barycentric weights of the pixel centres; all three are >= 0 inside the triangle.
        wa = ((x[b] - px) * (y[c] - py) - (x[c] - px) * (y[b] - py)) / area
        wb = ((x[c] - px) * (y[a] - py) - (x[a] - px) * (y[c] - py)) / area
        wc = 1 - wa - wb
        z = wa * vertices[a, 2] + wb * vertices[b, 2] + wc * vertices[c, 2]
        window = depth[top : bottom + 1, left : right + 1]
        drawn = (wa >= 0) & (wb >= 0) & (wc >= 0) & (z > window)
        if not drawn.any():
            continue
        window[drawn] = z[drawn]
        weights = np.stack([wa[drawn], wb[drawn], wc[drawn]], axis=1)
        normal = weights @ normals[[a, b, c]]
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        albedo = weights @ colours[[a, b, c]]  # linear RGB, as glTF stores it
        lit = albedo * (AMBIENT + (1 - AMBIENT) * np.clip(normal @ LIGHT, 0, 1))[:, None]
        image[top : bottom + 1, left : right + 1][drawn] = 255 * to_srgb(lit)
    return PIL.Image.fromarray(image.round().astype(np.uint8))


def to_srgb(linear: np.ndarray) -> np.ndarray:
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def load_model(glb: bytes) -> trimesh.Trimesh:
    """The GLB's only mesh, with its texture and UVs as a viewer reads them."""
    (mesh,) = trimesh.load(io.BytesIO(glb), file_type="glb", process=False).geometry.values()
    return mesh


def views(mesh: trimesh.Trimesh) -> dict[str, PIL.Image.Image]:
    """The model from each of ``VIEWS``, tipped 15 degrees towards the viewer."""
    # The texel under each vertex (sRGB, as base-colour textures are), in linear RGB for shading.
    colours = srgb_to_linear(mesh.visual.to_color().vertex_colors[:, :3] / 255.0)
    return {label: render(mesh, colours, turn(yaw, 15)) for label, yaw in VIEWS.items()}


def sheet(panels: dict[str, PIL.Image.Image]) -> PIL.Image.Image:
    """The panels side by side, each labelled underneath."""
    picture = PIL.Image.new("RGB", (PANEL * len(panels), PANEL + 24), BACKGROUND)
    draw = PIL.ImageDraw.Draw(picture)
    for index, (label, panel) in enumerate(panels.items()):
        picture.paste(panel, (index * PANEL, 0))
        draw.text((index * PANEL + 8, PANEL + 6), label, fill=(60, 60, 60))
    return picture


def picture(glb: bytes) -> PIL.Image.Image:
    """A finished model from the front and from three quarters: what `make demo` shows."""
    return sheet(views(load_model(glb)))


def main() -> None:
    from scripts.demo import draw_sample_photo

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "silhouette-mug.png"
    photo = PIL.Image.open(io.BytesIO(draw_sample_photo()))
    backend = load_backend("silhouette", None, torch.device("cpu"), torch.float32)
    foreground = cut_out(photo)
    glb = finish_mesh(prepare_mesh(backend(foreground, seed=0), photo=foreground), face_count=None)
    mesh = load_model(glb)
    atlas = mesh.visual.material.baseColorTexture.convert("RGB")

    panels = {"photo": photo.convert("RGB").resize((PANEL, PANEL), PIL.Image.Resampling.LANCZOS)}
    panels |= views(mesh)
    panels["baked texture"] = atlas.resize((PANEL, PANEL), PIL.Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet(panels).save(target, optimize=True)
    print(f"{target}: {len(mesh.faces)} faces")


if __name__ == "__main__":
    main()
