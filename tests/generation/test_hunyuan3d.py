"""The Hunyuan3D-2 backend: its use of hy3dgen's pipeline against a stand-in everywhere, and the
real
pipeline on tiny random weights where hy3dgen imports.

hy3dgen imports torchvision, and PyPI's torchvision wheels for Linux x86_64 are CUDA builds that do
not load beside the CPU torch of torch-cpu.txt: the real-pipeline tests skip in `.venv` and run in
`make test-gpu-packages`, on the GPU image's packages (requirements/hunyuan3d.txt), on the CPU and,
where there is one, on the GPU.
"""

import importlib.util
import math

import numpy as np
import pytest
import torch
import trimesh

from generation.pipelines import BACKENDS, JobCancelled, ModelError, finish_mesh, load_backend
from generation.pipelines.image_to_3d import hunyuan3d
from generation.pipelines.image_to_3d.hunyuan3d import (
    DEFAULT_SUBFOLDER,
    Hunyuan3DBackend,
    hy3dgen_importable,
)
from generation.tiny_models import FOLDERS
from tests.helpers.pipelines import cancel_at, disc_cutout

# On the GPU image's packages, the ones with hy3dgen (make test-gpu-packages).
pytestmark = pytest.mark.gpu_image

CPU = torch.device("cpu")


