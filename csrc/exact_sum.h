// Exact, order-free sums of probabilities, shared by the CPU and CUDA kernels.
//
// Every probability p in [0, 1] enters a sum as the integer q = round(p * 2^43) (ties to even), and sums are
// integers, so they do not depend on the order of the additions: threads, lanes, blocks and atomics all give
// the same bits, which is what lets the GPU reproduce the CPU's masks exactly. The rounding is at most 2^-44
// per pixel, below float64's own rounding of any sum of more than a few pixels, and every float16 value and
// every float32/bfloat16 value >= 2^-20 is represented exactly.
#pragma once

#include <cstdint>
#include <cstring>

#include "config.h"

namespace rankseg {

constexpr int kFixedBits = 43;
// Adding this to p in [0, 1] rounds p to a multiple of 2^-43: [512, 513] lies in one binade of step 2^-43,
// so the low bits of (p + 512) are q. A chunk of up to 2^20 values sums to at most 2^63: it fits in 64 bits.
constexpr double kFixedMagic = 512.0;
constexpr uint64_t kFixedMagicBits = 0x4080000000000000ull;  // the bit pattern of 512.0

// A chunk: up to this many consecutive pixels of one class, whose q sum in 64 bits. The CPU forms every sum
// per chunk (cpu/pixels.h); the GPU counts each class's band per chunk, to apply the CPU's band-capacity rule.
constexpr int64_t kChunkPixels = int64_t(1) << 20;

// q for one value in [0, 1] (anything else gives a meaningless q; such inputs are rejected anyway).
RANKSEG_HOST_DEVICE inline uint64_t fixed_point(double p) {
#if defined(__CUDA_ARCH__)
  return __double2ull_rn(p * 0x1p43);
#else
  const double shifted = p + kFixedMagic;
  uint64_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return bits ^ kFixedMagicBits;
#endif
}

// A sum of q values in 128 bits.
struct ExactSum {
  uint64_t lo = 0, hi = 0;

  RANKSEG_HOST_DEVICE void add(uint64_t q) {
    lo += q;
    hi += lo < q;
  }
  RANKSEG_HOST_DEVICE void add(const ExactSum& other) {
    add(other.lo);
    hi += other.hi;
  }
  RANKSEG_HOST_DEVICE ExactSum plus(const ExactSum& other) const {
    ExactSum s = *this;
    s.add(other);
    return s;
  }
  RANKSEG_HOST_DEVICE bool operator==(const ExactSum& other) const { return lo == other.lo && hi == other.hi; }

  // The sum as a double, correctly rounded: the top 64 significant bits keep a sticky bit for the rest.
  RANKSEG_HOST_DEVICE double value() const {
    if (hi == 0) return double(lo) * 0x1p-43;
    const int shift = 64 - count_leading_zeros(hi);  // in [1, 64]
    const uint64_t kept = shift == 64 ? hi : (hi << (64 - shift)) | (lo >> shift);
    const uint64_t rest = shift == 64 ? lo : lo << (64 - shift);
    return double(kept | uint64_t(rest != 0)) * scale(shift);
  }

 private:
  RANKSEG_HOST_DEVICE static int count_leading_zeros(uint64_t x) {
#if defined(__CUDA_ARCH__)
    return __clzll(static_cast<long long>(x));
#else
    return __builtin_clzll(x);
#endif
  }
  // 2^(shift - 43), exact for shift in [1, 64].
  RANKSEG_HOST_DEVICE static double scale(int shift) { return double(uint64_t(1) << (shift - 1)) * 0x1p-42; }
};

}  // namespace rankseg
