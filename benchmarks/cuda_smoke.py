"""One small call down each CUDA path, compared with the CPU, sized to run under compute-sanitizer:
    compute-sanitizer --tool memcheck python benchmarks/cuda_smoke.py
Prints one line per case and exits 1 if any GPU mask differs from the CPU's."""

from __future__ import annotations

import sys

import torch

import rankseg


def case(name, probs, **kwargs):
    cpu = rankseg.rankseg(probs, **kwargs)
    try:
        gpu = rankseg.rankseg(probs.cuda(), **kwargs)
        torch.cuda.synchronize()
    except Exception as error:  # report and go on: the point is to see every path once
        print(f"{name}: ERROR {type(error).__name__}: {error}", flush=True)
        return False
    same = torch.equal(gpu.cpu(), cpu)
    print(f"{name}: {'ok' if same else 'DIFFERENT'} ({(gpu.cpu() != cpu).sum().item()} elements)", flush=True)
    return same


def main() -> int:
    g = torch.Generator().manual_seed(0)
    softmax = (torch.randn(2, 5, 96, 80, generator=g) * 3).softmax(1)
    sigmoid = torch.rand(2, 3, 96, 80, generator=g)
    near_half = 0.3 + 0.2 * torch.rand(1, 1, 3 * 2**20 + 5, generator=g, dtype=torch.float64)
    near_half[..., :2000] = 0.9
    ok = [
        case("multilabel dice", sigmoid, output_mode="multilabel"),
        case("multilabel iou", sigmoid, output_mode="multilabel", metric="iou"),
        case("multilabel dice smooth=1", sigmoid, output_mode="multilabel", smooth=1.0, pruning_prob=0.0),
        case("multilabel float16", sigmoid.half(), output_mode="multilabel"),
        case(
            "multilabel bfloat16 channels_last",
            sigmoid.bfloat16().contiguous(memory_format=torch.channels_last),
            output_mode="multilabel",
        ),
        case("multilabel float64 band too large", near_half, output_mode="multilabel"),
        case("multilabel float64 band too large smooth=1", near_half, output_mode="multilabel", smooth=1.0),
        case("multiclass max_score", softmax),
        case("multiclass void", softmax, unassigned_policy="void", void_index=255),
        case("multiclass iou smooth=1", softmax, metric="iou", smooth=1.0),
        case("multiclass pruning argmax", softmax, pruning="argmax"),
        case("multiclass 1500 classes", (torch.randn(1, 1500, 9, 11, generator=g) * 3).softmax(1), pruning_prob=0.0),
        case("empty batch", softmax[:0]),
        case("one pixel", softmax[:, :, :1, :1]),
    ]
    bad = softmax.clone()
    bad[1, 2, 3, 4] = float("nan")
    try:
        rankseg.rankseg(bad.cuda())
        print("invalid values: NOT REFUSED", flush=True)
        ok.append(False)
    except ValueError as error:
        print(f"invalid values: refused ({error})", flush=True)
    print(f"{sum(ok)} of {len(ok)} cases agree with the CPU")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
