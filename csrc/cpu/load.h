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

// Branch-free: the 15 magnitude bits shifted into float position and rescaled by 2^112 are exact for normal
// and subnormal halves; exponent 31 (inf/NaN) is patched to float's.
inline float to_value(Half x) {
  const uint32_t magnitude = uint32_t(x.bits & 0x7fffu) << 13;
  const float value = (x.bits & 0x7c00u) == 0x7c00u ? bits_to_float(magnitude | 0x7f800000u)
                                                    : bits_to_float(magnitude) * 0x1p112f;
  return (x.bits & 0x8000u) ? -value : value;
}

inline float to_value(float x) { return x; }
inline double to_value(double x) { return x; }

// float64 input is computed in double; every other dtype converts exactly to float.
template <class Storage>
using value_t = std::conditional_t<std::is_same_v<Storage, double>, double, float>;

}  // namespace rankseg::cpu
