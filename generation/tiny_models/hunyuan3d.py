"""The tiny Hunyuan3D-2 shape model (needs the optional package hy3dgen to build).

Hunyuan3D-2 checkpoints are hy3dgen's own format: a config.yaml naming each part's class and
arguments, and one safetensors file whose keys start with the part's name.
"""

import math
from pathlib import Path

import torch

from generation.tiny_models import SEED


def hunyuan3d_config(
    *, dit: dict, vae: dict, image_encoder: dict, encoder_image_size: int, processor_size: int
) -> dict:
    """The config.yaml of a Hunyuan3D-2 shape checkpoint whose parts have these sizes: the DiT, the
    shape VAE and the DINOv2 image encoder (seeing ``encoder_image_size`` px of the
    ``processor_size`` px canvas that hy3dgen's image processor prepares)."""
    return {
        "model": {"target": "hy3dgen.shapegen.models.Hunyuan3DDiT", "params": dit},
        "vae": {"target": "hy3dgen.shapegen.models.ShapeVAE", "params": vae},
        "conditioner": {
            "target": "hy3dgen.shapegen.models.SingleImageEncoder",
            "params": {
                "main_image_encoder": {
                    "type": "DinoImageEncoder",
                    "kwargs": {
                        "config": {
                            "model_type": "dinov2",
                            **image_encoder,
                            "image_size": encoder_image_size,
                        },
                        "image_size": encoder_image_size,
                    },
                }
            },
        },
        "scheduler": {
            "target": "hy3dgen.shapegen.schedulers.FlowMatchEulerDiscreteScheduler",
            "params": {"num_train_timesteps": 1000},
        },
        "image_processor": {
            "target": "hy3dgen.shapegen.preprocessors.ImageProcessorV2",
            "params": {"size": processor_size, "border_ratio": 0.15},
        },
    }


TINY_HUNYUAN3D_CONFIG = hunyuan3d_config(
    dit={
        "in_channels": 8,  # the VAE's embed_dim
        "context_in_dim": 32,  # the image encoder's hidden_size
        "hidden_size": 32,
        "mlp_ratio": 2.0,
        "num_heads": 2,
        "depth": 1,
        "depth_single_blocks": 1,
        "axes_dim": [16],  # hidden_size // num_heads
        "theta": 10000,
        "qkv_bias": True,
    },
    vae={
        "num_latents": 16,
        "embed_dim": 8,
        "width": 32,
        "heads": 2,
        "num_decoder_layers": 1,
        "num_freqs": 2,
        "include_pi": False,
        "qkv_bias": False,
        "qk_norm": True,
        "scale_factor": 1.0,
    },
    image_encoder={
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "mlp_ratio": 2,
        "patch_size": 14,
    },
    encoder_image_size=28,
    processor_size=64,
)


def multiview(config: dict, views: int = 4) -> dict:
    """``config`` as a Hunyuan3D-2mv checkpoint: the image encoder takes up to ``views`` views
    (front, left, back, right), each with its own view embedding, and the processor a dict of
    them."""
    conditioner = config["conditioner"]["params"]["main_image_encoder"]
    return {
        **config,
        "conditioner": {
            **config["conditioner"],
            "params": {
                "main_image_encoder": {
                    "type": "DinoImageEncoderMV",
                    "kwargs": {**conditioner["kwargs"], "view_num": views},
                }
            },
        },
        "image_processor": {
            **config["image_processor"],
            "target": "hy3dgen.shapegen.preprocessors.MVImageProcessorV2",
        },
    }


TINY_HUNYUAN3D_MV_CONFIG = multiview(TINY_HUNYUAN3D_CONFIG)
# Hunyuan3D-2mv's checkpoint folder (tencent/Hunyuan3D-2mv has it, and its turbo and fast ones).
MV_SUBFOLDER = "hunyuan3d-dit-v2-mv"


def save_hunyuan3d_checkpoint(folder: Path, config: dict) -> None:
    """Save randomly initialised Hunyuan3D-2 parts of ``config`` as hy3dgen loads them (fp16
    variant)."""
    import safetensors.torch
    import yaml
    from hy3dgen.shapegen.pipelines import instantiate_from_config

    torch.manual_seed(SEED)
    parts = {
        name: instantiate_from_config(config[name]) for name in ("model", "vae", "conditioner")
    }
    _make_hunyuan3d_surface_certain(parts["vae"].geo_decoder)
    tensors = {
        f"{name}.{key}": (value.half() if value.is_floating_point() else value).cpu().contiguous()
        for name, part in parts.items()
        for key, value in part.state_dict().items()
    }
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    safetensors.torch.save_file(tensors, str(folder / "model.fp16.safetensors"))


def _make_hunyuan3d_surface_certain(geo_decoder, radius: float = 0.6) -> None:
    """Make the untrained geometry decoder answer "inside" within a ball of ``radius`` and "outside"
    elsewhere, so marching cubes finds one closed surface (random weights give noise, or nothing).

    The decoder's residual branches are silenced, so each query point only sees its own Fourier
    features; channel 0 of its projection becomes ``sum(cos(f x_i)) - level``, positive inside the
    ball, and channel 1 its negative. The two cancel in the mean of the final layer norm, which
    therefore keeps channel 0's sign, and the output reads channel 0.
    """
    embedder = geo_decoder.fourier_embedder
    frequency = float(embedder.frequencies[0])
    level = 2 + math.cos(frequency * radius)  # the sum at (radius, 0, 0)
    # Features are [x (if included), sin(x_i f_k), cos(x_i f_k)], by coordinate i, then frequency k.
    cos_start = 3 * embedder.include_input + 3 * embedder.num_freqs
    cos_first_frequency = [cos_start + i * embedder.num_freqs for i in range(3)]
    block = geo_decoder.cross_attn_decoder
    with torch.no_grad():
        for layer in (
            block.attn.c_proj,
            block.mlp.c_proj,
            geo_decoder.query_proj,
            geo_decoder.output_proj,
        ):
            layer.weight.zero_()
            layer.bias.zero_()
        geo_decoder.query_proj.weight[0, cos_first_frequency] = 1.0
        geo_decoder.query_proj.bias[0] = -level
        geo_decoder.query_proj.weight[1] = -geo_decoder.query_proj.weight[0]
        geo_decoder.query_proj.bias[1] = level
        geo_decoder.output_proj.weight[0, 0] = 1.0


def build(folder: Path) -> None:
    from generation.pipelines.image_to_3d.hunyuan3d import DEFAULT_SUBFOLDER

    save_hunyuan3d_checkpoint(folder / DEFAULT_SUBFOLDER, TINY_HUNYUAN3D_CONFIG)
