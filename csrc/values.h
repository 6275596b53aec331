// Reading one probability of any supported dtype as the value type the kernels compute in (CPU and CUDA).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "config.h"
#include "core.h"

namespace rankseg {

// 16-bit storage types; read through their bits so no full-size float32 copy is ever made.
struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

RANKSEG_HOST_DEVICE inline float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

RANKSEG_HOST_DEVICE inline float to_value(BFloat16 x) { return bits_to_float(uint32_t(x.bits) << 16); }

// Branch-free and exact without denormal arithmetic (so flush-to-zero modes cannot change it): normal
// halves move their exponent bias from 15 to 127, subnormals are mantissa * 2^-24, exponent 31 is inf/NaN.
RANKSEG_HOST_DEVICE inline float to_value(Half x) {
  const uint32_t exponent = x.bits & 0x7c00u, mantissa = x.bits & 0x3ffu;
  const uint32_t shifted = uint32_t(x.bits & 0x7fffu) << 13;
  const float normal = bits_to_float(shifted + (112u << 23));
  const float subnormal = float(mantissa) * 0x1p-24f;
  const float special = bits_to_float(shifted | 0x7f800000u);
  const float value = exponent == 0 ? subnormal : exponent == 0x7c00u ? special : normal;
  return (x.bits & 0x8000u) ? -value : value;
}

RANKSEG_HOST_DEVICE inline float to_value(float x) { return x; }
RANKSEG_HOST_DEVICE inline double to_value(double x) { return x; }

// float64 input is computed in double; every other dtype converts exactly to float.
template <class Storage>
using value_t = std::conditional_t<std::is_same_v<Storage, double>, double, float>;

// Calls f(S{}) with the storage type of a probabilities dtype.
template <class F>
void with_storage_type(ProbsDType dtype, F&& f) {
  switch (dtype) {
    case ProbsDType::float32: return f(float{});
    case ProbsDType::float64: return f(double{});
    case ProbsDType::float16: return f(Half{});
    case ProbsDType::bfloat16: return f(BFloat16{});
    default: throw std::invalid_argument("probs must be float16, bfloat16, float32 or float64");
  }
}

}  // namespace rankseg
