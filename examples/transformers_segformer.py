"""RankSEG after a Hugging Face SegFormer, end to end, with no download.

The model is a tiny SegFormer built from its config with random weights, so its masks mean nothing; what this
shows is the code path: the usual processor -> model -> outputs flow, with only the last step replaced, and the
fitted path: RankSEG fitted on labelled validation images, then used on the test image. With no labelled data
at hand, the "validation labels" are drawn from the model's own probabilities, so the model is calibrated by
construction and every score below is the exact expected Dice under those probabilities.
Run: python examples/transformers_segformer.py  (needs: pip install "rankseg[transformers]" pillow)
"""

import numpy as np
import torch
from PIL import Image
from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessorPil

import rankseg
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


def model_outputs(seed: int):
    image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    with torch.no_grad():
        return image, model(**processor(images=image, return_tensors="pt"))


image, outputs = model_outputs(0)

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

# The fitted path: fit on labelled validation outputs (here 8 other images, their labels drawn from the model's
# probabilities), then predict. fit keeps argmax for every class where RankSEG did not measure a gain.
validation = []
for seed in range(1, 9):
    val_image, val_outputs = model_outputs(seed)
    val_probs = transformers.restore_semantic_probs(val_outputs, target_sizes=[val_image.size[::-1]])[0][None]
    drawn = torch.multinomial(val_probs[0].flatten(1).t(), 1, generator=torch.Generator().manual_seed(seed))
    validation.append((val_probs, drawn.view(1, *val_probs.shape[2:])))
fitted = rankseg.RankSEG(metric="dice").fit(validation)
print(fitted.report())
fitted_labels = fitted(probs[None])[0]

scores = {
    name: rankseg.metrics.expected_dice(probs[None], labels[None]).mean().item()
    for name, labels in (("argmax", baseline), ("RankSEG (default)", ranked), ("RankSEG (fitted)", fitted_labels))
}
for name, score in scores.items():
    print(f"expected Dice, {name:17}: {score:.4f} ({score - scores['argmax']:+.4f} against argmax)")
