"""The devices that device-parametrised tests run on: the CPU always, CUDA where rankseg's CUDA kernels can run
(they are compiled in and a GPU is usable); the one skip for CUDA cases."""

from __future__ import annotations

import pytest

import rankseg

_INFO = rankseg.build_info()
needs_cuda = pytest.mark.skipif(
    not rankseg.cuda_available(),
    reason="needs CUDA kernels and a GPU (compiled in: {cuda_compiled}, GPUs: {cuda_devices})".format(**_INFO),
)
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
