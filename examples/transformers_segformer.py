"""RankSEG after a Hugging Face SegFormer, end to end, with no download.

The model is a tiny SegFormer built from its config with random weights, so its masks mean nothing; what this
shows is the code path: the usual processor -> model -> outputs flow, with only the last step replaced.
Run: python examples/transformers_segformer.py  (needs: pip install "rankseg[transformers]" pillow)
"""

import numpy as np
import torch
from PIL import Image
from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessorPil

from rankseg.integration import transformers

torch.manual_seed(0)
config = SegformerConfig(
    num_encoder_blocks=2,
    depths=[1, 1],
    sr_ratios=[2, 1],
    hidden_sizes=[16, 32],
    num_attention_heads=[1, 1],
    decoder_hidden_size=32,
    num_labels=8,
    patch_sizes=[7, 3],
    strides=[4, 2],
)
model = SegformerForSemanticSegmentation(config).eval()
# Random weights give nearly equal logits for every class; widen the classifier so that, as in a trained
# model, classes differ and some pixels are confident.
torch.nn.init.normal_(model.decode_head.classifier.weight, std=20.0)
processor = SegformerImageProcessorPil(size={"height": 128, "width": 128})

image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))
inputs = processor(images=image, return_tensors="pt")
with torch.no_grad():
    outputs = model(**inputs)

target_sizes = [image.size[::-1]]  # (height, width)
baseline = processor.post_process_semantic_segmentation(outputs, target_sizes=target_sizes)[0]
probs = transformers.restore_semantic_probs(outputs, target_sizes=target_sizes)[0]
ranked = transformers.postprocess(outputs, target_sizes=target_sizes, rankseg_kwargs={"metric": "dice"})[0]

print(f"logits {tuple(outputs.logits.shape)} -> probabilities {tuple(probs.shape)}, masks {tuple(ranked.shape)}")
agree = (probs.argmax(0) == baseline).double().mean().item()
print(f"argmax of the restored probabilities agrees with the processor's map on {agree:.2%} of pixels")
print(f"pixels per class, argmax : {torch.bincount(baseline.flatten(), minlength=8).tolist()}")
print(f"pixels per class, RankSEG: {torch.bincount(ranked.flatten(), minlength=8).tolist()}")
print(f"pixels relabelled by RankSEG: {(ranked != baseline).double().mean().item():.1%}")
