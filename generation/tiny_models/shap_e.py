"""The tiny Shap-E img2img model: its image encoder, prior and renderer at toy sizes."""

from pathlib import Path

import torch

from generation.pipelines.marching_cubes import marching_cubes_table
from generation.tiny_models import SEED


def build(folder: Path) -> None:
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
    surface on every run. Only the SDF row is fixed; the colour heads stay random and seed
    dependent.
    """
    sdf_head = renderer.mlp.mlp[-1]
    with torch.no_grad():
        sdf_head.weight[0].zero_()
        sdf_head.bias[0] = 1.0


def _fill_marching_cubes_table(mesh_decoder) -> None:
    """Real Shap-E checkpoints carry this table in the decoder's buffers; a fresh decoder holds
    zeros."""
    cases, masks = marching_cubes_table()
    mesh_decoder.cases.copy_(cases)
    mesh_decoder.masks.copy_(masks)
