// The passes that read every pixel of a class, compiled for AVX2 and for the baseline and picked at load time.
#pragma once

#include <cstdint>

#include "load.h"

namespace rankseg::cpu {

// What one streaming pass learns about a class.
struct Moments {
  double sum = 0.0;
  double max = 0.0;
  bool invalid = false;     // NaN, an infinity, or a value outside [0, 1]
  int64_t above_count = 0;  // pixels with p > level
  double above_sum = 0.0;

  void merge(const Moments& other);
};

// Sum, extremes, validity, and the count and sum of the probabilities above `level`.
Moments scan_moments(const float* p, int64_t stride, int64_t n, double level);
Moments scan_moments(const double* p, int64_t stride, int64_t n, double level);
Moments scan_moments(const Half* p, int64_t stride, int64_t n, double level);
Moments scan_moments(const BFloat16* p, int64_t stride, int64_t n, double level);

// Count and sum of the probabilities >= t.
void count_sum_from(const float* p, int64_t stride, int64_t n, double t, int64_t& count, double& sum);
void count_sum_from(const double* p, int64_t stride, int64_t n, double t, int64_t& count, double& sum);
void count_sum_from(const Half* p, int64_t stride, int64_t n, double t, int64_t& count, double& sum);
void count_sum_from(const BFloat16* p, int64_t stride, int64_t n, double t, int64_t& count, double& sum);

// out[i] = p[i] >= t.
void write_mask(const float* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const double* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const Half* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const BFloat16* p, int64_t stride, int64_t n, double t, bool* out);

}  // namespace rankseg::cpu
