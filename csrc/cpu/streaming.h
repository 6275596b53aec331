// The passes that read every pixel of a class, compiled for AVX2 and for the baseline and picked at load time.
#pragma once

#include <cstdint>

#include "load.h"

namespace rankseg::cpu {

// Levels whose upper sets {p > level} the first pass measures: where optimal masks of Dice (s = 0) and IoU
// usually cut, so the search starts close to the answer.
constexpr int kLevels = 2;
constexpr double kLevel[kLevels] = {0.5, 0.375};

// What the first streaming pass learns about a class.
struct Moments {
  double sum = 0.0;
  double max = 0.0;
  bool invalid = false;                // NaN, an infinity, or a value outside [0, 1]
  int64_t above_count[kLevels] = {};   // pixels with p > kLevel[k]
  double above_sum[kLevels] = {};

  void merge(const Moments& other);
};

// The pixels with p >= t: how many, their sum, and the smallest of them (+inf if none).
struct UpperSet {
  int64_t count = 0;
  double sum = 0.0;
  double min = 0.0;

  void merge(const UpperSet& other);
};

// Sum, extremes, validity, and the upper sets of kLevel.
Moments scan_moments(const float* p, int64_t stride, int64_t n);
Moments scan_moments(const double* p, int64_t stride, int64_t n);
Moments scan_moments(const Half* p, int64_t stride, int64_t n);
Moments scan_moments(const BFloat16* p, int64_t stride, int64_t n);

// The upper set {p >= t}; when `mask` is given, also writes mask[i] = p[i] >= t.
UpperSet upper_set(const float* p, int64_t stride, int64_t n, double t, bool* mask);
UpperSet upper_set(const double* p, int64_t stride, int64_t n, double t, bool* mask);
UpperSet upper_set(const Half* p, int64_t stride, int64_t n, double t, bool* mask);
UpperSet upper_set(const BFloat16* p, int64_t stride, int64_t n, double t, bool* mask);

// out[i] = p[i] >= t.
void write_mask(const float* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const double* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const Half* p, int64_t stride, int64_t n, double t, bool* out);
void write_mask(const BFloat16* p, int64_t stride, int64_t n, double t, bool* out);

}  // namespace rankseg::cpu
