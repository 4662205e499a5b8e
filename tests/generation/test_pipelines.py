"""The generation library on tiny, randomly initialised models: no Django, no downloads, no GPU."""

import io
import pickle

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
import torch
import trimesh
from diffusers.pipelines.shap_e.renderer import MeshDecoder
from scipy import ndimage

from generation.pipelines import (
    BACKENDS,
    DEFAULT_FACE_COUNT,
    BadInputImage,
    JobCancelled,
    ModelError,
    OutOfGPUMemory,
    TextToImagePipeline,
    classify,
    composite_on_background,
    cut_out,
    finish_mesh,
    load_backend,
    select_device,
    select_dtype,
)
from generation.pipelines.image_to_3d.shap_e import Z_UP_TO_Y_UP
from generation.pipelines.marching_cubes import marching_cubes_table
from generation.pipelines.mesh import LOW_POLY_FACE_COUNT
from generation.pipelines.text_to_image import OBJECT_PROMPT_SUFFIX, sampling_for
from generation.tiny_models import FOLDERS
from tests.helpers.meshes import load_glb
from tests.helpers.pipelines import cancel_at, disc_cutout

CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def text_to_image(tiny_models_dir):
    model = str(tiny_models_dir / FOLDERS["text-to-image"])
    return TextToImagePipeline.load(model, CPU, select_dtype(CPU), steps=2)


@pytest.fixture(scope="session")
def shap_e(tiny_models_dir):
    model = str(tiny_models_dir / FOLDERS["shap-e"])
    return load_backend("shap-e", model, CPU, select_dtype(CPU), steps=2, grid_size=32)


def frames_from_diffusers(exc):
    tb, modules = exc.__traceback__, []
    while tb is not None:
        modules.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return [module for module in modules if module.startswith("diffusers")]


# device


def test_device_and_dtype_choice():
    assert select_device("cpu") == CPU
    assert select_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_dtype(CPU) == torch.float32
    assert select_dtype(CPU, "fp16") == torch.float32
    cuda = torch.device("cuda")  # only a name: creating it does not touch the driver
    assert select_dtype(cuda) == torch.float16
    assert select_dtype(cuda, "bf16") == torch.bfloat16
    with pytest.raises(ValueError):
        select_dtype(cuda, "fp8")


# text to image


def test_text_to_image_has_the_requested_size_and_follows_the_seed(text_to_image):
    image = text_to_image("a red cup", seed=3, width=64, height=48)
    assert image.size == (64, 48)
    again = text_to_image("a red cup", seed=3, width=64, height=48)
    other_seed = text_to_image("a red cup", seed=4, width=64, height=48)
    assert np.array_equal(np.asarray(image), np.asarray(again))
    assert not np.array_equal(np.asarray(image), np.asarray(other_seed))


def test_text_to_image_reports_each_step_and_stops_when_cancelled(text_to_image):
    steps = []
    text_to_image(
        "a toy car", seed=0, on_denoising_step=lambda done, total: steps.append((done, total))
    )
    assert steps == [(1, 2), (2, 2)]

    with pytest.raises(JobCancelled) as cancelled:
        text_to_image("a toy car", seed=0, on_denoising_step=cancel_at(1))
    assert cancelled.value.code == "CANCELLED"
    assert frames_from_diffusers(cancelled.value) == []  # nothing pins the run's tensors
    assert text_to_image("a toy car", seed=0).size == (64, 64)  # still usable afterwards


def test_text_to_image_prompt_and_sampling_settings():
    calls = []

    class RecordingPipe:
        def __call__(self, **kwargs):
            calls.append(kwargs)
            return type("Output", (), {"images": [PIL.Image.new("RGB", (8, 8))]})

    pipeline = TextToImagePipeline(RecordingPipe(), CPU, "stabilityai/sd-turbo", steps=1)
    pipeline("a chair", seed=5)
    (call,) = calls
    assert call["prompt"] == "a chair" + OBJECT_PROMPT_SUFFIX
    assert (call["num_inference_steps"], call["guidance_scale"]) == (1, 0.0)
    assert (call["width"], call["height"]) == (512, 512)
    assert call["generator"].initial_seed() == 5

    assert sampling_for("stabilityai/sdxl-turbo").guidance_scale == 0.0
    hunyuan = sampling_for("Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers-Distilled")
    assert (hunyuan.steps, hunyuan.guidance_scale, hunyuan.size) == (25, 5.0, 1024)
    generic = sampling_for("/models/stable-diffusion-v1-5")
    assert (generic.steps, generic.guidance_scale, generic.size) == (25, 7.5, None)


