"""rankseg: segmentation masks that maximise expected Dice or IoU (RankSEG), with a compiled core."""

import torch  # noqa: F401  (loads torch's OpenMP runtime before the compiled core, so both share it)

from . import calibration, fitting, functional, metrics
from ._build import build_info, cuda_available, version
from ._module import RankSEGModule
from ._rankseg import RankSEG
from .functional import rankdice_ba, rankseg, rankseg_rma

__version__ = version()
__all__ = [
    "RankSEG",
    "RankSEGModule",
    "rankseg",
    "rankseg_rma",
    "rankdice_ba",
    "functional",
    "metrics",
    "calibration",
    "fitting",
    "distribution",
    "RefinedNormalPB",
    "RefinedNormal",
    "build_info",
    "cuda_available",
    "__version__",
]


def __getattr__(name: str):
    """rankseg.distribution (and its two classes) load on first use: they need SciPy, which rankseg itself does
    not."""
    if name in ("distribution", "RefinedNormalPB", "RefinedNormal"):
        import importlib

        module = importlib.import_module(".distribution", __name__)
        return module if name == "distribution" else getattr(module, name)
    raise AttributeError(f"module 'rankseg' has no attribute {name!r}")
