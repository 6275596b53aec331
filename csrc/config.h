// The macros the CPU and CUDA sources share: how a function is compiled for both devices, and which
// instruction sets the CPU's streaming passes are built for.
#pragma once

// Functions that CPU and CUDA code both call (score formulas, exact sums, value conversions): compiled for
// both from one definition, so the two devices evaluate the same expressions.
#if defined(__CUDACC__)
#define RANKSEG_HOST_DEVICE __host__ __device__
#else
#define RANKSEG_HOST_DEVICE
#endif

// RANKSEG_ISA_CLONES is 1 where GCC builds each streaming pass twice, for x86-64-v3 (AVX2) and the baseline,
// and its resolver picks one at load time (cpu/streaming.cpp marks them RANKSEG_CLONES). RANKSEG_SINGLE_ISA
// builds one instruction set, chosen by -march: tests/test_isa.py builds the passes so to compare them.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RANKSEG_SINGLE_ISA)
#define RANKSEG_ISA_CLONES 1
#define RANKSEG_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RANKSEG_ISA_CLONES 0
#define RANKSEG_CLONES
#endif
