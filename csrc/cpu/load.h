// Reading one probability of any supported dtype as the value type the kernels compute in.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rankseg::cpu {

// 16-bit storage types; read through their bits so no full-size float32 copy is ever made.
struct Half { uint16_t bits; };
struct BFloat16 { uint16_t bits; };

inline float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline float to_value(BFloat16 x) { return bits_to_float(uint32_t(x.bits) << 16); }

inline float to_value(Half x) {
  const uint32_t sign = uint32_t(x.bits & 0x8000u) << 16;
  const uint32_t exponent = (x.bits >> 10) & 0x1fu;
  const uint32_t mantissa = x.bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = float(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
  return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline float to_value(float x) { return x; }
inline double to_value(double x) { return x; }

// float64 input is computed in double; every other dtype converts exactly to float.
template <class Storage>
using value_t = std::conditional_t<std::is_same_v<Storage, double>, double, float>;

}  // namespace rankseg::cpu
