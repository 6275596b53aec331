"""The devices that device-parametrised tests run on."""

from __future__ import annotations

import pytest
import torch

CUDA = [pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
