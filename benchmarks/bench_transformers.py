"""postprocess end to end against the processor's own argmax post-processing, on a 150-class output
(ADE20K-sized head) resized to 512 x 512. Run: python -m pytest benchmarks/bench_transformers.py"""

from __future__ import annotations

import pytest
import torch

T = pytest.importorskip("transformers")
pytest.importorskip("PIL")

from rankseg.integration import transformers as hf  # noqa: E402

BATCHES = [1, 4]


def outputs_for(batch):
    g = torch.Generator().manual_seed(0)
    low = torch.randn(batch, 150, 8, 8, generator=g) * 4 - 8
    for i in range(batch):
        low[i, torch.randperm(150, generator=g)[:6]] += 8  # a handful of classes present, as real scenes
    logits = torch.nn.functional.interpolate(low, size=(128, 128), mode="bilinear", align_corners=False)
    return T.modeling_outputs.SemanticSegmenterOutput(logits=logits)


@pytest.mark.parametrize("impl", ["baseline", "rankseg"])
@pytest.mark.parametrize("batch", BATCHES)
def test_postprocess(benchmark, batch, impl):
    outputs = outputs_for(batch)
    sizes = [(512, 512)] * batch
    benchmark.group = f"transformers-postprocess-150x128x128-to-512x512-batch{batch}"
    if impl == "baseline":
        processor = T.SegformerImageProcessorPil()
        run = lambda: processor.post_process_semantic_segmentation(outputs, target_sizes=sizes)
    else:
        run = lambda: hf.postprocess(outputs, target_sizes=sizes)
    benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
