"""rankseg: segmentation masks that maximise expected Dice or IoU (RankSEG), with a compiled core."""

import torch  # noqa: F401  (loads torch's OpenMP runtime before the compiled core, so both share it)

from . import functional, metrics
from ._build import build_info, cuda_available, version
from ._rankseg import RankSEG
from .functional import rankseg

__version__ = version()
__all__ = ["RankSEG", "rankseg", "functional", "metrics", "build_info", "cuda_available", "__version__"]
