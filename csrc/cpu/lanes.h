// Eight probabilities at a time through GCC/Clang vector extensions: a Float8 for float-valued storage
// (float32, float16, bfloat16), an Eight (two halves of four doubles) for float64. Sums are exact integers
// (exact_sum.h) in eight 64-bit lanes, so every instruction set gives the same bits.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../exact_sum.h"
#include "../values.h"

namespace rankseg::cpu {

constexpr int kLanes = 8;

typedef double Double4 __attribute__((vector_size(32)));
typedef int64_t Mask4 __attribute__((vector_size(32)));
typedef uint64_t Bits4 __attribute__((vector_size(32)));
typedef float Float8 __attribute__((vector_size(32)));
typedef int32_t Mask8 __attribute__((vector_size(32)));
typedef uint32_t Bits8 __attribute__((vector_size(32)));
typedef uint16_t Bits16x8 __attribute__((vector_size(16)));

// Eight doubles, and the per-lane results of comparing them.
struct Eight {
  Double4 lo, hi;
};
struct EightMask {
  Mask4 lo, hi;
};
struct EightBits {
  Bits4 lo, hi;
};

template <class T>
[[gnu::always_inline]] inline T bit_cast(const void* from) {
  T to;
  std::memcpy(&to, from, sizeof to);
  return to;
}

// ---- float-valued lanes ----
// Written lane by lane: GCC 12 lowers __builtin_convertvector to twice the instructions here.
[[gnu::always_inline]] inline Eight widen(Float8 f) {
  return {Double4{double(f[0]), double(f[1]), double(f[2]), double(f[3])},
          Double4{double(f[4]), double(f[5]), double(f[6]), double(f[7])}};
}
[[gnu::always_inline]] inline Mask8 at_least(Float8 v, float t) { return v >= t; }
[[gnu::always_inline]] inline Mask8 at_most(Float8 v, float t) { return v <= t; }
[[gnu::always_inline]] inline Mask8 above(Float8 v, float t) { return v > t; }
[[gnu::always_inline]] inline Mask8 below(Float8 v, Float8 w) { return v < w; }
[[gnu::always_inline]] inline Mask8 both(Mask8 a, Mask8 b) { return a & b; }
[[gnu::always_inline]] inline Float8 pick(Mask8 m, Float8 a, Float8 b) { return m ? a : b; }
[[gnu::always_inline]] inline Float8 splat(Float8, float x) { return Float8{} + x; }
[[gnu::always_inline]] inline Bits8 bits(Float8 v) { return bit_cast<Bits8>(&v); }
[[gnu::always_inline]] inline Bits8 max_bits(Bits8 a, Bits8 b) { return a > b ? a : b; }
[[gnu::always_inline]] inline void set_lane(Float8& v, int l, float x) { v[l] = x; }

// ---- double lanes ----
[[gnu::always_inline]] inline Eight widen(const Eight& e) { return e; }
[[gnu::always_inline]] inline EightMask at_least(const Eight& v, double t) { return {v.lo >= t, v.hi >= t}; }
[[gnu::always_inline]] inline EightMask at_most(const Eight& v, double t) { return {v.lo <= t, v.hi <= t}; }
[[gnu::always_inline]] inline EightMask above(const Eight& v, double t) { return {v.lo > t, v.hi > t}; }
[[gnu::always_inline]] inline EightMask below(const Eight& v, const Eight& w) { return {v.lo < w.lo, v.hi < w.hi}; }
[[gnu::always_inline]] inline EightMask both(const EightMask& a, const EightMask& b) {
  return {a.lo & b.lo, a.hi & b.hi};
}
[[gnu::always_inline]] inline Eight pick(const EightMask& m, const Eight& a, const Eight& b) {
  return {m.lo ? a.lo : b.lo, m.hi ? a.hi : b.hi};
}
[[gnu::always_inline]] inline Eight splat(const Eight&, double x) { return {Double4{} + x, Double4{} + x}; }
[[gnu::always_inline]] inline EightBits bits(const Eight& v) {
  return {bit_cast<Bits4>(&v.lo), bit_cast<Bits4>(&v.hi)};
}
[[gnu::always_inline]] inline EightBits max_bits(const EightBits& a, const EightBits& b) {
  return {a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi};
}
[[gnu::always_inline]] inline void set_lane(Eight& v, int l, double x) {
  if (l < 4) {
    v.lo[l] = x;
  } else {
    v.hi[l - 4] = x;
  }
}

// Eight lanes of exact sums. Each lane adds the bit pattern of p + 512, which is q + bits(512) for p in
// [0, 1] (exact_sum.h); the constant is taken out once, at the end, and the lanes wrap modulo 2^64 meanwhile.
struct FixedEight {
  Bits4 lo{}, hi{};
  int64_t adds = 0;  // how many times eight values were added

