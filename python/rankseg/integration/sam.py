"""RankSEG for the Segment Anything family in Hugging Face Transformers: SAM and SAM-HQ (``Sam1``), SAM2
(``Sam2``) and SAM3 (``Sam3``).

Each adapter restores mask probabilities exactly as the model's processor builds the masks it thresholds
(``post_process_masks``, ``post_process_instance_segmentation``, ``post_process_semantic_segmentation``), then
RankSEG (multilabel by default: every mask on its own) replaces the 0.5 threshold. Images that share a size go
through one batched solver call. ``transformers`` itself is never imported here.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import torch

from .._rankseg import RankSEG
from ._common import check_same_device, field, image_sizes, is_mapping, per_group, resize, sam_adapter_for, tensor_field

__all__ = ["Sam1", "Sam2", "Sam3"]


class _SamAdapter:
    name = ""

    def __init__(self, rankseg_kwargs: Mapping[str, Any] | None = None) -> None:
        if not isinstance(rankseg_kwargs, (dict, type(None))):
            raise TypeError(f"rankseg_kwargs must be a dict or None, got {type(rankseg_kwargs).__name__}")
        kwargs = dict(rankseg_kwargs or {})
        kwargs.setdefault("output_mode", "multilabel")
        self.segmenter = RankSEG(**kwargs)

    def _check(self, outputs) -> None:
        if isinstance(outputs, tuple):
            raise TypeError("outputs is a tuple (return_dict=False); run the model with return_dict=True")
        if is_mapping(outputs):  # a dict of the fields: the adapter chosen says which generation it is
            return
        family = sam_adapter_for(outputs)
        if family is None:
            raise TypeError(
                f"outputs of type {type(outputs).__name__} is not a SAM-family output (or a mapping of its fields); "
                "for semantic segmentation models use rankseg.integration.transformers.postprocess"
            )
        if family != self.name:
            raise ValueError(
                f"{type(outputs).__name__} comes from a {family} model; use rankseg.integration.sam.{family}, "
                f"not {self.name}"
            )

    def _solve_grouped(self, probs: list[torch.Tensor], dim: int) -> list[torch.Tensor]:
        """RankSEG on per-image probabilities (N, C, H, W) in few calls: images whose other dims agree are
        concatenated along `dim` (0: prompts are separate images anyway; 1: multilabel masks are independent
        per class too), solved at once and split back. An empty concatenation gives empty masks."""

        def solve(_, index):
            stacked = torch.cat([probs[i] for i in index], dim)
            masks = (
                self.segmenter(stacked) if stacked.shape[dim] else stacked.new_zeros(stacked.shape, dtype=torch.bool)
            )
            return masks.split([probs[i].shape[dim] for i in index], dim)

        return per_group([tuple(s for d, s in enumerate(p.shape) if d != dim) for p in probs], solve)


def _prompt_masks(outputs, prompts: str):
    """pred_masks as (batch, prompts, masks, h, w), and the function that gives per-image results back in the
    form they came: the model's 5-D form, or the documented 4-D form (batch, masks, h, w) of one prompt each."""
    logits = tensor_field(
        outputs, "pred_masks", (4, 5), f"(batch, {prompts}, masks, height, width) or (batch, masks, height, width)"
    )
    if logits.dim() == 5:
        return logits, lambda results: results
    return logits.unsqueeze(1), lambda results: [r.squeeze(0) for r in results]


class Sam1(_SamAdapter):
    """SAM and SAM-HQ prompt masks: ``pred_masks`` (B, prompts, masks, h, w).

    Args:
        rankseg_kwargs: Passed to :class:`rankseg.RankSEG`; ``output_mode`` defaults to ``"multilabel"``.
        pad_size: The (height, width) the processor padded images to (``processor.pad_size``; 1024 x 1024).
    """

    name = "Sam1"

    def __init__(
        self, rankseg_kwargs: Mapping[str, Any] | None = None, pad_size: tuple[int, int] = (1024, 1024)
    ) -> None:
        super().__init__(rankseg_kwargs)
        self.pad_size = image_sizes([pad_size], "pad_size", 1, allow_single=False)[0]

    def restore_mask_probs(self, outputs: Any, *, original_sizes: Any, reshaped_input_sizes: Any) -> list[torch.Tensor]:
        """Per image, probabilities (prompts, masks, H, W) ((masks, H, W) for 4-D pred_masks): resize to the
        padded size, crop to the resized input, resize to the original size (bilinear, align_corners=False),
        sigmoid."""
        probs, squeeze = self._restore(outputs, original_sizes, reshaped_input_sizes)
        return squeeze(probs)

    def postprocess(self, outputs: Any, *, original_sizes: Any, reshaped_input_sizes: Any) -> list[torch.Tensor]:
        """Per image, RankSEG masks from :meth:`restore_mask_probs` (bool (prompts, masks, H, W) by default)."""
        with torch.no_grad():
            probs, squeeze = self._restore(outputs, original_sizes, reshaped_input_sizes)
            return squeeze(self._solve_grouped(probs, 0))

    def _restore(self, outputs, original_sizes, reshaped_input_sizes):
        self._check(outputs)
        logits, squeeze = _prompt_masks(outputs, "prompts")
        batch = logits.shape[0]
        original = image_sizes(original_sizes, "original_sizes", batch, allow_single=True)
        reshaped = image_sizes(reshaped_input_sizes, "reshaped_input_sizes", batch, allow_single=True)
        for i, (h, w) in enumerate(reshaped):
            if h > self.pad_size[0] or w > self.pad_size[1]:
                raise ValueError(
                    f"reshaped_input_sizes[{i}] = {(h, w)} is larger than pad_size {self.pad_size}; pass the "
                    "processor's pad_size to Sam1(pad_size=...)"
                )

        def restore(key, index):
            (crop_h, crop_w), size = key
            x = logits[index].flatten(0, 1)  # (images * prompts, masks, h, w)
            x = resize(resize(x, self.pad_size)[..., :crop_h, :crop_w], size).sigmoid()
            return x.unflatten(0, (len(index), logits.shape[1]))

        return per_group(list(zip(reshaped, original)), restore), squeeze


