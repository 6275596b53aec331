// The passes that read every pixel of a class, compiled for AVX2 and for the baseline and picked at load time.
#pragma once

#include <cstdint>

#include "../exact_sum.h"
#include "../search.h"
#include "../values.h"

namespace rankseg::cpu {

// What the first streaming pass learns about a class. Pixels above 1/2 belong to every optimal mask of
// Dice (s = 0) and IoU (scores.h), so their count and sum are the starting point of the search.
struct Moments {
  ExactSum sum;
  double max = 0.0;
  bool invalid = false;    // NaN, an infinity, or a value outside [0, 1]
  int64_t above_half = 0;  // pixels with p > 1/2
  ExactSum above_half_sum;

  void merge(const Moments& other);
};

// Each pass reads at most one chunk, kChunkPixels values (exact_sum.h), so that its exact sums fit in 64 bits.

// Sum, maximum, validity, and the pixels above 1/2.
Moments scan_moments(const float* p, int64_t stride, int64_t n);
Moments scan_moments(const double* p, int64_t stride, int64_t n);
Moments scan_moments(const Half* p, int64_t stride, int64_t n);
Moments scan_moments(const BFloat16* p, int64_t stride, int64_t n);

// The upper set {p >= t}, for t >= 0.
UpperSet upper_set(const float* p, int64_t stride, int64_t n, double t);
UpperSet upper_set(const double* p, int64_t stride, int64_t n, double t);
UpperSet upper_set(const Half* p, int64_t stride, int64_t n, double t);
UpperSet upper_set(const BFloat16* p, int64_t stride, int64_t n, double t);

// out[i] = p[i] >= t.
void write_mask(const float* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const double* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const Half* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const BFloat16* p, int64_t stride, int64_t n, double t, bool* out);

}  // namespace rankseg::cpu
