// The band of a class: the probabilities that the search for its optimal cut still has to look at, copied
// out in pixel order so that each further step reads them instead of every pixel again.
#pragma once

#include <cstdint>

#include "../values.h"

namespace rankseg::cpu {

// Copies every value v with lo <= v <= hi to out, in pixel order, and returns how many there are; returns -1
// as soon as more than `capacity` qualify. `out` must have room for capacity + 8 values.
int64_t gather_band(const float* p, int64_t stride, int64_t n, float lo, float hi, float* out, int64_t capacity);
int64_t gather_band(const Half* p, int64_t stride, int64_t n, float lo, float hi, float* out, int64_t capacity);
int64_t gather_band(const BFloat16* p, int64_t stride, int64_t n, float lo, float hi, float* out, int64_t capacity);
int64_t gather_band(const double* p, int64_t stride, int64_t n, double lo, double hi, double* out, int64_t capacity);

}  // namespace rankseg::cpu
