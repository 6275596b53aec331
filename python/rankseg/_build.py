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
    """The build and the runtime, e.g. for bug reports: version, whether CUDA kernels are compiled in
    (``cuda_compiled``) and used here (``cuda_available``, as :func:`cuda_available`), their architectures and
    the CUDA runtime they were built against, visible devices, the CPU instruction sets compiled and the one
    dispatched on this CPU, threads and the torch in use."""
    runtime = _C.cuda_runtime_version()
    return {
        "version": version(),
        "cuda_compiled": _C.cuda_compiled(),  # CUDA kernels are in this build
        "cuda_available": cuda_available(),  # ... and CUDA tensors are solved by them here, now
        "cuda_archs": _C.cuda_architectures().split(),
        "cuda_runtime": f"{runtime // 1000}.{runtime % 1000 // 10}" if runtime else None,
        "cuda_devices": _C.cuda_device_count(),
        "cpu_instruction_sets": _C.cpu_instruction_sets,  # compiled
        "cpu_dispatched": _C.cpu_dispatched(),  # the one this CPU runs
        "openmp_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