def functions_in_traceback(exc):
    tb, names = exc.__traceback__, []
    while tb is not None:
        names.append((tb.tb_frame.f_globals.get("__name__", ""), tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    return names


def test_registered_only_where_hy3dgen_is_installed():
    assert ("hunyuan3d" in BACKENDS) == (importlib.util.find_spec("hy3dgen") is not None)


# The backend against a stand-in for hy3dgen's pipeline: no hy3dgen needed.


class StandInPipeline:
    """Keeps hy3dgen 2.0.2's Hunyuan3DDiTFlowMatchingPipeline contract: ``callback(step_index, t,
    output)``
    after every ``callback_steps``-th sampling step, then one geometry-decoder pass per
    ``num_chunks``
    points of the (octree_resolution + 1)^3 grid, and a list with one mesh, or None where no surface
    was found."""

    def __init__(self, mesh):
        self.vae = torch.nn.Module()
        self.vae.geo_decoder = torch.nn.Identity()
        self.mesh = mesh
        self.calls = []

    def __call__(
        self,
        *,
        num_inference_steps,
        octree_resolution,
        num_chunks,
        callback=None,
        callback_steps=None,
        **rest,
    ):
        self.calls.append(
            {
                "num_inference_steps": num_inference_steps,
                "octree_resolution": octree_resolution,
                "num_chunks": num_chunks,
                "callback": callback,
                **rest,
            }
        )
        for index in range(num_inference_steps):
            if callback is not None and index % callback_steps == 0:
                callback(index, torch.tensor(1000.0 * index / num_inference_steps), None)
        for _ in range(math.ceil((octree_resolution + 1) ** 3 / num_chunks)):
            self.vae.geo_decoder(torch.zeros(1))
        return [self.mesh]


def stand_in_backend(mesh=None):
    pipe = StandInPipeline(trimesh.creation.icosphere() if mesh is None else mesh)
    # 16^3 grid points in chunks of 1024: 4 decoder passes, as many as the 4 sampling steps.
    return Hunyuan3DBackend(
        pipe, CPU, steps=4, guidance_scale=3.5, octree_resolution=15, num_chunks=1024
    )


def test_generate_passes_the_options_and_reports_both_phases():
    backend = stand_in_backend()
    cutout = disc_cutout()
    steps = []
    mesh = backend(
        cutout, seed=9, on_denoising_step=lambda done, total: steps.append((done, total))
    )
    assert mesh is backend.pipe.mesh
    # Sampling fills the first half of the stage, volume decoding the second.
    assert steps == [(done, 8) for done in range(1, 9)]
    (call,) = backend.pipe.calls
    assert call["image"] is cutout  # RGBA: hy3dgen recentres by the alpha channel
    assert (call["num_inference_steps"], call["guidance_scale"]) == (4, 3.5)
    assert (call["octree_resolution"], call["num_chunks"]) == (15, 1024)
    assert (call["output_type"], call["enable_pbar"]) == ("trimesh", False)
    assert call["generator"].initial_seed() == 9
    assert not backend.pipe.vae.geo_decoder._forward_hooks

    backend(cutout, seed=9)  # no progress wanted: no callback given
    assert backend.pipe.calls[-1]["callback"] is None


@pytest.mark.parametrize("step", [2, 6], ids=["sampling", "decoding"])
def test_generate_stops_when_cancelled_in_either_phase(step):
    backend = stand_in_backend()
    with pytest.raises(JobCancelled) as cancelled:
        backend(disc_cutout(), seed=0, on_denoising_step=cancel_at(step))
    # Only the memory-releasing wrapper's frame: nothing keeps the run's tensors alive.
    assert [name for name in functions_in_traceback(cancelled.value) if name[0] != __name__] == [
        ("generation.pipelines.denoising", "run")
    ]
    assert not backend.pipe.vae.geo_decoder._forward_hooks


def test_no_surface_is_a_model_error():
    backend = stand_in_backend()
    backend.pipe.mesh = None
    with pytest.raises(ModelError, match="empty shape"):
        backend(disc_cutout(), seed=0)


@pytest.fixture
def recorded_loads(monkeypatch):
    loads = []

    class RecordingPipeline:
        @classmethod
        def from_pretrained(cls, model_path, **kwargs):
            loads.append((model_path, kwargs))
            return StandInPipeline(None)

    monkeypatch.setattr(hunyuan3d, "_pipeline_class", lambda: RecordingPipeline)
    return loads


def test_load_prefers_a_local_folder_and_passes_the_options(recorded_loads, tmp_path, monkeypatch):
    (tmp_path / "Hunyuan3D-2" / "hunyuan3d-dit-v2-0-turbo").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    backend = Hunyuan3DBackend.load(
        "Hunyuan3D-2",
        CPU,
        torch.float32,
        subfolder="hunyuan3d-dit-v2-0-turbo",
        steps=5,
        octree_resolution=256,
    )
    # A relative folder goes absolute, or hy3dgen would look for it under $HY3DGEN_MODELS.
    assert recorded_loads == [
        (
            str(tmp_path / "Hunyuan3D-2"),
            {"subfolder": "hunyuan3d-dit-v2-0-turbo", "device": CPU, "dtype": torch.float32},
        )
    ]
    assert (backend.steps, backend.octree_resolution, backend.num_chunks) == (5, 256, 8000)

    Hunyuan3DBackend.load("tencent/Hunyuan3D-2", CPU, torch.float32)  # not a folder here: a hub id
    assert recorded_loads[-1] == (
        "tencent/Hunyuan3D-2",
        {"subfolder": DEFAULT_SUBFOLDER, "device": CPU, "dtype": torch.float32},
    )
    with pytest.raises(FileNotFoundError, match=DEFAULT_SUBFOLDER):
        Hunyuan3DBackend.load(str(tmp_path / "Hunyuan3D-2"), CPU, torch.float32)


# The real hy3dgen pipeline on tiny random weights.

needs_hy3dgen = pytest.mark.skipif(
    not hy3dgen_importable(),
    reason="hy3dgen is not installed, or its torchvision does not load beside this torch "
    "(PyPI's x86_64 torchvision is a CUDA build): `make test-gpu-packages` runs it",
)
DEVICES = [CPU] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def tiny_folder(tiny_models_dir):
    return tiny_models_dir / FOLDERS["hunyuan3d"]


@needs_hy3dgen
@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_tiny_hunyuan3d_gives_a_closed_mesh(tiny_folder, device):
    backend = load_backend(
        "hunyuan3d", str(tiny_folder), device, torch.float32, steps=3, octree_resolution=32
    )
    assert isinstance(backend, Hunyuan3DBackend)
    steps = []
    mesh = backend(
        disc_cutout(), seed=1, on_denoising_step=lambda done, total: steps.append((done, total))
    )
    # 3 sampling steps, then 33^3 grid points in 5 chunks of 8000.
    assert steps == [(1, 6), (2, 6), (3, 6)] + [(5 + done, 10) for done in range(1, 6)]
    assert isinstance(mesh, trimesh.Trimesh) and mesh.is_watertight and mesh.volume > 0
    # The tiny decoder answers "inside" within a ball of radius 0.6 (see tiny_models).
    assert np.allclose(mesh.extents, 1.2, rtol=0.1)
    glb = finish_mesh(mesh, face_count=500)
    assert (
        0
        < len(trimesh.load(trimesh.util.wrap_as_stream(glb), file_type="glb", force="mesh").faces)
        <= 500
    )


@needs_hy3dgen
@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("step", [2, 7], ids=["sampling", "decoding"])
def test_tiny_hunyuan3d_stops_when_cancelled_and_frees_memory(tiny_folder, device, step):
    backend = load_backend(
        "hunyuan3d", str(tiny_folder), device, torch.float32, steps=3, octree_resolution=32
    )
    allocated = torch.cuda.memory_allocated() if device.type == "cuda" else 0
    with pytest.raises(JobCancelled) as cancelled:
        backend(disc_cutout(), seed=0, on_denoising_step=cancel_at(step))
    assert not any(
        module.startswith("hy3dgen") for module, _ in functions_in_traceback(cancelled.value)
    )
    if device.type == "cuda":
        assert torch.cuda.memory_allocated() == allocated  # only the weights are left
    assert len(backend(disc_cutout(), seed=0).faces) > 0  # still usable afterwards
