"""Finished models as the jobs' downloads start from: a textured GLB, made without a worker."""

import io

import numpy as np
import PIL.Image
import trimesh

RED, BLUE = (220, 20, 20), (20, 40, 220)


def two_colour_texture() -> PIL.Image.Image:
    """Its upper half (v > 0.5) red, its lower half blue."""
    image = PIL.Image.new("RGB", (64, 64), BLUE)
    image.paste(RED, (0, 0, 64, 32))  # image rows run down, v up
    return image


def textured_sphere(subdivisions: int = 4) -> trimesh.Trimesh:
    """A unit sphere (glTF: Y up) whose UVs map its top half to the red half of the texture."""
    mesh = trimesh.creation.icosphere(subdivisions)
    uv = np.column_stack([(mesh.vertices[:, 0] + 1) / 2, (mesh.vertices[:, 1] + 1) / 2])
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=two_colour_texture())
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return mesh


def glb(mesh: trimesh.Trimesh) -> bytes:
    return trimesh.Scene(mesh).export(file_type="glb")


def load_glb(data: bytes) -> trimesh.Trimesh:
    (mesh,) = trimesh.load(io.BytesIO(data), file_type="glb", process=False).geometry.values()
    return mesh
