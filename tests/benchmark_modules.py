"""The benchmark scripts as modules, for tests of what the benchmarks report."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def load_benchmark(name: str):
    """The module benchmarks/<name>.py, for tests of what the benchmarks report."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module
