"""Tiny, randomly initialised checkpoints of the real diffusers pipelines, for tests and local runs.

They are built offline in seconds with the same classes and file layout as the production
checkpoints, so the pipelines load them through the very same ``from_pretrained`` calls.
"""

import math
from pathlib import Path

import torch

from generation.pipelines.marching_cubes import marching_cubes_table

SEED = 0

# Words whose byte-pair merges the tiny tokenizer knows; any other text still encodes byte by byte.
TOKENIZER_WORDS = (
    "a single object centered full view plain white background studio lighting "
    "red blue green chair cup toy car"
).split()


def build_tiny_models(directory: Path) -> dict[str, Path]:
    """Save every tiny pipeline under ``directory``; return their folders by role.

    Hunyuan3D-2's joins them where its optional package hy3dgen can be imported.
    """
    from generation.pipelines.image_to_3d.hunyuan3d import DEFAULT_SUBFOLDER, hy3dgen_importable

    folders = {
        "text-to-image": directory / "text-to-image",
        "shap-e-img2img": directory / "shap-e-img2img",
    }
    _build_text_to_image(folders["text-to-image"])
    _build_shap_e_img2img(folders["shap-e-img2img"])
    if hy3dgen_importable():
        folders["hunyuan3d"] = directory / "hunyuan3d"
        save_hunyuan3d_checkpoint(folders["hunyuan3d"] / DEFAULT_SUBFOLDER, TINY_HUNYUAN3D_CONFIG)
    return folders


def _build_text_to_image(folder: Path) -> None:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _byte_level_clip_tokenizer()
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    _symmetrise_kernels(vae.decoder)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
        # The UNet predicts the clean latents: untrained, that is a smooth random field, which decodes
        # to blobs. Predicting the noise instead would leave the sampler's own white noise behind.
        prediction_type="sample",
    )
    stable_diffusion_pipeline(unet, vae, text_encoder, tokenizer, scheduler).save_pretrained(folder)


def stable_diffusion_pipeline(unet, vae, text_encoder, tokenizer, scheduler):
    """A Stable Diffusion pipeline of these parts, without the safety checker (no weights for it)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _symmetrise_kernels(decoder) -> None:
    """Average every 3x3 kernel over the square's eight symmetries.

    An untrained decoder answers differently at each of the four edges of the picture, where its
    convolutions see zero padding. With symmetric kernels all four margins come out alike: a plain
    background around the blobs, as a real model paints one around its object, so cut-out works.
    """
    with torch.no_grad():
        for conv in decoder.modules():
            if isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == (3, 3):
                flips = [conv.weight, conv.weight.flip(-1), conv.weight.flip(-2), conv.weight.flip(-1, -2)]
                conv.weight.copy_(sum(flips + [kernel.transpose(-1, -2) for kernel in flips]) / 8)


def _byte_level_clip_tokenizer():
    """A CLIP tokenizer over all 256 bytes plus merges that spell out ``TOKENIZER_WORDS``."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    end_of_word = "</w>"
    byte_symbols = sorted(ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>"] + byte_symbols + [s + end_of_word for s in byte_symbols]
    merges = []
    for word in TOKENIZER_WORDS:
        # Merge left to right: "red" -> ("r", "e"), ("re", "d</w>").
        symbols = list(word[:-1]) + [word[-1] + end_of_word]
        prefix = symbols[0]
        for symbol in symbols[1:]:
            if (prefix, symbol) not in merges:
                merges.append((prefix, symbol))
                tokens.append(prefix + symbol)
            prefix += symbol
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _build_shap_e_img2img(folder: Path) -> None:
    from diffusers import PriorTransformer
    from diffusers.pipelines.shap_e import ShapERenderer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    image_size = 32
    embedding_dim = 32
    renderer_width = 8
    torch.manual_seed(SEED)
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            image_size=image_size,
            patch_size=8,
            projection_dim=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
        )
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    prior = PriorTransformer(
        num_attention_heads=2,
        attention_head_dim=16,
        embedding_dim=embedding_dim,
        num_embeddings=4 * renderer_width,  # one latent row per projected MLP weight row, see below
        embedding_proj_dim=32,
        time_embed_dim=4 * embedding_dim,
        num_layers=1,
        clip_embed_dim=2 * embedding_dim,
        additional_embeddings=0,
        time_embed_act_fn="gelu",
        norm_in_type="layer",
        embedding_proj_norm_type="layer",
        encoder_hid_proj_type=None,
        added_emb_type=None,
    )
    renderer = ShapERenderer(
        # The latents become the weights of the first four layers of the renderer's MLP.
        param_shapes=((renderer_width, 93),) + ((renderer_width, renderer_width),) * 3,
        d_latent=embedding_dim,
        d_hidden=renderer_width,
        n_output=12,
    )
    shap_e_img2img_pipeline(prior, image_encoder, image_processor, renderer).save_pretrained(folder)