class Sam2(_SamAdapter):
    """SAM2 prompt masks: ``pred_masks`` (B, objects, masks, h, w).

    Args:
        rankseg_kwargs: Passed to :class:`rankseg.RankSEG`; ``output_mode`` defaults to ``"multilabel"``.
        apply_non_overlapping_constraints: As the processor's option: at each pixel only the object with the
            highest logit keeps it; the others are clamped to at most -10 before the sigmoid.
    """

    name = "Sam2"

    def __init__(
        self, rankseg_kwargs: Mapping[str, Any] | None = None, apply_non_overlapping_constraints: bool = False
    ) -> None:
        super().__init__(rankseg_kwargs)
        if not isinstance(apply_non_overlapping_constraints, bool):
            raise TypeError(
                "apply_non_overlapping_constraints must be a bool, got "
                f"{type(apply_non_overlapping_constraints).__name__}"
            )
        self.apply_non_overlapping_constraints = apply_non_overlapping_constraints

    def restore_mask_probs(self, outputs: Any, *, original_sizes: Any) -> list[torch.Tensor]:
        """Per image, probabilities (objects, masks, H, W) ((masks, H, W) for 4-D pred_masks): resize to the
        original size, optionally keep only the highest-logit object per pixel, sigmoid."""
        probs, squeeze = self._restore(outputs, original_sizes)
        return squeeze(probs)

    def postprocess(self, outputs: Any, *, original_sizes: Any) -> list[torch.Tensor]:
        """Per image, RankSEG masks from :meth:`restore_mask_probs` (bool (objects, masks, H, W) by default)."""
        with torch.no_grad():
            probs, squeeze = self._restore(outputs, original_sizes)
            return squeeze(self._solve_grouped(probs, 0))

    def _restore(self, outputs, original_sizes):
        self._check(outputs)
        logits, squeeze = _prompt_masks(outputs, "objects")
        batch, objects = logits.shape[:2]
        original = image_sizes(original_sizes, "original_sizes", batch, allow_single=True)

        def restore(size, index):
            x = resize(logits[index].flatten(0, 1), size).unflatten(0, (len(index), objects))
            if self.apply_non_overlapping_constraints and objects > 1:
                winner = x.argmax(dim=1, keepdim=True) == torch.arange(objects, device=x.device).view(1, -1, 1, 1, 1)
                x = torch.where(winner, x, x.clamp(max=-10.0))
            return x.sigmoid()

        return per_group(original, restore), squeeze


