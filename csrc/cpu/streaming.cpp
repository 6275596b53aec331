// Streaming passes over one class, eight lanes at a time. Each entry point is cloned for x86-64-v3 (AVX2,
// F16C) and the baseline (GCC target_clones); the clones run the same lane arithmetic (built without
// floating-point contraction, see CMakeLists.txt), so they agree bit for bit.
#include "streaming.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lanes.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RANKSEG_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RANKSEG_CLONES
#endif

namespace rankseg::cpu {

void Moments::merge(const Moments& other) {
  sum += other.sum;
  max = std::max(max, other.max);
  invalid = invalid || other.invalid;
  for (int k = 0; k < kLevels; ++k) {
    above_count[k] += other.above_count[k];
    above_sum[k] += other.above_sum[k];
  }
}

void UpperSet::merge(const UpperSet& other) {
  count += other.count;
  sum += other.sum;
  min = std::min(min, other.min);
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Invalid values cost nothing extra: NaN poisons the sum, infinities and out-of-range values the extremes.
template <class S>
[[gnu::always_inline]] inline Moments scan_moments_impl(const S* p, int64_t stride, int64_t n) {
  const Double4 zero = {};
  Double4 sum[2] = {}, max[2] = {}, min[2] = {zero + 1.0, zero + 1.0}, above_sum[kLevels][2] = {};
  Mask4 above_count[kLevels][2] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Eight e = load8(p + i * stride, stride);
    const Double4 half[2] = {e.lo, e.hi};
    for (int h = 0; h < 2; ++h) {
      const Double4 v = half[h];
      sum[h] += v;
      max[h] = v > max[h] ? v : max[h];
      min[h] = v < min[h] ? v : min[h];
      for (int k = 0; k < kLevels; ++k) {
        const Mask4 above = v > kLevel[k];
        above_sum[k][h] += above ? v : zero;
        above_count[k][h] -= above;
      }
    }
  }
  for (; i < n; ++i) {  // the tail goes to lane 0
    const double v = to_value(p[i * stride]);
    sum[0][0] += v;
    max[0][0] = v > max[0][0] ? v : max[0][0];
    min[0][0] = v < min[0][0] ? v : min[0][0];
    for (int k = 0; k < kLevels; ++k) {
      above_sum[k][0][0] += v > kLevel[k] ? v : 0.0;
      above_count[k][0][0] += v > kLevel[k];
    }
  }
  Moments m;
  double low = 1.0;
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 4; ++l) {
      m.sum += sum[h][l];
      m.max = std::max(m.max, max[h][l]);
      low = std::min(low, min[h][l]);
      for (int k = 0; k < kLevels; ++k) {
        m.above_sum[k] += above_sum[k][h][l];
        m.above_count[k] += above_count[k][h][l];
      }
    }
  }
  m.invalid = !(std::isfinite(m.sum) && low >= 0.0 && m.max <= 1.0);
  return m;
}

template <class S>
[[gnu::always_inline]] inline UpperSet upper_set_impl(const S* p, int64_t stride, int64_t n, double t, bool* mask) {
  const Double4 zero = {}, inf = zero + kInf;
  Double4 sum[2] = {}, min[2] = {inf, inf};
  Mask4 count[2] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Eight e = load8(p + i * stride, stride);
    const Double4 half[2] = {e.lo, e.hi};
    Mask4 in[2];
    for (int h = 0; h < 2; ++h) {
      in[h] = half[h] >= t;
      sum[h] += in[h] ? half[h] : zero;
      min[h] = (in[h] & (half[h] < min[h])) ? half[h] : min[h];
      count[h] -= in[h];
    }
    if (mask) {
      for (int l = 0; l < 4; ++l) {
        mask[i + l] = in[0][l] != 0;
        mask[i + 4 + l] = in[1][l] != 0;
      }
    }
  }
  for (; i < n; ++i) {
    const double v = to_value(p[i * stride]);
    const bool in = v >= t;
    sum[0][0] += in ? v : 0.0;
    min[0][0] = in && v < min[0][0] ? v : min[0][0];
    count[0][0] += in;
    if (mask) mask[i] = in;
  }
  UpperSet u;
  u.min = kInf;
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 4; ++l) {
      u.count += count[h][l];
      u.sum += sum[h][l];
      u.min = std::min(u.min, min[h][l]);
    }
  }
  return u;
}

template <class S>
[[gnu::always_inline]] inline void write_mask_impl(const S* p, int64_t stride, int64_t n, double t, bool* out) {
  const value_t<S> threshold = value_t<S>(t);  // exact: thresholds are values of the input's type
  if (stride == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = to_value(p[i]) >= threshold;
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = to_value(p[i * stride]) >= threshold;
  }
}

}  // namespace

#define RANKSEG_STREAMING(S)                                                                             \
  RANKSEG_CLONES Moments scan_moments(const S* p, int64_t stride, int64_t n) {                           \
    return scan_moments_impl(p, stride, n);                                                              \
  }                                                                                                      \
  RANKSEG_CLONES UpperSet upper_set(const S* p, int64_t stride, int64_t n, double t, bool* mask) {       \
    return upper_set_impl(p, stride, n, t, mask);                                                        \
  }                                                                                                      \
  RANKSEG_CLONES void write_mask(const S* p, int64_t stride, int64_t n, double t, bool* out) {           \
    write_mask_impl(p, stride, n, t, out);                                                               \
  }

RANKSEG_STREAMING(float)
RANKSEG_STREAMING(double)
RANKSEG_STREAMING(Half)
RANKSEG_STREAMING(BFloat16)

}  // namespace rankseg::cpu