  [[gnu::always_inline]] void add(const Eight& v) {
    const Double4 a = v.lo + kFixedMagic, b = v.hi + kFixedMagic;
    lo += bit_cast<Bits4>(&a);
    hi += bit_cast<Bits4>(&b);
    ++adds;
  }
  // Exact when the true sum is below 2^64, as it is for at most 2^20 values.
  uint64_t total() const {
    uint64_t s = 0;
    for (int l = 0; l < 4; ++l) s += lo[l] + hi[l];
    return s - uint64_t(adds) * 8 * kFixedMagicBits;
  }
};

// Lane counters: a mask lane is -1 where true.
[[gnu::always_inline]] inline void count(Mask8& n, Mask8 m) { n -= m; }
[[gnu::always_inline]] inline void count(EightMask& n, const EightMask& m) {
  n.lo -= m.lo;
  n.hi -= m.hi;
}

// The vector types of one storage type's lanes.
template <class S>
struct LaneTypes {
  using Values = std::conditional_t<std::is_same_v<S, double>, Eight, Float8>;
  using Mask = std::conditional_t<std::is_same_v<S, double>, EightMask, Mask8>;
  using Bits = std::conditional_t<std::is_same_v<S, double>, EightBits, Bits8>;
};

// Half bits to float, exact for every finite half: normals move their exponent bias from 15 to 127,
// subnormals are mantissa * 2^-24 (no denormal arithmetic, so flush-to-zero modes cannot change it). Infinities
// and NaN come out as finite values above 1, which the first pass rejects before rescanning exactly
// (to_value in values.h). Signed lanes: AVX2 converts and compares those in one instruction.
[[gnu::always_inline]] inline Float8 to_float8(Mask8 h, Half) {
  const Mask8 magnitude = h & 0x7fff, sign = (h & 0x8000) << 16;
  const Mask8 normal_bits = (magnitude << 13) + (112 << 23);
  const Float8 subnormal = __builtin_convertvector(magnitude, Float8) * 0x1p-24f;
  const Mask8 value_bits = (magnitude < 0x400 ? bit_cast<Mask8>(&subnormal) : normal_bits) | sign;
  return bit_cast<Float8>(&value_bits);
}
[[gnu::always_inline]] inline Float8 to_float8(Mask8 h, BFloat16) {
  const Mask8 shifted = h << 16;
  return bit_cast<Float8>(&shifted);
}

// Loads pixels 0 .. 7 of p (stride in elements; a stride of 1 becomes plain vector loads).
template <class S>
[[gnu::always_inline]] inline typename LaneTypes<S>::Values load8(const S* p, int64_t stride) {
  if constexpr (std::is_same_v<S, double>) {
    Eight e;
    if (stride == 1) {
      std::memcpy(&e.lo, p, sizeof e.lo);
      std::memcpy(&e.hi, p + 4, sizeof e.hi);
    } else {
      for (int l = 0; l < 4; ++l) {
        e.lo[l] = p[l * stride];
        e.hi[l] = p[(l + 4) * stride];
      }
    }
    return e;
  } else if constexpr (std::is_same_v<S, float>) {
    Float8 f;
    if (stride == 1) {
      std::memcpy(&f, p, sizeof f);
    } else {
      for (int l = 0; l < kLanes; ++l) f[l] = p[l * stride];
    }
    return f;
  } else {
    Bits16x8 raw;
    if (stride == 1) {
      std::memcpy(&raw, p, sizeof raw);
    } else {
      for (int l = 0; l < kLanes; ++l) raw[l] = p[l * stride].bits;
    }
    const Mask8 wide = {raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]};  // one zero-extension
    return to_float8(wide, S{});
  }
}

}  // namespace rankseg::cpu