class Sam3(_SamAdapter):
    """SAM3 outputs: instances (``pred_logits``, ``pred_boxes``, ``pred_masks``, optional ``presence_logits``)
    and the semantic map ``semantic_seg``.

    Args:
        rankseg_kwargs: Passed to :class:`rankseg.RankSEG`; ``output_mode`` defaults to ``"multilabel"``.
        threshold: Instances whose score is at most this are dropped, as in the processor (default 0.3).
    """

    name = "Sam3"
    threshold: float

    def __init__(self, rankseg_kwargs: Mapping[str, Any] | None = None, threshold: float = 0.3) -> None:
        super().__init__(rankseg_kwargs)
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a real number, got {type(threshold).__name__}")
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)

    def restore_instance_mask_probs(self, outputs: Any, *, target_sizes: Any = None) -> list[dict]:
        """Per image, a dict of kept instances: ``scores`` (K,), ``boxes`` (K, 4) xyxy (scaled to pixels when
        ``target_sizes`` is given) and ``mask_probs`` (K, H, W). Scores are sigmoid(pred_logits), times
        sigmoid(presence_logits) when present; masks are sigmoid(pred_masks), resized when asked."""
        self._check(outputs)
        logits = tensor_field(outputs, "pred_logits", 2, "(batch, queries)")
        boxes = tensor_field(outputs, "pred_boxes", 3, "(batch, queries, 4)")
        masks = tensor_field(outputs, "pred_masks", 4, "(batch, queries, height, width)")
        fields = {"pred_logits": logits, "pred_boxes": boxes, "pred_masks": masks}
        if field(outputs, "presence_logits") is not None:
            fields["presence_logits"] = tensor_field(outputs, "presence_logits", 2, "(batch, 1)")
        check_same_device(fields)  # the scores select the boxes and masks kept
        batch, queries = logits.shape
        if boxes.shape[:2] != (batch, queries) or boxes.shape[2] != 4 or masks.shape[:2] != (batch, queries):
            raise ValueError(
                f"outputs.pred_logits {tuple(logits.shape)}, pred_boxes {tuple(boxes.shape)} and pred_masks "
                f"{tuple(masks.shape)} must agree on (batch, queries)"
            )
        scores = logits.sigmoid()
        if "presence_logits" in fields:
            scores = scores * fields["presence_logits"].sigmoid()
        probs = masks.sigmoid()
        sizes = None if target_sizes is None else image_sizes(target_sizes, "target_sizes", batch, allow_single=True)
        if sizes is not None:
            scale = torch.tensor([[w, h, w, h] for h, w in sizes], dtype=boxes.dtype, device=boxes.device).reshape(
                -1, 4
            )
            boxes = boxes * scale[:, None, :]
        keep = scores > self.threshold
        results = [
            {"scores": scores[i][keep[i]], "boxes": boxes[i][keep[i]], "mask_probs": probs[i][keep[i]]}
            for i in range(batch)
        ]
        if sizes is not None:  # kept masks of images that share a size are resized together

            def restore(size, index):
                # One zero mask more, dropped after the resize: resizing no masks fails, and a branch on how many
                # were kept would depend on the values, a graph break under torch.compile.
                kept = torch.cat([*(results[i]["mask_probs"] for i in index), probs.new_zeros(1, *probs.shape[2:])])
                resized = resize(kept[None], size)[0][:-1]
                return resized.split([results[i]["mask_probs"].shape[0] for i in index])

            for r, m in zip(results, per_group(sizes, restore)):
                r["mask_probs"] = m
        return results

    def postprocess_instance(self, outputs: Any, *, target_sizes: Any = None) -> list[dict]:
        """Per image, ``scores``, ``boxes`` and RankSEG ``masks`` of the kept instances (bool (K, H, W) by
        default; empty (0, H, W) when nothing clears the threshold)."""
        with torch.no_grad():
            results = self.restore_instance_mask_probs(outputs, target_sizes=target_sizes)
            probs = [r["mask_probs"][None] for r in results]
            if self.segmenter.options.output_mode == "multilabel":
                # A zero mask more per image, for the same reason: its class gets an empty mask and changes no
                # other (multilabel classes are solved independently), and the solver never sees zero classes.
                padded = [torch.cat([p, p.new_zeros(1, 1, *p.shape[2:])], 1) for p in probs]
                masks = [m[0, :-1] for m in self._solve_grouped(padded, 1)]
            else:  # classes compete in multiclass mode, so each image's instances are solved on their own
                masks = [
                    self.segmenter(p)[0] if p.shape[1] else p.new_zeros(p.shape[2:], dtype=torch.int64) for p in probs
                ]
            return [{"scores": r["scores"], "boxes": r["boxes"], "masks": m} for r, m in zip(results, masks)]

    def restore_semantic_mask_probs(self, outputs: Any, *, target_sizes: Any = None) -> list[torch.Tensor]:
        """Per image, the semantic probability map (1, H, W): sigmoid(semantic_seg), resized when asked."""
        self._check(outputs)
        probs = tensor_field(outputs, "semantic_seg", 4, "(batch, 1, height, width)").sigmoid()
        if target_sizes is None:
            return list(probs)
        sizes = image_sizes(target_sizes, "target_sizes", probs.shape[0], allow_single=True)
        return per_group(sizes, lambda size, index: resize(probs[index], size))

    def postprocess_semantic(self, outputs: Any, *, target_sizes: Any = None) -> list[torch.Tensor]:
        """Per image, RankSEG masks from :meth:`restore_semantic_mask_probs` (bool (1, H, W) by default)."""
        with torch.no_grad():
            probs = self.restore_semantic_mask_probs(outputs, target_sizes=target_sizes)
            return [m[0] for m in self._solve_grouped([p[None] for p in probs], 0)]
