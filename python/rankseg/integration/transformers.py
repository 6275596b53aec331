"""RankSEG as the last step of a Hugging Face Transformers segmentation pipeline.

``processor -> model(**inputs) -> restore_semantic_probs -> RankSEG -> masks``. Each supported output family
is turned into per-pixel class probabilities exactly as that model's image processor builds the scores its
``post_process_semantic_segmentation`` takes the argmax of, then RankSEG replaces the argmax. The
``transformers`` package itself is never imported here: outputs are recognised by their class (or the nearest
Transformers base class of a subclass) and fields; mappings of the same fields (exported or served models), with
torch or NumPy values, are read by their fields, with ``model=`` (a model, a config, or ``{"model_type": ...}``)
where the fields do not decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .._rankseg import RankSEG
from ._common import (
    check_same_device,
    field,
    image_sizes,
    is_mapping,
    model_type,
    output_name,
    per_group,
    promoted,
    resize,
    sam_adapter_for,
    tensor_field,
    transformers_class,
)

__all__ = ["postprocess", "restore_semantic_probs"]

# Query-based outputs whose processor first resizes mask logits to a fixed size.
_MASK_PRE_RESIZE = {"Mask2FormerForUniversalSegmentationOutput": (384, 384), "mask2former": (384, 384)}
_QUERY_OUTPUTS = {
    "MaskFormerForInstanceSegmentationOutput": "maskformer",
    "Mask2FormerForUniversalSegmentationOutput": "mask2former",
    "OneFormerForUniversalSegmentationOutput": "oneformer",
}
_QUERY_MODEL_TYPES = ("maskformer", "mask2former", "oneformer")
# logits + pred_masks outputs, and whether their logits end with a no-object column.
_DETR_OUTPUTS = {"DetrSegmentationOutput": True, "ConditionalDetrSegmentationOutput": False}
_DETR_MODEL_TYPES = {"detr": True, "conditional_detr": False}


def restore_semantic_probs(outputs: Any, *, model: Any = None, target_sizes: Any = None) -> list[torch.Tensor]:
    """Per-image class probabilities ``(C, H, W)`` from a Transformers segmentation output.

    Args:
        outputs: What ``model(**inputs)`` returned (a ``ModelOutput``; not a ``return_dict=False`` tuple).
            Supported: ``logits`` (B, C, h, w) (SegFormer, UPerNet, DPT, BEiT, MobileViT, ...);
            ``class_queries_logits`` (B, Q, C+1) with ``masks_queries_logits`` (B, Q, h, w) (MaskFormer,
            Mask2Former, OneFormer); ``logits`` (B, Q, C+1 or C) with ``pred_masks`` (B, Q, h, w) (DETR and
            Conditional DETR segmentation).
            A subclass of one of these, or a mapping (dict) with these fields as torch tensors or NumPy
            arrays, is read the same way. Its fields must be on one device and finite (checked in eager calls;
            see docs/deploy.md for compiled ones).
        model: The model that produced ``outputs``, its config, or a dict ``{"model_type": ...}``; needed only
            when the output class alone does not tell how the processor post-processes it (always for DETR-like
            and query mappings).
        target_sizes: ``None`` (keep the model's resolution) or one positive ``(height, width)`` per image, as
            a list/tuple of pairs or ``{"height": h, "width": w}`` dicts, or an integer tensor or array (B, 2).
            Resizing is bilinear, ``align_corners=False``.

    Returns:
        One tensor ``(C, H, W)`` per image (float64 when a field is float64, float32 otherwise; it carries
        gradients when the outputs do and grad mode is on): softmax over classes (sigmoid when C = 1) for ``logits``;
        for query outputs the processor's class-weighted mask scores, normalised to sum to 1 over classes
        (pixels scoring zero everywhere stay zero; clamped to [0, 1] when C = 1). ``argmax`` over dim 0 is
        the processor's ``post_process_semantic_segmentation`` map.
    """
    scores, finish = _semantic_scores(outputs, model)
    sizes = _target_sizes(target_sizes, scores.shape[0], scores.shape[-2:])
    return per_group(sizes, lambda size, index: finish(resize(scores[index], size)))


def postprocess(
    outputs: Any, *, model: Any = None, target_sizes: Any = None, rankseg_kwargs: Mapping[str, Any] | None = None
) -> list[torch.Tensor]:
    """RankSEG masks from a Transformers segmentation output, one per image.

    Arguments as in :func:`restore_semantic_probs`; ``rankseg_kwargs`` go to :class:`rankseg.RankSEG`. Without
    an ``output_mode`` there, it is ``"multiclass"`` (an int64 ``(H, W)`` label map per image) when there are
    several classes and ``"multilabel"`` (a bool ``(1, H, W)`` mask) when there is one. Images that share a
    target size are solved in one batched call.
    """
    if not isinstance(rankseg_kwargs, (dict, type(None))):
        raise TypeError(f"rankseg_kwargs must be a dict or None, got {type(rankseg_kwargs).__name__}")
    kwargs = dict(rankseg_kwargs or {})
    with torch.no_grad():
        scores, finish = _semantic_scores(outputs, model)
        kwargs.setdefault("output_mode", "multiclass" if scores.shape[1] > 1 else "multilabel")
        segmenter = RankSEG(**kwargs)
        sizes = _target_sizes(target_sizes, scores.shape[0], scores.shape[-2:])
        return per_group(sizes, lambda size, index: segmenter(finish(resize(scores[index], size))))


def _semantic_scores(outputs, model):
    """Scores (B, C, h, w) at model resolution, and the function that turns resized scores into probabilities."""
    family = _family(outputs, model)
    if family == "logits":
        logits = tensor_field(outputs, "logits", 4, "(batch, classes, height, width)")
        return logits, _softmax_or_sigmoid
    if family == "queries":
        fields = {
            "class_queries_logits": tensor_field(outputs, "class_queries_logits", 3, "(batch, queries, classes + 1)"),
            "masks_queries_logits": tensor_field(outputs, "masks_queries_logits", 4, "(batch, queries, height, width)"),
        }
        known = transformers_class(outputs)
        pre_resize = _MASK_PRE_RESIZE.get(known.__name__ if known else "") or _MASK_PRE_RESIZE.get(
            model_type(model) or ""
        )
        return _query_scores(fields, True, pre_resize), _normalise
    fields = {
        "logits": tensor_field(outputs, "logits", 3, "(batch, queries, classes)"),
        "pred_masks": tensor_field(outputs, "pred_masks", 4, "(batch, queries, height, width)"),
    }
    return _query_scores(fields, family == "detr", None), _normalise


def _family(outputs, model) -> str:
    if isinstance(outputs, tuple):
        raise TypeError(
            "outputs is a tuple (the model ran with return_dict=False); run it with return_dict=True so the "
            "output fields can be told apart"
        )
    known = transformers_class(outputs)
    name = output_name(outputs)
    sam = sam_adapter_for(outputs)
    if sam:
        raise ValueError(
            f"{name} is a SAM-family output; use rankseg.integration.sam.{sam} "
            f"(from rankseg.integration import sam; sam.{sam}(...).postprocess(...)) instead"
        )
    if known is None and not is_mapping(outputs):
        cls = type(outputs)
        raise TypeError(
            f"outputs of type {cls.__module__}.{cls.__name__} is neither a Transformers ModelOutput (or a subclass "
            "of one) nor a mapping of its fields; for custom or remote-code models, build probabilities "
            "(B, C, H, W) yourself and call rankseg.RankSEG"
        )
    if field(outputs, "patch_offsets") is not None or name.startswith("Eomt"):
        raise ValueError(
            f"{name} carries patch_offsets (EoMT): its semantic maps need the processor's patch merging; use "
            "the image processor's post_process_semantic_segmentation, or merge patches and call rankseg.RankSEG"
        )
    fields = ("logits", "class_queries_logits", "masks_queries_logits", "pred_masks")
    has = {f for f in fields if field(outputs, f) is not None}
    if {"class_queries_logits", "masks_queries_logits"} <= has:
        if name not in _QUERY_OUTPUTS and model_type(model) not in _QUERY_MODEL_TYPES:
            raise ValueError(f"unknown query-based output {name}; pass model= so its post-processing can be matched")
        return "queries"
    if {"logits", "pred_masks"} <= has:
        if name in _DETR_OUTPUTS:
            return "detr" if _DETR_OUTPUTS[name] else "detr_all_classes"
        kind = model_type(model)
        if kind is not None and kind in _DETR_MODEL_TYPES:
            return "detr" if _DETR_MODEL_TYPES[kind] else "detr_all_classes"
        raise ValueError(
            f"{name} has logits and pred_masks, but whether its logits end with a no-object column depends on "
            "the model; pass model= (DETR has one, Conditional DETR has none)"
        )
    if "pred_masks" in has:
        raise ValueError(
            f"{name} has pred_masks but no class logits (SegGPT-style); its semantic reconstruction is not "
            "supported: use the image processor's post-processing"
        )
    if "logits" in has:
        return "logits"
    raise ValueError(
        f"{name} has none of the supported fields: logits, class_queries_logits + masks_queries_logits, "
        "logits + pred_masks"
    )


def _query_scores(fields: dict[str, torch.Tensor], has_no_object, pre_resize) -> torch.Tensor:
    """sum_q p(class | q) * sigmoid(mask_q), as the processors form it, from {class field: logits, mask field:
    logits}; (B, C, h, w), in the dtype torch gives a sum of the two."""
    check_same_device(fields)
    class_field, mask_field = fields
    class_logits, mask_logits = promoted(*fields.values())
    b, q = class_logits.shape[:2]
    if mask_logits.shape[:2] != (b, q):
        raise ValueError(
            f"outputs.{class_field} {tuple(class_logits.shape)} and outputs.{mask_field} {tuple(mask_logits.shape)} "
            "must agree on (batch, queries)"
        )
    if has_no_object and class_logits.shape[2] < 2:
        raise ValueError(f"outputs.{class_field} needs at least one class besides the no-object column")
    if pre_resize is not None:
        mask_logits = resize(mask_logits, pre_resize)
    classes = class_logits.softmax(dim=-1)
    if has_no_object:
        classes = classes[..., :-1]
    return torch.einsum("bqc, bqhw -> bchw", classes, mask_logits.sigmoid())


def _softmax_or_sigmoid(logits: torch.Tensor) -> torch.Tensor:
    return logits.sigmoid() if logits.shape[1] == 1 else logits.softmax(dim=1)


def _normalise(scores: torch.Tensor) -> torch.Tensor:
    """Scores over classes scaled to sum to 1; all-zero pixels stay zero; one class is clamped to [0, 1]."""
    if scores.shape[1] == 1:
        return scores.clamp(0, 1)
    total = scores.sum(dim=1, keepdim=True)
    return torch.where(total > 0, scores / torch.where(total > 0, total, torch.ones_like(total)), scores)


def _target_sizes(target_sizes, batch: int, model_size) -> list[tuple[int, int]]:
    if target_sizes is None:
        height, width = (int(s) for s in model_size)
        return [(height, width)] * batch
    return image_sizes(target_sizes, "target_sizes", batch, allow_single=False)