# cut-out


def alpha_of(image):
    return np.asarray(image.getchannel("A"), dtype=np.float64) / 255


def assert_centred(cutout, size=256):
    alpha = alpha_of(cutout)
    assert cutout.mode == "RGBA" and cutout.size == (size, size)
    assert alpha[[0, 0, -1, -1], [0, -1, 0, -1]].max() == 0  # clear corners
    rows, columns = np.nonzero(alpha > 0.5)
    centre = ((rows.min() + rows.max()) / 2, (columns.min() + columns.max()) / 2)
    assert np.allclose(centre, (size - 1) / 2, atol=2)
    longer_side = max(rows.max() - rows.min(), columns.max() - columns.min()) + 1
    assert abs(longer_side - 0.85 * size) <= 3


def test_cut_out_finds_a_drawn_object_on_a_plain_background():
    photo = PIL.Image.new("RGB", (200, 160), (250, 250, 250))
    PIL.ImageDraw.Draw(photo).ellipse((30, 20, 90, 80), fill=(200, 30, 30))  # off-centre red disc
    cutout = cut_out(photo)
    assert_centred(cutout)
    opaque = np.asarray(cutout)[alpha_of(cutout) > 0.99]
    assert np.allclose(opaque[:, :3].mean(axis=0), (200, 30, 30), atol=3)
    assert (alpha_of(cutout) > 0.5).mean() == pytest.approx(
        np.pi / 4 * 0.85**2, rel=0.05
    )  # still a disc


def test_cut_out_keeps_an_opening_see_through_but_fills_specks():
    photo = PIL.Image.new("RGB", (200, 200), (245, 245, 245))
    draw = PIL.ImageDraw.Draw(photo)
    draw.ellipse((40, 40, 160, 160), fill=(30, 60, 160))
    draw.ellipse((80, 80, 120, 120), fill=(245, 245, 245))  # a ring's opening: 1/9 of the disc
    draw.rectangle((60, 98, 62, 100), fill=(245, 245, 245))  # a speck of background colour

    transparent = np.asarray(cut_out(photo, size=200).getchannel("A")) <= 127

    assert transparent[100, 100]  # the opening stays see-through
    regions, count = ndimage.label(transparent)
    enclosed = (
        set(np.unique(regions))
        - set(np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]])))
        - {0}
    )
    assert len(enclosed) == 1  # the opening alone: the speck was filled


def test_cut_out_uses_the_alpha_channel_when_there_is_one():
    # Colour noise everywhere: only the alpha channel can tell the object apart.
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (120, 160, 4), dtype=np.uint8)
    pixels[..., 3] = 0
    pixels[70:90, 20:60, 3] = 255  # a 40 x 20 opaque bar
    cutout = cut_out(PIL.Image.fromarray(pixels, "RGBA"))
    assert_centred(cutout)
    rows, columns = np.nonzero(alpha_of(cutout) > 0.5)
    assert (columns.max() - columns.min() + 1) / (rows.max() - rows.min() + 1) == pytest.approx(
        2, rel=0.05
    )


@pytest.mark.parametrize(
    "image",
    [
        PIL.Image.new("RGB", (128, 128), "white"),
        PIL.Image.new("RGBA", (128, 128), (255, 0, 0, 0)),
        PIL.Image.new("RGB", (8, 8), "red"),
        PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)),
    ],
    ids=["blank", "transparent", "tiny", "noise"],
)
def test_cut_out_rejects_images_without_an_object(image):
    with pytest.raises(BadInputImage) as error:
        cut_out(image)
    assert error.value.code == "INVALID_IMAGE"


