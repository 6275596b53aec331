"""What this installation of rankseg was built with, and what it can use now."""

from __future__ import annotations

from importlib import metadata

import torch

from . import _C


def version() -> str:
    """The installed distribution's version (or the source tree's, when it is not installed)."""
    try:
        return metadata.version("rankseg")
    except metadata.PackageNotFoundError:
        return "0.0.0+source"


def cuda_available() -> bool:
    """Whether CUDA kernels are compiled in and a CUDA device is usable: then CUDA tensors are solved on the
    GPU."""
    return _C.cuda_compiled() and _C.cuda_device_count() > 0 and torch.cuda.is_available()


def build_info() -> dict:
    """The build and the runtime, e.g. for bug reports: version, CUDA kernels and architectures, the CUDA
    runtime they were built against, visible GPUs, CPU instruction sets, threads and the torch in use."""
    runtime = _C.cuda_runtime_version()
    return {
        "version": version(),
        "cuda": _C.cuda_compiled(),
        "cuda_archs": _C.cuda_architectures().split(),
        "cuda_runtime": f"{runtime // 1000}.{runtime % 1000 // 10}" if runtime else None,
        "cuda_devices": _C.cuda_device_count(),
        "cpu_instruction_sets": _C.cpu_instruction_sets,
        "openmp_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
