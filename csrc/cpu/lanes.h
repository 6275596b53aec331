// Eight probabilities at a time, widened to two halves of four doubles, through GCC/Clang vector extensions.
// The lane order is fixed in the source, so every instruction set adds in the same order and gives
// bit-identical sums; no intrinsics are needed.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "load.h"

namespace rankseg::cpu {

constexpr int kLanes = 8;

typedef double Double4 __attribute__((vector_size(32)));
typedef int64_t Mask4 __attribute__((vector_size(32)));
typedef float Float8 __attribute__((vector_size(32)));
typedef uint32_t Bits8 __attribute__((vector_size(32)));
typedef uint16_t Bits16x8 __attribute__((vector_size(16)));
#if defined(__FLT16_MAX__)
typedef _Float16 Half8 __attribute__((vector_size(16)));
#endif

struct Eight {
  Double4 lo, hi;
};

[[gnu::always_inline]] inline Float8 bits_to_float8(Bits8 bits) {
  Float8 f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// The same branch-free formulas as to_value() in load.h.
[[gnu::always_inline]] inline Float8 to_float8(Bits8 h, Half) {
  const Bits8 exponent = h & 0x7c00u, shifted = (h & 0x7fffu) << 13;
  const Float8 normal = bits_to_float8(shifted + (112u << 23));
  const Float8 subnormal = __builtin_convertvector(h & 0x3ffu, Float8) * 0x1p-24f;
  const Float8 special = bits_to_float8(shifted | 0x7f800000u);
  const Float8 value = exponent == 0u ? subnormal : (exponent == 0x7c00u ? special : normal);
  return (h & 0x8000u) != 0u ? -value : value;
}
[[gnu::always_inline]] inline Float8 to_float8(Bits8 h, BFloat16) { return bits_to_float8(h << 16); }

[[gnu::always_inline]] inline Eight widen(Float8 f) {
  return {__builtin_convertvector(__builtin_shufflevector(f, f, 0, 1, 2, 3), Double4),
          __builtin_convertvector(__builtin_shufflevector(f, f, 4, 5, 6, 7), Double4)};
}

// Loads pixels 0 .. 7 of p (stride in elements; a stride of 1 becomes plain vector loads).
template <class S>
[[gnu::always_inline]] inline Eight load8(const S* p, int64_t stride) {
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
    return widen(f);
  } else {
    Bits16x8 bits;
    if (stride == 1) {
      std::memcpy(&bits, p, sizeof bits);
    } else {
      for (int l = 0; l < kLanes; ++l) bits[l] = p[l * stride].bits;
    }
#if defined(__FLT16_MAX__)
    if constexpr (std::is_same_v<S, Half>) {  // the compiler converts halves (one F16C instruction in the v3 clone)
      Half8 h;
      std::memcpy(&h, &bits, sizeof h);
      return widen(__builtin_convertvector(h, Float8));
    }
#endif
    return widen(to_float8(__builtin_convertvector(bits, Bits8), S{}));
  }
}

}  // namespace rankseg::cpu