def test_composite_on_background_fills_transparency():
    rgba = PIL.Image.new("RGBA", (4, 2), (0, 0, 255, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgb = composite_on_background(rgba, color=(10, 20, 30))
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (0, 0, 255) and rgb.getpixel((3, 1)) == (10, 20, 30)


# image to 3D


def test_marching_cubes_table_gives_closed_outward_surfaces():
    cases, masks = marching_cubes_table()
    assert cases.shape == (256, 5, 3) and masks.shape == (256, 5)
    decoder = MeshDecoder()
    decoder.cases.copy_(cases)
    decoder.masks.copy_(masks)
    axis = torch.linspace(-1, 1, 32)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    radius = 0.6
    sphere = radius - ((x - 0.1) ** 2 + y**2 + z**2).sqrt()  # positive inside, as Shap-E's SDF
    noise = torch.randn(20, 20, 20, generator=torch.Generator().manual_seed(0))
    noise[[0, -1]] = noise[:, [0, -1]] = noise[
        :, :, [0, -1]
    ] = -1  # closed off, as decode_to_mesh does

    def decode(field):
        out = decoder(field, torch.full((3,), -1.0), torch.full((3,), 2.0))
        return trimesh.Trimesh(out.verts.numpy(), out.faces.numpy(), process=False)

    sphere_mesh, noise_mesh = decode(sphere), decode(noise)
    for mesh in (sphere_mesh, noise_mesh):
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    assert sphere_mesh.volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.03)


def test_shap_e_backend_gives_a_coloured_mesh(shap_e):
    assert "shap-e" in BACKENDS
    saved_table = shap_e.pipe.shap_e_renderer.mesh_decoder.cases
    assert torch.equal(saved_table, marching_cubes_table()[0])
    steps = []
    mesh = shap_e(
        disc_cutout(), seed=7, on_denoising_step=lambda done, total: steps.append((done, total))
    )
    assert isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) > 0
    assert steps == [(1, 3), (2, 3), (3, 3)]  # Heun: 2 steps take 3 evaluations
    assert mesh.visual.kind == "vertex"
    assert len(np.unique(mesh.visual.vertex_colors, axis=0)) > 1
    again = shap_e(disc_cutout(), seed=7)
    assert np.array_equal(mesh.visual.vertex_colors, again.visual.vertex_colors)
    assert np.allclose(
        trimesh.transform_points([[0, 0, 1]], Z_UP_TO_Y_UP), [[0, 1, 0]]
    )  # z-up to y-up


def test_shap_e_backend_stops_when_cancelled(shap_e):
    with pytest.raises(JobCancelled) as cancelled:
        shap_e(disc_cutout(), seed=0, on_denoising_step=cancel_at(2))
    assert frames_from_diffusers(cancelled.value) == []


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="shap-e"):
        load_backend("no-such-model", "x", CPU, torch.float32)


# mesh finishing


@pytest.fixture(scope="module")
def raw_mesh():
    """A sphere coloured red on top and blue below, plus a floater, a degenerate and a repeated
    face."""
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=2.0)  # 5120 faces
    sphere.apply_translation((3, 1, -2))
    floater = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    floater.apply_translation((10, 0, 0))
    mesh = trimesh.util.concatenate([sphere, floater])
    faces = np.vstack([mesh.faces, mesh.faces[:1], [[0, 0, 1]]])
    top = mesh.vertices[:, 1] > 1
    colours = np.where(top[:, None], [220, 20, 20, 255], [20, 20, 220, 255]).astype(np.uint8)
    return trimesh.Trimesh(mesh.vertices, faces, vertex_colors=colours, process=False)


def test_finish_mesh_normal(raw_mesh):
    mesh = load_glb(finish_mesh(raw_mesh, face_count=1000))
    assert 0 < len(mesh.faces) <= 1000
    welded = trimesh.Trimesh(mesh.vertices, mesh.faces)  # joined again along the UV atlas' seams
    assert len(welded.split(only_watertight=False)) == 1  # the floater is gone
    assert np.allclose(mesh.bounds, [[-0.5] * 3, [0.5] * 3], atol=0.01)  # centred, unit size
    colours = mesh.visual.to_color().vertex_colors  # the baked texture under each vertex
    top, bottom = mesh.vertices[:, 1] > 0.3, mesh.vertices[:, 1] < -0.3
    assert (
        colours[top, 0].mean() > 200 and colours[bottom, 2].mean() > 200
    )  # colours kept their places
    material = mesh.visual.material
    assert isinstance(material, trimesh.visual.material.PBRMaterial)
    assert (material.metallicFactor, material.roughnessFactor) == (0.0, 1.0)


