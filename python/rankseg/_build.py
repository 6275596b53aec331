"""What this installation of rankseg was built with, and what it can use now."""

from __future__ import annotations

import functools
from importlib import metadata

import torch

from . import _C


def version() -> str:
    """The installed distribution's version (or the source tree's, when it is not installed)."""
    try:
        return metadata.version("rankseg")
    except metadata.PackageNotFoundError:
        return "0.0.0+source"


# The oldest NVIDIA driver that runs code built with each CUDA major release (NVIDIA's compatibility table).
MINIMUM_DRIVER = {11: "450.80", 12: "525.60", 13: "580.65"}


def cuda_runtime() -> str | None:
    """The CUDA release the kernels were built with, "13.0", or None without CUDA kernels."""
    runtime = _C.cuda_runtime_version()
    return f"{runtime // 1000}.{runtime % 1000 // 10}" if runtime else None


@functools.lru_cache(maxsize=1)
def _kernels_unusable() -> str | None:
    """Why the compiled CUDA kernels cannot run though torch sees a GPU (asked once: the answer holds for the
    process), or None."""
    if _C.cuda_device_count() > 0:
        return None
    release = cuda_runtime()
    driver = MINIMUM_DRIVER.get(int(release.split(".")[0])) if release else None
    need = f"an NVIDIA driver >= {driver}" if driver else "a newer NVIDIA driver"
    return (
        f"torch sees a GPU, but the CUDA runtime of rankseg's kernels (CUDA {release}) finds none: the driver is "
        f"too old for them (CUDA {release} needs {need}); update the driver, or install a rankseg built with "
        "an older CUDA"
    )


def cuda_unavailable_reason() -> str | None:
    """Why CUDA tensors are not solved by rankseg's CUDA kernels here (they go through the host then), or None
    when they are."""
    if not _C.cuda_compiled():
        return "this build has no CUDA kernels (build with a CUDA toolkit present, or RANKSEG_CUDA=ON)"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return _kernels_unusable()


def cuda_available() -> bool:
    """Whether CUDA kernels are compiled in and a CUDA device is usable: then CUDA tensors are solved on the
    GPU; :func:`build_info` says why not."""
    return cuda_unavailable_reason() is None


def build_info() -> dict:
    """The build and the runtime, e.g. for bug reports: version, whether CUDA kernels are compiled in
    (``cuda_compiled``) and used here (``cuda_available``, as :func:`cuda_available`), their architectures and
    the CUDA runtime they were built against, visible devices, the CPU instruction sets compiled and the one
    dispatched on this CPU, threads and the torch in use."""
    reason = cuda_unavailable_reason()
    return {
        "version": version(),
        "cuda_compiled": _C.cuda_compiled(),  # CUDA kernels are in this build
        "cuda_available": reason is None,  # ... and CUDA tensors are solved by them here, now
        "cuda_unavailable_reason": reason,
        "cuda_archs": _C.cuda_architectures().split(),
        "cuda_runtime": cuda_runtime(),
        "cuda_devices": _C.cuda_device_count(),
        "cpu_instruction_sets": _C.cpu_instruction_sets,  # compiled
        "cpu_dispatched": _C.cpu_dispatched(),  # the one this CPU runs
        "openmp_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
