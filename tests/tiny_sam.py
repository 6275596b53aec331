"""Outputs of tiny randomly initialised SAM, SAM2 and SAM3 models, with decisive mask logits."""

from __future__ import annotations

import pytest
import torch

T = pytest.importorskip("transformers")


def decisive(outputs, *fields, seed=1):
    """Random heads give near-constant logits; same-shaped decisive ones make comparisons meaningful."""
    g = torch.Generator().manual_seed(seed)
    for field in fields:
        outputs[field] = torch.randn(getattr(outputs, field).shape, generator=g) * 3
    return outputs


_CACHE = {}


def sam1_outputs():
    if "sam1" not in _CACHE:
        torch.manual_seed(0)
        config = T.SamConfig(
            vision_config=T.SamVisionConfig(
                hidden_size=16,
                num_hidden_layers=1,
                num_attention_heads=1,
                mlp_dim=16,
                output_channels=8,
                image_size=64,
                patch_size=16,
                global_attn_indexes=[0],
                num_pos_feats=4,
            ),
            prompt_encoder_config=T.SamPromptEncoderConfig(
                hidden_size=8, image_size=64, patch_size=16, mask_input_channels=4
            ),
            mask_decoder_config=T.SamMaskDecoderConfig(
                hidden_size=8, num_hidden_layers=1, num_attention_heads=1, mlp_dim=16, iou_head_hidden_dim=8
            ),
        )
        with torch.no_grad():
            out = T.SamModel(config).eval()(
                pixel_values=torch.randn(3, 3, 64, 64), input_points=torch.rand(3, 2, 1, 2) * 64
            )
        _CACHE["sam1"] = decisive(out, "pred_masks")
    return _CACHE["sam1"]


def sam2_outputs():
    if "sam2" not in _CACHE:
        torch.manual_seed(0)
        hiera = T.Sam2HieraDetConfig(
            hidden_size=8,
            num_attention_heads=1,
            blocks_per_stage=[1, 1, 2, 1],
            embed_dim_per_stage=[8, 16, 32, 64],
            num_attention_heads_per_stage=[1, 1, 1, 1],
            window_size_per_stage=[4, 4, 4, 4],
            global_attention_blocks=[3],
            window_positional_embedding_background_size=[2, 2],
            image_size=64,
            patch_kernel_size=[7, 7],
            patch_stride=[4, 4],
            patch_padding=[3, 3],
        )
        config = T.Sam2Config(
            vision_config=T.Sam2VisionConfig(
                backbone_config=hiera,
                backbone_channel_list=[64, 32, 16, 8],
                fpn_hidden_size=16,
                num_feature_levels=3,
                backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
            ),
            prompt_encoder_config=T.Sam2PromptEncoderConfig(
                hidden_size=16, image_size=64, patch_size=16, mask_input_channels=4
            ),
            mask_decoder_config=T.Sam2MaskDecoderConfig(
                hidden_size=16, num_hidden_layers=1, num_attention_heads=1, mlp_dim=16, iou_head_hidden_dim=8
            ),
        )
        with torch.no_grad():
            out = T.Sam2Model(config).eval()(
                pixel_values=torch.randn(3, 3, 64, 64),
                input_points=torch.rand(3, 3, 1, 2) * 64,
                input_labels=torch.ones(3, 3, 1, dtype=torch.long),
            )
        _CACHE["sam2"] = decisive(out, "pred_masks")
    return _CACHE["sam2"]


def sam3_fields(queries=6, presence=True) -> dict:
    """SAM3's output fields as a mapping, which the adapter reads without the output class (that needs
    torchvision)."""
    g = torch.Generator().manual_seed(2)
    return {
        "pred_logits": torch.randn(3, queries, generator=g) * 2,
        "pred_boxes": torch.rand(3, queries, 4, generator=g),
        "pred_masks": torch.randn(3, queries, 16, 16, generator=g) * 3,
        "presence_logits": torch.randn(3, 1, generator=g) if presence else None,
        "semantic_seg": torch.randn(3, 1, 16, 16, generator=g) * 3,
    }


def sam3_outputs(queries=6, presence=True):
    try:
        from transformers.models.sam3.modeling_sam3 import Sam3ImageSegmentationOutput
    except ImportError as e:  # its modeling module needs torchvision
        pytest.skip(f"SAM3 output classes are not importable here: {e}")
    return Sam3ImageSegmentationOutput(**sam3_fields(queries, presence))