def test_finish_mesh_pbr_material(raw_mesh):
    material = load_glb(finish_mesh(raw_mesh, face_count=1000, enable_pbr=True)).visual.material
    assert isinstance(material, trimesh.visual.material.PBRMaterial)
    assert (material.metallicFactor, material.roughnessFactor) == (0.0, 0.5)


def test_finish_mesh_low_poly_is_flat_and_capped(raw_mesh):
    mesh = load_glb(finish_mesh(raw_mesh, face_count=DEFAULT_FACE_COUNT, generate_type="LowPoly"))
    assert 0 < len(mesh.faces) <= LOW_POLY_FACE_COUNT
    assert len(mesh.vertices) == 3 * len(mesh.faces)  # unshared vertices: flat shading
    assert mesh.visual.material.baseColorTexture is not None  # one colour per face: test_texture.py


def test_finish_mesh_geometry_has_no_colours(raw_mesh):
    mesh = load_glb(finish_mesh(raw_mesh, face_count=500, generate_type="Geometry"))
    assert 0 < len(mesh.faces) <= 500
    assert (
        "color" not in mesh.visual.vertex_attributes
        and mesh.visual.material.baseColorTexture is None
    )
    assert tuple(mesh.visual.material.baseColorFactor[:3]) == (180, 180, 180)


def test_finish_mesh_sketch_keeps_colours_and_default_cap(raw_mesh):
    mesh = load_glb(finish_mesh(raw_mesh, face_count=None, generate_type="Sketch"))
    assert len(mesh.faces) == 5120  # under the default cap: only the bad faces and the floater went
    assert mesh.visual.material.baseColorTexture is not None


def test_finish_mesh_refuses_bad_input():
    with pytest.raises(ModelError):
        finish_mesh(trimesh.Trimesh(vertices=np.zeros((3, 3)), faces=[[0, 1, 2]]), face_count=100)
    with pytest.raises(ValueError):
        finish_mesh(trimesh.creation.box(), face_count=100, generate_type="Cartoon")


# errors


def test_classify_maps_errors_to_codes():
    cuda_oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert isinstance(classify(cuda_oom), OutOfGPUMemory)
    assert isinstance(classify(RuntimeError("MPS backend out of memory")), OutOfGPUMemory)
    cancelled = JobCancelled()
    assert classify(cancelled) is cancelled
    assert classify(ValueError("shapes do not match")).code == "MODEL_ERROR"
    assert classify(RuntimeError("expected scalar type Half")).code == "MODEL_ERROR"

    with pytest.raises(PIL.UnidentifiedImageError) as not_an_image:
        PIL.Image.open(io.BytesIO(b"not an image"))
    assert classify(not_an_image.value).code == "INVALID_IMAGE"
    png = io.BytesIO()
    PIL.Image.new("RGB", (64, 64), "red").save(png, format="PNG")
    with pytest.raises(OSError) as truncated:
        PIL.Image.open(io.BytesIO(png.getvalue()[:60])).load()
    assert classify(truncated.value).code == "INVALID_IMAGE"


def test_errors_survive_pickling():
    for error in (BadInputImage("Too dark."), JobCancelled(), classify(ValueError("x"))):
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), copy.code, copy.message) == (type(error), error.code, error.message)
        assert str(copy) == error.message


# the whole chain


@pytest.mark.parametrize("seed", [11, 12])
def test_text_to_glb(text_to_image, shap_e, seed):
    image = text_to_image("a green chair", seed=seed)
    mesh = shap_e(cut_out(image), seed=seed)
    glb = finish_mesh(mesh, face_count=2000)
    assert 0 < len(load_glb(glb).faces) <= 2000
