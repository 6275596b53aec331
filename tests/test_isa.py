"""The streaming passes and the band gather give the same bits whatever instruction set they were built for.

The package picks AVX2 or baseline code at run time; here each is built on its own (RANKSEG_SINGLE_ISA) from the
same sources and run on the same inputs. Needs a C++ compiler on x86-64 Linux, as building the package does.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "tests/isa/passes.cpp", ROOT / "csrc/cpu/streaming.cpp", ROOT / "csrc/cpu/band.cpp"]
COMPILER = shutil.which("c++") or shutil.which("g++")


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(COMPILER is None or platform.machine() != "x86_64", reason="needs a C++ compiler on x86-64")
def test_every_instruction_set_gives_the_same_bits(tmp_path):
    flags = cpu_flags()
    arches = ["x86-64"] + (["x86-64-v3"] if "avx2" in flags else []) + (["x86-64-v4"] if "avx512f" in flags else [])
    outputs = {}
    for arch in arches:
        binary = tmp_path / arch
        subprocess.run(
            [
                COMPILER,
                "-std=c++17",
                "-O3",
                f"-march={arch}",
                "-ffp-contract=off",
                "-DRANKSEG_SINGLE_ISA",
                "-Wno-psabi",
                f"-I{ROOT / 'csrc'}",
                *map(str, SOURCES),
                "-o",
                str(binary),
            ],
            check=True,
        )
        outputs[arch] = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    assert len(outputs["x86-64"].splitlines()) == 64
    for arch in arches[1:]:
        assert outputs[arch] == outputs["x86-64"], f"{arch} differs from the baseline build"