def shap_e_img2img_pipeline(prior, image_encoder, image_processor, renderer):
    """A Shap-E img2img pipeline of randomly initialised parts, with the published scheduler, a
    renderer that always finds a surface and the marching-cubes table a checkpoint would carry."""
    from diffusers import HeunDiscreteScheduler, ShapEImg2ImgPipeline

    _make_surface_certain(renderer)
    _fill_marching_cubes_table(renderer.mesh_decoder)
    scheduler = HeunDiscreteScheduler(
        beta_schedule="exp",
        num_train_timesteps=1024,
        prediction_type="sample",
        use_karras_sigmas=True,
        clip_sample=True,
        clip_sample_range=1.0,
    )
    return ShapEImg2ImgPipeline(
        prior=prior,
        image_encoder=image_encoder,
        image_processor=image_processor,
        scheduler=scheduler,
        shap_e_renderer=renderer,
    )


def _make_surface_certain(renderer) -> None:
    """Make the untrained SDF head answer "inside" everywhere.

    Random weights give a noise field whose zero crossings, if any, are scattered specks. With a
    zero weight and a positive bias the field is positive throughout, and ``decode_to_mesh`` (which
    pads the grid with -1) closes it into a box filling the bounding volume: a real, closed
    surface on every run. Only the SDF row is fixed; the colour heads stay random and seed dependent.
    """
    sdf_head = renderer.mlp.mlp[-1]
    with torch.no_grad():
        sdf_head.weight[0].zero_()
        sdf_head.bias[0] = 1.0


def _fill_marching_cubes_table(mesh_decoder) -> None:
    """Real Shap-E checkpoints carry this table in the decoder's buffers; a fresh decoder holds zeros."""
    cases, masks = marching_cubes_table()
    mesh_decoder.cases.copy_(cases)
    mesh_decoder.masks.copy_(masks)


# Hunyuan3D-2 checkpoints are hy3dgen's own format: a config.yaml naming each part's class and
# arguments, and one safetensors file whose keys start with the part's name.
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
                        "config": {"model_type": "dinov2", **image_encoder, "image_size": encoder_image_size},
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
        "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "mlp_ratio": 2, "patch_size": 14
    },
    encoder_image_size=28,
    processor_size=64,
)


def save_hunyuan3d_checkpoint(folder: Path, config: dict) -> None:
    """Save randomly initialised Hunyuan3D-2 parts of ``config`` as hy3dgen loads them (fp16 variant)."""
    import safetensors.torch
    import yaml
    from hy3dgen.shapegen.pipelines import instantiate_from_config

    torch.manual_seed(SEED)
    parts = {name: instantiate_from_config(config[name]) for name in ("model", "vae", "conditioner")}
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
        for layer in (block.attn.c_proj, block.mlp.c_proj, geo_decoder.query_proj, geo_decoder.output_proj):
            layer.weight.zero_()
            layer.bias.zero_()
        geo_decoder.query_proj.weight[0, cos_first_frequency] = 1.0
        geo_decoder.query_proj.bias[0] = -level
        geo_decoder.query_proj.weight[1] = -geo_decoder.query_proj.weight[0]
        geo_decoder.query_proj.bias[1] = level
        geo_decoder.output_proj.weight[0, 0] = 1.0
