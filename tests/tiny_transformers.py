"""Tiny randomly initialised Transformers segmentation models, and their outputs with decisive logits."""

from __future__ import annotations

import pytest
import torch

T = pytest.importorskip("transformers")


def swin():
    return T.SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=2,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )


def resnet():
    return T.ResNetConfig(
        num_channels=3,
        embedding_size=8,
        hidden_sizes=[8, 16, 24, 32],
        depths=[1, 1, 1, 1],
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )


def detr_config(cls, labels):
    return cls(
        use_timm_backbone=False,
        use_pretrained_backbone=False,
        backbone_config=resnet(),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        num_queries=5,
        num_labels=labels,
    )


# name -> (model builder, processor class name, extra forward inputs)
MODELS = {
    "segformer": (
        lambda c: T.SegformerForSemanticSegmentation(
            T.SegformerConfig(
                num_encoder_blocks=2,
                depths=[1, 1],
                sr_ratios=[2, 1],
                hidden_sizes=[8, 16],
                num_attention_heads=[1, 1],
                decoder_hidden_size=16,
                num_labels=c,
                patch_sizes=[7, 3],
                strides=[4, 2],
            )
        ),
        "SegformerImageProcessor",
        {},
    ),
    "upernet": (
        lambda c: T.UperNetForSemanticSegmentation(
            T.UperNetConfig(
                backbone_config=T.ConvNextConfig(
                    num_channels=3,
                    hidden_sizes=[8, 16, 24, 32],
                    depths=[1, 1, 1, 1],
                    out_features=["stage1", "stage2", "stage3", "stage4"],
                ),
                hidden_size=16,
                auxiliary_in_channels=24,
                num_labels=c,
            )
        ),
        "SegformerImageProcessor",
        {},
    ),
    "dpt": (
        lambda c: T.DPTForSemanticSegmentation(
            T.DPTConfig(
                image_size=64,
                patch_size=16,
                hidden_size=16,
                num_hidden_layers=4,
                num_attention_heads=2,
                intermediate_size=32,
                backbone_out_indices=[0, 1, 2, 3],
                neck_hidden_sizes=[8, 8, 8, 8],
                fusion_hidden_size=16,
                num_labels=c,
            )
        ),
        "DPTImageProcessor",
        {},
    ),
    "beit": (
        lambda c: T.BeitForSemanticSegmentation(
            T.BeitConfig(
                image_size=64,
                patch_size=16,
                hidden_size=16,
                num_hidden_layers=4,
                num_attention_heads=2,
                intermediate_size=32,
                out_indices=[0, 1, 2, 3],
                pool_scales=[1, 2],
                num_labels=c,
                auxiliary_channels=16,
            )
        ),
        "BeitImageProcessor",
        {},
    ),
    "mobilevit": (
        lambda c: T.MobileViTForSemanticSegmentation(
            T.MobileViTConfig(
                image_size=64,
                hidden_sizes=[16, 16, 16],
                neck_hidden_sizes=[8, 8, 8, 8, 8, 8, 16],
                num_labels=c,
                aspp_out_channels=16,
            )
        ),
        "MobileViTImageProcessor",
        {},
    ),
    "maskformer": (
        lambda c: T.MaskFormerForInstanceSegmentation(
            T.MaskFormerConfig(
                backbone_config=swin(),
                num_labels=c,
                fpn_feature_size=32,
                mask_feature_size=32,
                num_queries=5,
                decoder_config=T.DetrConfig(
                    d_model=32,
                    encoder_layers=1,
                    decoder_layers=1,
                    encoder_attention_heads=1,
                    decoder_attention_heads=1,
                    encoder_ffn_dim=16,
                    decoder_ffn_dim=16,
                    num_queries=5,
                ),
            )
        ),
        "MaskFormerImageProcessor",
        {},
    ),
    "mask2former": (
        lambda c: T.Mask2FormerForUniversalSegmentation(
            T.Mask2FormerConfig(
                backbone_config=swin(),
                num_labels=c,
                hidden_dim=32,
                feature_size=32,
                mask_feature_size=32,
                num_queries=5,
                encoder_layers=1,
                decoder_layers=2,
                num_attention_heads=1,
                dim_feedforward=16,
                encoder_feedforward_dim=16,
            )
        ),
        "Mask2FormerImageProcessor",
        {},
    ),
    "oneformer": (
        lambda c: T.OneFormerForUniversalSegmentation(
            T.OneFormerConfig(
                backbone_config=swin(),
                num_labels=c,
                hidden_dim=32,
                conv_dim=32,
                mask_dim=32,
                num_queries=5,
                encoder_layers=1,
                decoder_layers=2,
                num_attention_heads=1,
                dim_feedforward=16,
                text_encoder_width=32,
                text_encoder_num_layers=1,
                text_encoder_context_length=8,
                text_encoder_proj_layers=1,
                text_encoder_n_ctx=4,
                text_encoder_vocab_size=50,
                max_seq_len=8,
                task_seq_len=8,
                is_training=False,
            )
        ),
        "OneFormerImageProcessor",
        {"task_inputs": lambda b: torch.randint(0, 50, (b, 8))},
    ),
    "detr": (lambda c: T.DetrForSegmentation(detr_config(T.DetrConfig, c)), "DetrImageProcessor", {}),
    "conditional_detr": (
        lambda c: T.ConditionalDetrForSegmentation(detr_config(T.ConditionalDetrConfig, c)),
        "ConditionalDetrImageProcessor",
        {},
    ),
}


_RUNS = {}


def model_run(name, classes=6, batch=3):
    """Runs the tiny model once, then overwrites its output fields with decisive random logits, since a
    randomly initialised head gives near-constant logits that would make every comparison meaningless."""
    key = (name, classes, batch)
    if key not in _RUNS:
        torch.manual_seed(0)
        build, _, extra = MODELS[name]
        model = build(classes).eval()
        inputs = {k: f(batch) for k, f in extra.items()}
        with torch.no_grad():
            outputs = model(pixel_values=torch.randn(batch, 3, 64, 64), **inputs)
        g = torch.Generator().manual_seed(1)
        for field in ("logits", "class_queries_logits", "masks_queries_logits", "pred_masks"):
            value = getattr(outputs, field, None)
            if isinstance(value, torch.Tensor):
                outputs[field] = torch.randn(value.shape, generator=g) * 3
        _RUNS[key] = (model, outputs)
    return _RUNS[key]
