"""Which model a worker loads for a job: the configured one, or in test mode (jobs made with a
test API key) the weight-free path on the CPU, whatever the configuration says."""

import pytest
import torch

from generation import registry
from generation.pipelines.image_to_3d.silhouette import SilhouetteBackend


@pytest.fixture
def configured_for_a_gpu(settings, tiny_models_dir):
    """A GPU worker's settings, with weights that are not there: only test mode can load."""
    settings.TORCH_DEVICE = "cuda:7"
    settings.TEXT_TO_IMAGE_MODEL = "/no/such/text-to-image-weights"
    settings.IMAGE_TO_3D_BACKEND = "shap-e"
    settings.IMAGE_TO_3D_MODEL = "/no/such/shap-e-weights"
    settings.TINY_MODELS_DIR = str(tiny_models_dir)
    for cached in (registry.device, registry.dtype, registry.text_to_image_pipeline):
        cached.cache_clear()
    registry.image_to_3d_pipeline.cache_clear()
    yield
    for cached in (registry.device, registry.dtype, registry.text_to_image_pipeline):
        cached.cache_clear()
    registry.image_to_3d_pipeline.cache_clear()


def test_a_test_jobs_text_to_image_model_is_the_tiny_one_on_the_cpu(configured_for_a_gpu):
    pipeline = registry.text_to_image_pipeline(test_mode=True)

    assert pipeline.device == torch.device("cpu")
    assert registry.text_to_image_pipeline(test_mode=True) is pipeline  # loaded once
    assert registry.device() == torch.device("cuda:7")  # live jobs keep the configured device


def test_a_test_jobs_image_to_3d_backend_is_the_weight_free_silhouette(configured_for_a_gpu):
    backend = registry.image_to_3d_pipeline(test_mode=True)

    assert isinstance(backend, SilhouetteBackend)
    assert registry.image_to_3d_pipeline(test_mode=True) is backend


def test_live_jobs_still_load_what_is_configured(configured_for_a_gpu):
    with pytest.raises(ValueError, match="/no/such/shap-e-weights"):
        registry.image_to_3d_pipeline()
